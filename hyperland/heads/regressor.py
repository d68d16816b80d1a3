"""The DVE-style landmark regressor (Thewlis et al. 2019, used by Cheng et al. 2021) and its training loop.

A 1×1 convolution maps the (projected) hypercolumn to K×M score maps; a spatial softmax (scores × a
multiplier) and soft-argmax give M intermediate points per landmark; a per-landmark linear map turns its M
points into the landmark. Coordinates are normalised to [-1, 1] over the network input (grid-cell centres
at (2j+1)/W - 1), and the loss (:func:`landmark_loss`) is the masked mean squared error there (default) or
DVE's smooth-L1 on coordinates scaled by ``loss_scale`` (the paper's recipe: ×10). ``softmax_scale`` defaults to
10 in LandmarkHead, not the paper's 100: on projected random-r18 features 100 saturates the softmax (docs/head.md).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import InvalidOptionError, WeightsMismatchError
from ..hypercolumn import grid_centers
from .options import AUGMENT, SOFTMAX_SCALE, SPLIT, Rule, integer, number, optional

logger = logging.getLogger(__name__)
LOSSES: tuple[str, ...] = ("mse", "smooth_l1")  # see landmark_loss


def _betas(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(number(0.0, hi=1.0)(x) for x in v)


OPTIONS: dict[str, Rule] = {  # what this method reads besides options.COMMON (LandmarkHead checks them)
    **AUGMENT,
    **SPLIT,
    "n_intermediate": (integer(1), "an integer >= 1"),
    "softmax_scale": SOFTMAX_SCALE,
    "epochs": (optional(integer(1)), "null or an integer >= 1"),
    "epoch_size": (optional(integer(1)), "null or an integer >= 1 (maps per epoch; few maps are repeated up to it)"),
    "steps": (optional(integer(1)), "null or an integer >= 1"),
    "batch_size": (integer(1), "an integer >= 1"),
    "lr": (number(0.0, strict=True), "a number > 0"),
    "weight_decay": (lambda v: v == "auto" or number(0.0)(v), 'a number >= 0 or "auto"'),
    "betas": (_betas, "two numbers in [0, 1), e.g. [0.9, 0.999] (Adam's betas)"),
    "final_lr": (number(0.0, hi=1.0 + 1e-12), "a number in [0, 1] (fraction of lr at the end of the cosine)"),
    "loss": (lambda v: v in LOSSES, f"one of {list(LOSSES)}"),
    "loss_scale": (number(0.0, strict=True), "a number > 0 (multiplies coordinates before the loss)"),
}
POOL = 2  # the descriptor grid's default average-pooling
CONFIDENCE = False  # locate() returns no confidences
FORMATS = (1, 2, 3)  # head formats that hold this method's state
_FLOAT32_BUDGET = 1 << 30  # bytes: training maps up to this size are converted to float32 once


class IntermediateRegressor(nn.Module):
    def __init__(self, channels: int, n_landmarks: int, *, n_intermediate: int = 50,
                 softmax_scale: float = 100.0) -> None:
        super().__init__()
        self.k, self.m, self.softmax_scale = n_landmarks, n_intermediate, float(softmax_scale)
        conv = nn.Conv2d(channels, n_landmarks * n_intermediate, 1)  # its init; applied as a matmul (faster on CPU)
        self.score_weight = nn.Parameter(conv.weight.detach().flatten(1).clone())  # (K*M, C)
        assert conv.bias is not None  # Conv2d's default bias=True
        self.score_bias = nn.Parameter(conv.bias.detach().clone().unsqueeze(1))  # (K*M, 1)
        # (K, 2, 2M): start as the mean of the intermediate points
        w = torch.zeros(n_landmarks, 2, n_intermediate, 2)
        w[:, 0, :, 0] = 1.0 / n_intermediate
        w[:, 1, :, 1] = 1.0 / n_intermediate
        self.weight = nn.Parameter(w.reshape(n_landmarks, 2, 2 * n_intermediate))
        self.bias = nn.Parameter(torch.zeros(n_landmarks, 2))

    def intermediate(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, K, M, 2) soft-argmax points in normalised coordinates."""
        b, _, h, w = maps.shape
        scores = torch.matmul(self.score_weight, maps.flatten(2)) + self.score_bias  # 1x1 conv: (B, K*M, HW)
        scores = scores * self.softmax_scale
        prob = torch.softmax(scores, dim=2)
        xy = prob @ grid_centers((h, w), device=maps.device).to(prob.dtype)  # (B, K*M, 2)
        return xy.view(b, self.k, self.m, 2)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, K, 2) landmarks in normalised coordinates."""
        pts = self.intermediate(maps).flatten(2)  # (B, K, 2M)
        return torch.einsum("bkm,kom->bko", pts, self.weight) + self.bias


Loss = Literal["mse", "smooth_l1"]


@dataclass
class Schedule:
    """Adam (``betas``) with a cosine learning-rate decay from ``lr`` to ``final_lr`` × ``lr`` over ``steps``
    updates of ``batch_size`` maps, minimising :func:`landmark_loss` (``loss``, ``loss_scale``)."""

    steps: int
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    final_lr: float = 0.0  # fraction of lr at the end of the cosine
    loss: Loss = "mse"
    loss_scale: float = 1.0

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` after ``step`` updates: ``final_lr`` + (1 - ``final_lr``) · ½(1 + cos(π·step/steps))."""
        cos = 0.5 * (1 + math.cos(math.pi * min(step, self.steps) / max(1, self.steps)))
        return self.final_lr + (1.0 - self.final_lr) * cos

    def loss_fn(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return landmark_loss(pred, target, loss=self.loss, scale=self.loss_scale)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite target coordinates only (missing landmarks are NaN)."""
    return landmark_loss(pred, target)


def landmark_loss(pred: torch.Tensor, target: torch.Tensor, *, loss: Loss = "mse", scale: float = 1.0) -> torch.Tensor:
    """Loss over the landmarks whose target is finite (missing landmarks are NaN), on ``scale`` × coordinates.

    ``"mse"``: squared distance ``|s·(p - t)|²`` averaged over landmarks. ``"smooth_l1"``: PyTorch's smooth L1
    (beta 1) of every coordinate of ``s·p - s·t`` averaged over coordinates — DVE's ``regression_loss(alpha=10)``,
    ``F.smooth_l1_loss(p * 10, t * 10)``, with ``scale=10``.
    """
    if loss not in LOSSES:
        raise InvalidOptionError(f"loss={loss!r}. Expected one of {list(LOSSES)}.")
    ok = torch.isfinite(target).all(-1)
    if not ok.any():
        return pred.sum() * 0.0
    p, t = pred[ok] * scale, torch.nan_to_num(target)[ok] * scale  # (n, 2)
    if loss == "mse":
        return ((p - t) ** 2).sum(-1).mean()
    return F.smooth_l1_loss(p, t, beta=1.0)


def _batches(maps: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [maps[i:i + size].float() for i in range(0, maps.shape[0], size)]


@torch.no_grad()
def predict_normalised(net: IntermediateRegressor, maps: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    net.eval()
    return torch.cat([net(b) for b in _batches(maps, batch_size)]) if maps.shape[0] else maps.new_zeros(0, net.k, 2)


def train_regressor(
    net: IntermediateRegressor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    schedule: Schedule,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
) -> dict[str, float | None]:
    """Fit ``net`` on (N, C, H, W) maps (any float dtype, converted per batch) and (N, K, 2) normalised targets.

    With ``val`` (maps, targets), the weights with the lowest validation loss (checked every
    max(50, steps // 10) steps and at the end) are kept. Returns the final train / best validation losses.
    """
    with torch.no_grad():  # start at the mean training shape: the bias absorbs the random init's offset
        first = predict_normalised(net, maps[:256])
        shift = torch.nanmean(targets[:256] - first, dim=0)
        net.bias.add_(torch.nan_to_num(shift))
    if maps.dtype != torch.float32 and maps.numel() * 4 <= _FLOAT32_BUDGET:
        maps = maps.float()  # convert once instead of every batch
    opt = torch.optim.Adam(net.parameters(), lr=schedule.lr, betas=schedule.betas, weight_decay=schedule.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule.lr_factor)
    n = maps.shape[0]
    best: tuple[float, dict[str, torch.Tensor] | None] = (math.inf, None)
    order = torch.randperm(n, generator=generator)
    pos, loss_v = 0, math.nan
    every = max(50, schedule.steps // 10)
    if val is not None:  # step 0 (the mean shape) competes too
        best = (float(schedule.loss_fn(predict_normalised(net, val[0]), val[1])), copy.deepcopy(net.state_dict()))
    with tqdm(total=schedule.steps, desc="fit head", disable=None if progress is None else not progress,
              leave=False) as bar:
        for step in range(1, schedule.steps + 1):
            net.train()
            if pos + schedule.batch_size > n and pos > 0:
                order, pos = torch.randperm(n, generator=generator), 0
            idx = order[pos:pos + schedule.batch_size]
            pos += len(idx)
            loss = schedule.loss_fn(net(maps[idx].float()), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_v = float(loss.detach())
            bar.update(1)
            if val is not None and (step % every == 0 or step == schedule.steps):
                vl = float(schedule.loss_fn(predict_normalised(net, val[0]), val[1]))
                bar.set_postfix(loss=f"{loss_v:.4f}", val=f"{vl:.4f}")
                if vl < best[0]:
                    best = (vl, copy.deepcopy(net.state_dict()))
    if best[1] is not None:
        net.load_state_dict(best[1])
    net.eval()
    return {"train_loss": loss_v, "val_loss": best[0] if math.isfinite(best[0]) else None}


def schedule_for(options: Mapping[str, Any], n: int, n_labelled: int | None = None) -> Schedule:
    """The training schedule for ``n`` training maps (``n_labelled`` labelled images) under a head's ``options``:
    ``steps``, else ``epochs`` over ``max(n, epoch_size)`` maps, else ``clip(20 · n / batch_size, 150, 1500)``
    steps; weight decay ``"auto"`` is ``clip(0.5 / n_labelled, 1e-5, 1e-2)``."""
    if options["steps"] is not None:
        steps = options["steps"]
    elif options["epochs"] is not None:
        steps = math.ceil(options["epochs"] * max(n, options["epoch_size"] or 0) / options["batch_size"])
    else:
        steps = int(np.clip(math.ceil(EPOCHS_AUTO * n / options["batch_size"]), MIN_STEPS, MAX_STEPS))
    wd = options["weight_decay"]
    if wd == "auto":  # a fixed prior: its weight relative to the mean loss shrinks as 1/N labelled images
        wd = float(np.clip(WD_AUTO / max(1, n_labelled or n), 1e-5, 1e-2))
    betas = options["betas"]
    return Schedule(steps=max(1, steps), batch_size=options["batch_size"], lr=options["lr"], weight_decay=float(wd),
                    betas=(float(betas[0]), float(betas[1])), final_lr=float(options["final_lr"]),
                    loss=options["loss"], loss_scale=float(options["loss_scale"]))


@dataclass
class State:
    """A fitted regressor head: its network and training history (saved as head.json ``history``)."""

    net: IntermediateRegressor
    history: dict[str, Any] | None

    def locate(self, maps: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(B, D, H, W) maps → normalised points (B, K, 2), and no confidence."""
        return predict_normalised(self.net, maps), None


    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"regressor.{k}": v for k, v in self.net.state_dict().items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], cfg: dict[str, Any], *, options: dict[str, Any],
                     where: str) -> State:
        """The network saved by :meth:`tensors`; WeightsMismatchError if it disagrees with head.json (``cfg``)."""
        k, c = int(options["n_landmarks"]), int(cfg["n_features_in"])
        net = IntermediateRegressor(c, k, n_intermediate=options["n_intermediate"],
                                    softmax_scale=options["softmax_scale"])
        state = {key[len("regressor."):]: v for key, v in tensors.items() if key.startswith("regressor.")}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsMismatchError(f"'{where}': regressor weights do not match head.json (K={k}, C={c}): "
                                       f"{str(exc).splitlines()[0]}") from exc
        return cls(net.eval(), cfg.get("history") or None)


def fit(maps: torch.Tensor, targets: torch.Tensor, options: dict[str, Any], *, groups: np.ndarray,
        val: tuple[torch.Tensor, torch.Tensor] | None, rng: np.random.Generator, generator: torch.Generator,
        seed: int) -> State:
    """Train the network on (N, D, H, W) maps and (N, K, 2) normalised targets (``groups``: the labelled image of
    each map), keeping the weights best on ``val`` (maps, targets) when given."""
    torch.manual_seed(seed)
    net = IntermediateRegressor(int(maps.shape[1]), int(targets.shape[1]), n_intermediate=options["n_intermediate"],
                                softmax_scale=options["softmax_scale"])
    sched = schedule_for(options, len(maps), len(np.unique(groups)))
    hist = train_regressor(net, maps, targets, sched, val=val, generator=generator, progress=options["progress"])
    return State(net, {**hist, "steps": sched.steps, "weight_decay": sched.weight_decay, "n_train_maps": len(maps),
                       "n_val": 0 if val is None else len(val[0])})


EPOCHS_AUTO = 20
MIN_STEPS = 150
MAX_STEPS = 1500
WD_AUTO = 0.5

__all__ = [
    "CONFIDENCE",
    "FORMATS",
    "LOSSES",
    "OPTIONS",
    "POOL",
    "IntermediateRegressor",
    "Schedule",
    "State",
    "fit",
    "landmark_loss",
    "masked_mse",
    "predict_normalised",
    "schedule_for",
    "train_regressor",
]
