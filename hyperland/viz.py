"""Pictures for notebooks and the CLI: PCA-RGB hypercolumns, landmark overlays, NME-vs-shots plots.

Array functions return uint8 (H, W, 3) numpy images (no matplotlib needed); :func:`plot_shots` returns a
matplotlib Figure and needs the ``viz`` extra (``pip install "hyperland[viz]"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ._io import atomic_write
from .errors import InvalidImageError, InvalidKeypointsError, optional_import
from .images import ImageLike, Images, as_list, image_size, load_image
from .preprocess import channel_stats, denormalize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .model import HyperlandModel

# one colour per landmark (tab10), repeated for K > 10
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
TRUTH = (255, 255, 255)


def to_uint8(image: ImageLike) -> np.ndarray:
    """Any image hyperland reads → (H, W, 3) uint8 (such an array already passes through as it is, uncopied)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    t = load_image(image)
    return (t.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def pca_rgb(model: HyperlandModel, images: Images, *, layers: Sequence[int] | None = None,
            size: int | None = None, quantile: float = 0.01, batch_size: int = 16,
            progress: bool | None = None) -> np.ndarray:
    """Hypercolumns projected onto their top 3 principal components, shown as RGB: (N, S, S, 3) uint8.

    One PCA is fitted over all pixels of all the given images together (as in the paper's figures), so
    colours are comparable across images: the same colour means a similar descriptor. Each component is
    scaled to [0, 255] between its ``quantile`` and ``1 - quantile`` values. ``size`` (default: the
    model's input size) is the output side; the maps are upsampled bilinearly from the feature grid.
    """
    items = as_list(images)
    maps = torch.cat(list(model.iter_extract(items, layers=layers, batch_size=batch_size, progress=progress)))
    n, c, h, w = maps.shape
    x = maps.permute(0, 2, 3, 1).reshape(-1, c).float()
    x = x - x.mean(0, keepdim=True)
    # top-3 right singular vectors of the centred descriptors (C x C covariance: cheap for C <= ~4k)
    cov = x.T @ x / max(1, x.shape[0] - 1)
    _, vecs = torch.linalg.eigh(cov.double())
    comp = vecs[:, -3:].flip(1).float()  # (C, 3), largest first
    y = x @ comp
    for j in range(3):  # fix the sign: the larger tail is positive, so colours are stable across runs
        if y[:, j].abs().max() != y[:, j].max():
            y[:, j] = -y[:, j]
    lo = torch.quantile(y[:: max(1, y.shape[0] // 100000)], quantile, dim=0)
    hi = torch.quantile(y[:: max(1, y.shape[0] // 100000)], 1 - quantile, dim=0)
    y = ((y - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)
    rgb = y.view(n, h, w, 3).permute(0, 3, 1, 2)
    side = size or model.config.input_size
    rgb = F.interpolate(rgb, size=(side, side), mode="bilinear", align_corners=False)
    return (rgb.permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def model_view(model: HyperlandModel, images: Images) -> np.ndarray:
    """What the network sees (resize + border crop, before mean/std): (N, S, S, 3) uint8, aligned with
    :func:`pca_rgb` pixel for pixel."""
    x = denormalize(model.preprocess(as_list(images)).cpu(), channel_stats(model.config)).clamp(0, 1)
    return (x.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def _check_points(points: Any | None, k: int | None, what: str) -> np.ndarray | None:
    if points is None:
        return None
    p = np.asarray(points, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != 2 or (k is not None and p.shape[0] != k):
        raise InvalidKeypointsError(f"{what} has shape {p.shape}. Expected (K, 2) pixel (x, y)"
                                    + (f" with K = {k}." if k is not None else "."))
    return p


def draw_landmarks(image: ImageLike, pred: Any | None = None, truth: Any | None = None, *,
                   radius: float | None = None, scale: int = 1) -> np.ndarray:
    """Overlay landmarks on one image: predictions as filled dots (one colour per landmark), ground truth
    as white rings, and a line from each true point to its prediction. Missing (NaN) points are skipped.
    ``scale`` enlarges the image first (nearest) so small crops stay readable. Returns (H', W', 3) uint8."""
    arr = to_uint8(image)
    h, w = arr.shape[:2]
    pred_p = _check_points(pred, None, "pred")
    truth_p = _check_points(truth, None if pred_p is None else pred_p.shape[0], "truth")
    img = Image.fromarray(arr)
    if scale != 1:
        img = img.resize((w * scale, h * scale), Image.Resampling.NEAREST)
    r = radius if radius is not None else max(1.5, 0.018 * max(h, w) * scale)
    d = ImageDraw.Draw(img)

    def xy(p: np.ndarray) -> tuple[float, float]:  # PIL draws in the pixel-corner frame: centre of pixel i = i + .5
        return ((p[0] + 0.5) * scale, (p[1] + 0.5) * scale)

    if pred_p is not None and truth_p is not None:
        for k, (a, b) in enumerate(zip(truth_p, pred_p)):
            if np.isfinite(a).all() and np.isfinite(b).all():
                d.line([xy(a), xy(b)], fill=PALETTE[k % len(PALETTE)], width=max(1, int(r / 2)))
    if truth_p is not None:
        for p in truth_p:
            if np.isfinite(p).all():
                x, y = xy(p)
                d.ellipse([x - r * 1.4, y - r * 1.4, x + r * 1.4, y + r * 1.4], outline=TRUTH, width=max(1, int(r / 2)))
    if pred_p is not None:
        for k, p in enumerate(pred_p):
            if np.isfinite(p).all():
                x, y = xy(p)
                d.ellipse([x - r, y - r, x + r, y + r], fill=PALETTE[k % len(PALETTE)], outline=(0, 0, 0))
    return np.asarray(img)


def grid(tiles: Sequence[np.ndarray], *, cols: int | None = None, pad: int = 2,
         background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Tile (H, W, 3) uint8 images of any sizes into one image, row-major, cells the size of the largest."""
    if not tiles:
        raise InvalidImageError("grid() got no images.")
    cols = cols or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    ch, cw = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    out = np.empty((rows * (ch + pad) + pad, cols * (cw + pad) + pad, 3), np.uint8)
    out[:] = background
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        out[y:y + t.shape[0], x:x + t.shape[1]] = t
    return out


def overlay_grid(images: Images, pred: Any | None = None, truth: Any | None = None, *,
                 cols: int | None = None, side: int = 150) -> np.ndarray:
    """:func:`draw_landmarks` for several images (points (N, K, 2)), each resized to ``side`` px on its
    longer edge (points follow), tiled by :func:`grid`."""
    items = as_list(images)
    tiles = []
    for i, im in enumerate(items):
        h, w = image_size(im)
        f = side / max(h, w)
        small = Image.fromarray(to_uint8(im)).resize((max(1, round(w * f)), max(1, round(h * f))),
                                                     Image.Resampling.BILINEAR)
        ratio = np.array([small.width / w, small.height / h], np.float32)
        moved = [None if p is None else (np.asarray(p[i], np.float32) + 0.5) * ratio - 0.5 for p in (pred, truth)]
        tiles.append(draw_landmarks(small, moved[0], moved[1]))
    return grid(tiles, cols=cols)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 array as PNG, creating the folder."""
    return atomic_write(path, lambda f: Image.fromarray(np.asarray(array, dtype=np.uint8)).save(f, format="PNG"))


def require_matplotlib() -> Any:
    """The matplotlib Figure class (no pyplot, no GUI backend) or a MissingDependencyError that says how to
    install it."""
    return optional_import("matplotlib.figure", needed_for="Plots", name="matplotlib", extra="viz",
                           package="matplotlib").Figure


def plot_shots(summary: Sequence[Mapping[str, Any]], *, baseline: float | None = None,
               metric: str = "nme", title: str = "") -> Figure:
    """NME (or PCK) vs number of labelled images, one line per method (or per layers setting) with a
    ±std band; ``baseline`` (the mean-shape NME) is drawn as a dashed line. ``summary`` rows hold
    ``method``, ``shots`` (int or "all", shown as the pool size if ``n_pool`` is present), ``mean``, ``std``
    and optionally ``label``."""
    fig = require_matplotlib()(figsize=(6, 4), dpi=110)
    ax = fig.add_subplot()
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in summary:
        groups.setdefault(str(row.get("label") or row["method"]), []).append(row)
    for label, rows in groups.items():
        xs = [float(r["n_pool"] if r["shots"] == "all" and "n_pool" in r else r["shots"]) for r in rows
              if r["shots"] != "all" or "n_pool" in r]
        keep = [r for r in rows if r["shots"] != "all" or "n_pool" in r]
        order = np.argsort(xs)
        x = np.asarray(xs)[order]
        m = np.asarray([keep[i]["mean"] for i in order], float)
        s = np.asarray([keep[i].get("std") or 0.0 for i in order], float)
        line = ax.plot(x, m, marker="o", label=label)[0]
        ax.fill_between(x, m - s, m + s, alpha=0.2, color=line.get_color())
    if baseline is not None:
        ax.axhline(baseline, color="k", linestyle="--", linewidth=1, label=f"mean shape ({baseline:.2f})")
    ax.set_xscale("log")
    ticks = sorted({float(r["n_pool"] if r["shots"] == "all" else r["shots"]) for r in summary
                    if r["shots"] != "all" or "n_pool" in r})
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled images (shots)")
    ax.set_ylabel("NME (%)" if metric == "nme" else "PCK (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["draw_landmarks", "grid", "model_view", "overlay_grid", "pca_rgb", "plot_shots", "save_png", "to_uint8"]
