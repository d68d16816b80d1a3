"""The training-free prototype head: the mean L2-normalised descriptor of each landmark over the labelled maps,
located in a new map by ``softmax_scale`` × cosine similarity plus a Gaussian shape prior (mean and spread of
the landmark over the labelled images), soft-argmax in a window around the best cell; the share of the
posterior inside that window is the confidence."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .geometry import gaussian_log_prior, window_soft_argmax

PRIOR_MIN_STD = 0.1  # normalised units (5% of the input side): the spread assumed from a single labelled image


def fit_prototypes(maps: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, C, H, W) maps and (N, K, 2) normalised targets (NaN = missing) → prototypes (K, C), prior mean (K, 2)
    and per-axis prior std (K,)."""
    ok = torch.isfinite(targets).all(-1)  # (N, K)
    d = F.grid_sample(maps.float(), torch.nan_to_num(targets).unsqueeze(1), mode="bilinear",
                      padding_mode="border", align_corners=False).squeeze(2).transpose(1, 2)  # (N, K, C)
    d = F.normalize(d, dim=-1) * ok.unsqueeze(-1)
    prototypes = d.sum(0) / ok.sum(0).clamp_min(1).unsqueeze(-1)
    mean = torch.nanmean(targets, dim=0)
    spread = torch.nanmean((targets - mean).pow(2).sum(-1), dim=0).nan_to_num(0.0)
    return prototypes, mean, (spread / 2 + PRIOR_MIN_STD ** 2).sqrt()


def locate(prototypes: torch.Tensor, maps: torch.Tensor, *, scale: float, window: int | None,
           prior: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, 2) normalised points and (B, K) confidences of the prototypes in (B, C, H, W) maps (torch only:
    ``LandmarkHead.predict`` runs it batch by batch, and its ONNX graph runs it as is)."""
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    lp = gaussian_log_prior(prior[0], prior[1], grid) if prior is not None else None
    desc = F.normalize(prototypes.float(), dim=-1)
    sim = torch.einsum("kc,bcn->bkn", desc, F.normalize(maps.float().flatten(2), dim=1)) * scale
    return window_soft_argmax(sim if lp is None else sim + lp, grid, window=window)


__all__ = ["PRIOR_MIN_STD", "fit_prototypes", "locate"]
