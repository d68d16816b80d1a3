"""Pixel ↔ normalised geometry shared by the heads, keypoint matching and visualisation.

Normalised coordinates are (x, y) in [-1, 1] over the network input (``align_corners=False``: the centre of
grid cell j of W is (2j + 1) / W - 1); pixels are those of each image as the user passed it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .hypercolumn import grid_centers

if TYPE_CHECKING:
    from .model import HyperlandModel


def normalised_to_pixels(model: HyperlandModel, xy: torch.Tensor, sizes: Sequence[tuple[int, int]] | torch.Tensor
                         ) -> torch.Tensor:
    """Normalised network-input coordinates (B, K, 2) → pixels of each original image."""
    s = model.config.input_size
    return model.from_input_coords(((xy + 1) * s - 1) / 2, sizes)


def pixels_to_normalised(model: HyperlandModel, xy: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Pixels of each original image (B, K, 2) → normalised network-input coordinates."""
    s = model.config.input_size
    return (2 * model.to_input_coords(xy, sizes) + 1) / s - 1


def gaussian_log_prior(mean: torch.Tensor, std: torch.Tensor | float, size: tuple[int, int]) -> torch.Tensor:
    """Log-density (up to a constant) of isotropic Gaussians on the cells of an H×W grid.

    ``mean`` (K, 2) or (B, K, 2) normalised; ``std`` (K,), (B, K) or a float → (K, H*W) or (B, K, H*W)."""
    cells = grid_centers(size, device=mean.device)  # (HW, 2)
    d2 = ((cells - mean.unsqueeze(-2)) ** 2).sum(-1)
    std_t = torch.as_tensor(std, dtype=d2.dtype, device=d2.device)
    return -0.5 * d2 / (std_t.unsqueeze(-1) ** 2 if std_t.ndim else std_t ** 2)


def _similarity(src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The weighted Procrustes fit of ``src`` onto ``dst`` (see :func:`fit_similarity`): scale · cos and scale · sin
    of its angle (B, 1) each, ``src`` centred on its weighted mean (B, K, 2) and ``dst``'s weighted mean (B, 1, 2)."""
    w = weight.clamp_min(0) + 1e-6
    w = w / w.sum(-1, keepdim=True)
    src_mean = (w.unsqueeze(-1) * src).sum(-2, keepdim=True)
    dst_mean = (w.unsqueeze(-1) * dst).sum(-2, keepdim=True)
    s, d = src - src_mean, dst - dst_mean
    spread = (w * (s ** 2).sum(-1)).sum(-1).clamp_min(1e-12)
    a = (w * (s * d).sum(-1)).sum(-1) / spread  # scale · cos(angle)
    b = (w * (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0])).sum(-1) / spread  # scale · sin(angle)
    return a.unsqueeze(-1), b.unsqueeze(-1), s, dst_mean


def fit_similarity(src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``src`` (B, K, 2) moved by the similarity transform (scale, rotation, translation; no reflection) that
    brings it closest to ``dst`` (B, K, 2) in ``weight`` (B, K)-weighted least squares (weighted Procrustes, in
    closed form). Batched torch, so that the ONNX graph of a head can hold it (scikit-image's
    ``SimilarityTransform`` fits one NumPy point set at a time). Zero total weight counts every point alike; with
    one point, or a template whose points coincide, only the translation is fitted."""
    a, b, s, dst_mean = _similarity(src, dst, weight)
    moved = torch.stack([a * s[..., 0] - b * s[..., 1], b * s[..., 0] + a * s[..., 1]], -1)
    return moved + dst_mean


def similarity_angle(src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The angle (B,) in radians of the rotation in :func:`fit_similarity`'s transform from ``src`` to ``dst``
    (positive from the x axis towards the y axis)."""
    a, b, _, _ = _similarity(src, dst, weight)
    return torch.atan2(b, a).squeeze(-1)


def window_soft_argmax(logits: torch.Tensor, size: tuple[int, int], *, window: int | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H*W) logits → (soft-argmax (B, K, 2) normalised, confidence (B, K)).

    ``window`` (cells, odd) keeps only the cells within ``window // 2`` of each argmax before the soft-argmax;
    None uses the whole grid. The confidence is the share of the whole posterior inside that window (the
    peak's probability mass): near 1 for one sharp peak, low for a flat or multi-modal score map."""
    h, w = size
    prob_all = torch.softmax(logits, dim=-1)
    if window is None:
        return prob_all @ grid_centers(size, device=logits.device), prob_all.amax(-1).clamp(0.0, 1.0)
    best = logits.argmax(-1)
    by, bx = best // w, best % w
    yy = torch.arange(h, device=logits.device).view(1, 1, h, 1)
    xx = torch.arange(w, device=logits.device).view(1, 1, 1, w)
    r = window // 2
    near = (((yy - by[..., None, None]).abs() <= r) & ((xx - bx[..., None, None]).abs() <= r)).flatten(2)
    prob = torch.softmax(logits.masked_fill(~near, float("-inf")), dim=-1)
    return prob @ grid_centers(size, device=logits.device), (prob_all * near).sum(-1).clamp(0.0, 1.0)


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
    return window_soft_argmax(sim, (h, w), window=window)[0]


__all__ = ["correlation_soft_argmax", "fit_similarity", "gaussian_log_prior", "normalised_to_pixels",
           "pixels_to_normalised", "similarity_angle", "window_soft_argmax"]
