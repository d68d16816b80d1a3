"""The dense equivariant objective: per-pixel InfoNCE between corresponding cells of two warped views.

Both views of an image come from known geometric transforms (crop, rotation, scale, thin-plate spline), so
every cell of one view's feature grid has a known location in the common source image
(:meth:`hyperland.train.views.ViewAugment.__call__` returns it). For a query cell of view A the positive is
the cell of view B whose source location is nearest (when it lies within 0.75 of B's cell spacing; cells that
left the other view's frame are not used); the negatives are every other cell of B — the 3×3 around the
positive excluded — and every cell of ``other_images`` other images of the batch. The loss runs both ways
(A → B and B → A).

The descriptor is a learned 1×1 projection (:class:`DenseProjection`) of the hypercolumn of ``layers``, built
exactly as :meth:`hyperland.HyperlandModel.extract` builds it (bilinear resize to the finest layer's grid,
L2 per layer, concatenated), then L2-normalised: the exported projection applies to ``extract`` output as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeMismatchError


def hypercolumn(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Differentiable twin of :func:`hyperland.hypercolumn.stack_layers` with ``normalize="l2"``: each map resized
    (bilinear, align_corners=False) to the largest grid, L2-normalised over channels, concatenated."""
    h = max(int(f.shape[-2]) for f in features)
    w = max(int(f.shape[-1]) for f in features)
    parts = []
    for f in features:
        if tuple(f.shape[-2:]) != (h, w):
            f = F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False)
        parts.append(F.normalize(f.float(), dim=1, eps=1e-12))
    return torch.cat(parts, dim=1)


class DenseProjection(nn.Module):
    """1×1 convolution of a hypercolumn to ``dim`` channels, then L2 over channels."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=1)

    def forward(self, hyper: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(hyper), dim=1)


def correspondences(src_a: torch.Tensor, src_b: torch.Tensor, *, tolerance: float = 0.75
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every cell of grid A (B, h, w, 2 source coordinates) the index of the nearest cell of grid B and
    whether it is close enough (within ``tolerance`` × B's cell spacing): ((B, h*w) long, (B, h*w) bool)."""
    b = src_b.shape[0]
    a = src_a.reshape(b, -1, 2).float()
    bb = src_b.reshape(b, -1, 2).float()
    dist = torch.cdist(a, bb)  # (B, Na, Nb)
    best, idx = dist.min(dim=2)
    step = (src_b[:, :, 1:] - src_b[:, :, :-1]).norm(dim=-1).mean(dim=(1, 2))  # (B,) spacing along x
    ok = best < tolerance * step.view(-1, 1)
    return idx, ok


def _neighbour_mask(idx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, P, h*w) True at the cells within one step (3×3) of each positive ``idx`` (B, P), the positive excluded."""
    yy = torch.arange(h, device=idx.device).repeat_interleave(w)
    xx = torch.arange(w, device=idx.device).repeat(h)
    py, px = (idx // w).unsqueeze(-1), (idx % w).unsqueeze(-1)
    near = ((yy - py).abs() <= 1) & ((xx - px).abs() <= 1)
    return near & (torch.arange(h * w, device=idx.device) != idx.unsqueeze(-1))


def _one_way(fa: torch.Tensor, fb: torch.Tensor, idx: torch.Tensor, ok: torch.Tensor, *, points: int,
             temperature: float, other_images: int, generator: torch.Generator | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed loss, summed top-1 hits and the number of query cells, for queries of A against B."""
    bsz, d, h, w = fb.shape
    n = h * w
    qa = fa.flatten(2).transpose(1, 2)  # (B, n, D)
    kb = fb.flatten(2).transpose(1, 2)  # (B, n, D)
    # sample query cells that have a partner: random scores, invalid cells pushed to the end
    score = torch.rand(ok.shape, generator=generator).to(ok.device) + (~ok).float() * 2
    pick = score.argsort(dim=1)[:, :points]  # (B, P)
    valid = torch.gather(ok, 1, pick)
    q = torch.gather(qa, 1, pick.unsqueeze(-1).expand(-1, -1, d))  # (B, P, D)
    pos = torch.gather(idx, 1, pick)  # (B, P)
    logits = [q @ kb.transpose(1, 2)]  # (B, P, n): own view of the other image
    for j in range(1, min(other_images, bsz - 1) + 1):
        logits.append(q @ kb.roll(-j, dims=0).transpose(1, 2))
    lg = torch.cat(logits, dim=2) / temperature
    mask = torch.zeros_like(lg, dtype=torch.bool)
    mask[..., :n] = _neighbour_mask(pos, h, w)
    lg = lg.masked_fill(mask, float("-inf"))
    ce = F.cross_entropy(lg.flatten(0, 1), pos.flatten(), reduction="none").view_as(pos)
    hits = (lg.argmax(dim=2) == pos) & valid
    return (ce * valid).sum(), hits.sum(), valid.sum()


def dense_loss(fa: torch.Tensor, fb: torch.Tensor, src_a: torch.Tensor, src_b: torch.Tensor, *, points: int = 128,
               temperature: float = 0.1, other_images: int = 1, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric dense InfoNCE of unit descriptors ``fa``/``fb`` (B, D, h, w) whose cells have source coordinates
    ``src_a``/``src_b`` (B, h, w, 2); returns (mean loss, top-1 matching accuracy)."""
    if fa.shape != fb.shape or src_a.shape[:3] != (fa.shape[0], *fa.shape[-2:]) or src_a.shape != src_b.shape:
        raise ShapeMismatchError(f"dense_loss: descriptors {tuple(fa.shape)}/{tuple(fb.shape)} and coordinates "
                                 f"{tuple(src_a.shape)}/{tuple(src_b.shape)} do not agree. Expected descriptors "
                                 "(B, D, h, w) of one shape and coordinates (B, h, w, 2) on the same grid.")
    idx_ab, ok_ab = correspondences(src_a, src_b)
    idx_ba, ok_ba = correspondences(src_b, src_a)
    opts = {"points": points, "temperature": temperature, "other_images": other_images, "generator": generator}
    l1, h1, n1 = _one_way(fa, fb, idx_ab, ok_ab, **opts)  # type: ignore[arg-type]
    l2, h2, n2 = _one_way(fb, fa, idx_ba, ok_ba, **opts)  # type: ignore[arg-type]
    n = (n1 + n2).clamp_min(1)
    return (l1 + l2) / n, (h1 + h2).float() / n


__all__ = ["DenseProjection", "correspondences", "dense_loss", "hypercolumn"]
