"""Pure tensor functions: stack feature maps into a hypercolumn and sample them at points.

Both paths resize/sample with bilinear interpolation and ``align_corners=False`` and normalise *after*
interpolation, so ``sample_layers`` at the centre of an output grid cell equals ``stack_layers`` there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional

import torch
import torch.nn.functional as F

Normalize = Optional[Literal["l2"]]
NORMALIZE_CHOICES = (None, "l2")


def check_normalize(normalize: object) -> Normalize:
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"normalize={normalize!r} is not supported. Expected one of {NORMALIZE_CHOICES}.")
    return normalize  # type: ignore[return-value]


def _l2_(x: torch.Tensor, dim: int) -> torch.Tensor:
    """In-place L2 normalisation along ``dim`` (eps-guarded so an all-zero vector stays zero)."""
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min_(1e-12)
    return x.div_(norm)


def stack_layers(
    features: Sequence[torch.Tensor],
    *,
    size: tuple[int, int],
    normalize: Normalize = "l2",
    dtype: Optional[torch.dtype] = None,
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Resize each (B, C_i, h_i, w_i) map to ``size`` and concatenate along channels.

    Writes straight into ``out`` (B, sum C_i, H, W) when given, so no second copy of the hypercolumn is
    made; maps already at ``size`` are copied without interpolation.
    """
    b = features[0].shape[0]
    channels = sum(f.shape[1] for f in features)
    if out is None:
        out = torch.empty((b, channels, *size), dtype=dtype or features[0].dtype, device=features[0].device)
    c0 = 0
    for f in features:
        c1 = c0 + f.shape[1]
        if tuple(f.shape[-2:]) != tuple(size):
            f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
        elif normalize is not None:
            f = f.clone()
        if normalize == "l2":
            f = _l2_(f, dim=1)
        out[:, c0:c1].copy_(f)
        c0 = c1
    return out


def sample_layers(
    features: Sequence[torch.Tensor],
    grid: torch.Tensor,
    *,
    normalize: Normalize = "l2",
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Bilinearly sample each (B, C_i, h_i, w_i) map at ``grid`` (B, K, 2) in [-1, 1] (x, y), → (B, K, sum C_i).

    Coordinates outside the map are clamped to the border, as ``F.interpolate`` does.
    """
    g = grid.to(features[0].dtype).unsqueeze(1)  # (B, 1, K, 2)
    parts = []
    for f in features:
        s = F.grid_sample(f, g, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, 1, K)
        s = s.squeeze(2).transpose(1, 2)  # (B, K, C)
        if normalize == "l2":
            s = _l2_(s.contiguous(), dim=2)
        parts.append(s)
    res = torch.cat(parts, dim=2)
    return res if dtype is None else res.to(dtype)


def grid_centers(size: tuple[int, int], *, device: torch.device | None = None) -> torch.Tensor:
    """Normalised (x, y) coordinates of the centres of an H×W grid, (H*W, 2), row-major."""
    h, w = size
    ys = (2 * torch.arange(h, device=device, dtype=torch.float32) + 1) / h - 1
    xs = (2 * torch.arange(w, device=device, dtype=torch.float32) + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


__all__ = ["NORMALIZE_CHOICES", "Normalize", "check_normalize", "grid_centers", "sample_layers", "stack_layers"]
