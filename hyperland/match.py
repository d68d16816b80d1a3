"""Keypoint transfer between images by hypercolumn correspondence.

Each source point's descriptor (``model.sample``) is correlated (cosine similarity) with every cell of each
destination hypercolumn; the transferred point is the soft-argmax of ``scale`` × similarity over the grid,
restricted to a window around the best cell (argmax + local soft-argmax refinement), so two similar
parts far apart do not average into a point between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidKeypointsError
from .hypercolumn import grid_centers
from .images import ImageLike, Images, as_list, image_size, is_single

if TYPE_CHECKING:
    from .model import HyperlandModel


def correlation_soft_argmax(descriptors: torch.Tensor, maps: torch.Tensor, *, scale: float = 100.0,
                            window: int | None = 3, log_prior: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K, C) or (K, C) descriptors against (B, C, H, W) maps → (B, K, 2) normalised (x, y) in [-1, 1].

    Both sides are L2-normalised over channels. ``window`` (cells, odd) keeps only the cells within
    ``window // 2`` of each argmax before the soft-argmax; ``None`` uses the whole grid. ``log_prior``
    ((K, H*W) or (B, K, H*W)) is added to ``scale`` × similarity before both.
    """
    b, _c, h, w = maps.shape
    desc = descriptors.float().expand(b, -1, -1) if descriptors.ndim == 2 else descriptors.float()
    desc = F.normalize(desc, dim=-1)
    fm = F.normalize(maps.float().flatten(2), dim=1)  # (B, C, HW)
    sim = torch.bmm(desc, fm) * scale  # (B, K, HW)
    if log_prior is not None:
        sim = sim + log_prior.to(sim)
    if window is not None:
        best = sim.argmax(-1)
        by, bx = best // w, best % w
        yy = torch.arange(h, device=maps.device).view(1, 1, h, 1)
        xx = torch.arange(w, device=maps.device).view(1, 1, 1, w)
        r = window // 2
        near = ((yy - by[..., None, None]).abs() <= r) & ((xx - bx[..., None, None]).abs() <= r)
        sim = sim.masked_fill(~near.flatten(2), float("-inf"))
    prob = torch.softmax(sim, dim=-1)
    return prob @ grid_centers((h, w), device=maps.device)


def gaussian_log_prior(mean: torch.Tensor, std: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(K, H*W) log-density (up to a constant) of isotropic Gaussians at (K, 2) normalised means, (K,) stds."""
    cells = grid_centers(size, device=mean.device)  # (HW, 2)
    d2 = ((cells[None] - mean[:, None]) ** 2).sum(-1)
    return -0.5 * d2 / std[:, None] ** 2


def normalised_to_pixels(model: HyperlandModel, xy: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Normalised network-input coordinates (B, K, 2) → pixels of each original image."""
    s = model.config.input_size
    return model.from_input_coords(((xy + 1) * s - 1) / 2, sizes)


def pixels_to_normalised(model: HyperlandModel, xy: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Pixels of each original image (B, K, 2) → normalised network-input coordinates."""
    s = model.config.input_size
    return (2 * model.to_input_coords(xy, sizes) + 1) / s - 1


@torch.no_grad()
def match(
    model: HyperlandModel,
    src_image: ImageLike,
    src_points: Any,
    dst_images: Images,
    *,
    layers: Sequence[int] | None = None,
    scale: float = 100.0,
    window: int | None = 3,
    batch_size: int = 32,
    progress: bool | None = None,
) -> np.ndarray:
    """Transfer (K, 2) pixel points of ``src_image`` to each destination image: (M, K, 2), or (K, 2) for one.

    NaN source points stay NaN in the output.
    """
    pts = np.asarray(src_points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise InvalidKeypointsError(f"src_points has shape {pts.shape}. Expected (K, 2) pixel (x, y) with K >= 1.")
    missing = ~np.isfinite(pts).all(axis=1)
    if missing.all():
        raise InvalidKeypointsError("Every source point is NaN. Give at least one finite (x, y).")
    desc = model.sample(src_image, np.nan_to_num(pts), layers=layers)  # (K, C)
    single = is_single(dst_images)
    items = as_list(dst_images)
    out = []
    for maps in model.iter_extract(items, layers=layers, batch_size=batch_size, progress=progress):
        out.append(correlation_soft_argmax(desc, maps, scale=scale, window=window))
    xy = torch.cat(out)
    res = normalised_to_pixels(model, xy, [image_size(im) for im in items]).cpu().numpy()
    res[:, missing] = np.nan
    return res[0] if single else res


__all__ = ["correlation_soft_argmax", "gaussian_log_prior", "match", "normalised_to_pixels", "pixels_to_normalised"]
