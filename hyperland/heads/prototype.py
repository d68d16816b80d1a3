"""The training-free prototype head: the mean L2-normalised descriptor of each landmark over the labelled maps,
located in a new map by ``softmax_scale`` × cosine similarity plus a Gaussian shape prior (mean and spread of
the landmark over the labelled images), soft-argmax in a window around the best cell; the share of the
posterior inside that window is the confidence. Its validation split only holds labelled images out (it has
nothing to select)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WeightsMismatchError
from ..geometry import gaussian_log_prior, window_soft_argmax
from .baselines import MeanShape
from .options import SOFTMAX_SCALE, SPLIT, Rule, boolean, integer, optional

OPTIONS: dict[str, Rule] = {  # what this method reads besides options.COMMON (LandmarkHead checks them)
    **SPLIT,
    "softmax_scale": SOFTMAX_SCALE,
    "window": (optional(integer(1)), "null or an integer >= 1 (cells)"),
    "prior": (boolean, "true or false"),
}
POOL = 2  # the descriptor grid's default average-pooling
CONFIDENCE = True  # locate() returns per-landmark confidences
FORMATS = (1, 2, 3)  # head formats that hold this method's state
PRIOR_MIN_STD = 0.1  # normalised units (5% of the input side): the spread assumed from a single labelled image


def fit_prototypes(maps: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, C, H, W) maps and (N, K, 2) normalised targets (NaN = missing) → prototypes (K, C), prior mean (K, 2)
    and per-axis prior std (K,)."""
    ok = torch.isfinite(targets).all(-1)  # (N, K)
    d = F.grid_sample(maps.float(), torch.nan_to_num(targets).unsqueeze(1), mode="bilinear",
                      padding_mode="border", align_corners=False).squeeze(2).transpose(1, 2)  # (N, K, C)
    d = F.normalize(d, dim=-1) * ok.unsqueeze(-1)
    prototypes = d.sum(0) / ok.sum(0).clamp_min(1).unsqueeze(-1)
    mean = MeanShape().fit(None, targets).shape_
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


@dataclass
class State:
    """A fitted prototype head: prototypes (K, C), the shape prior (mean (K, 2), spread (K,)) and the options
    :func:`locate` reads."""

    prototypes: torch.Tensor
    prior_mean: torch.Tensor
    prior_std: torch.Tensor
    scale: float
    window: int | None
    prior: bool

    def locate(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return locate(self.prototypes, maps, scale=self.scale, window=self.window,
                      prior=(self.prior_mean, self.prior_std) if self.prior else None)


    def tensors(self) -> dict[str, torch.Tensor]:
        return {"prototypes": self.prototypes, "prior.mean": self.prior_mean, "prior.std": self.prior_std}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], cfg: dict[str, Any], *, options: dict[str, Any],
                     where: str) -> State:
        """The state saved by :meth:`tensors`; WeightsMismatchError if it disagrees with head.json (``cfg``)."""
        k, c = int(options["n_landmarks"]), int(cfg["n_features_in"])
        protos = tensors.get("prototypes")
        if protos is None or tuple(protos.shape) != (k, c):
            raise WeightsMismatchError(f"'{where}': prototypes of shape "
                                       f"{None if protos is None else tuple(protos.shape)}; head.json says ({k}, {c}).")
        if "prior.mean" not in tensors or tuple(tensors["prior.mean"].shape) != (k, 2):
            raise WeightsMismatchError(f"'{where}': the prototype head has no (K, 2) 'prior.mean'. Save it again.")
        return cls(protos, tensors["prior.mean"], tensors["prior.std"], **_read(options))


def fit(maps: torch.Tensor, targets: torch.Tensor, options: dict[str, Any], *, groups: np.ndarray,
        val: tuple[torch.Tensor, torch.Tensor] | None, rng: np.random.Generator, generator: torch.Generator,
        seed: int) -> State:
    """Prototypes and shape prior of (N, C, H, W) maps and (N, K, 2) normalised targets (no training: nothing
    else is read)."""
    return State(*fit_prototypes(maps, targets), **_read(options))


def _read(options: dict[str, Any]) -> dict[str, Any]:
    return {"scale": options["softmax_scale"], "window": options["window"], "prior": options["prior"]}


__all__ = ["CONFIDENCE", "FORMATS", "OPTIONS", "POOL", "PRIOR_MIN_STD", "State", "fit", "fit_prototypes", "locate"]
