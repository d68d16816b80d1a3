"""The DVE-style landmark regressor (Thewlis et al. 2019, used by Cheng et al. 2021) and its training loop.

A 1×1 convolution maps the (projected) hypercolumn to K×M score maps; a spatial softmax (scores × a
multiplier) and soft-argmax give M intermediate points per landmark; a per-landmark linear map turns its M
points into the landmark. Coordinates are normalised to [-1, 1] over the network input (grid-cell centres
at (2j+1)/W - 1), and the loss (:func:`landmark_loss`) is the masked mean squared error there (default) or
DVE's smooth-L1 on coordinates scaled by ``loss_scale`` (the paper's recipe: ×10).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import InvalidOptionError
from ..hypercolumn import grid_centers
from .params import LOSSES

if TYPE_CHECKING:
    from .estimator import LandmarkHead

logger = logging.getLogger(__name__)
_FLOAT32_BUDGET = 1 << 30  # bytes: training maps up to this size are converted to float32 once


class IntermediateRegressor(nn.Module):
    def __init__(self, channels: int, n_landmarks: int, *, n_intermediate: int = 50,
                 softmax_scale: float = 100.0) -> None:
        super().__init__()
        self.k, self.m, self.softmax_scale = n_landmarks, n_intermediate, float(softmax_scale)
        conv = nn.Conv2d(channels, n_landmarks * n_intermediate, 1)  # its init; applied as a matmul (faster on CPU)
        self.score_weight = nn.Parameter(conv.weight.detach().flatten(1).clone())  # (K*M, C)
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
    eval_every: int = 0  # 0: every max(50, steps // 10) steps
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
) -> dict[str, float]:
    """Fit ``net`` on (N, C, H, W) maps (any float dtype, converted per batch) and (N, K, 2) normalised targets.

    With ``val`` (maps, targets), the weights with the lowest validation loss (checked every
    ``eval_every`` steps and at the end) are kept. Returns the final train / best validation losses.
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
    every = schedule.eval_every or max(50, schedule.steps // 10)
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


def schedule_for(head: LandmarkHead, n: int, n_labelled: int | None = None) -> Schedule:
    """The head's training schedule for ``n`` training maps (``n_labelled`` labelled images): ``steps``, else
    ``epochs`` over ``max(n, epoch_size)`` maps, else ``clip(20 · n / batch_size, 150, 1500)`` steps; weight decay
    ``"auto"`` is ``clip(0.5 / n_labelled, 1e-5, 1e-2)``."""
    if head.steps is not None:
        steps = head.steps
    elif head.epochs is not None:
        steps = math.ceil(head.epochs * max(n, head.epoch_size or 0) / head.batch_size)
    else:
        steps = int(np.clip(math.ceil(EPOCHS_AUTO * n / head.batch_size), MIN_STEPS, MAX_STEPS))
    wd = head.weight_decay
    if wd == "auto":  # a fixed prior: its weight relative to the mean loss shrinks as 1/N labelled images
        wd = float(np.clip(WD_AUTO / max(1, n_labelled or n), 1e-5, 1e-2))
    return Schedule(steps=max(1, steps), batch_size=head.batch_size, lr=head.lr, weight_decay=float(wd),
                    betas=(float(head.betas[0]), float(head.betas[1])), final_lr=float(head.final_lr),
                    loss=head.loss, loss_scale=float(head.loss_scale))


def fit_regressor(head: LandmarkHead, maps: torch.Tensor, targets: torch.Tensor, *, n_labelled: int,
                  val: tuple[torch.Tensor, torch.Tensor] | None, generator: torch.Generator,
                  seed: int) -> tuple[IntermediateRegressor, dict[str, Any]]:
    """The regressor head's network trained on (N, D, H, W) maps and (N, K, 2) normalised targets, and its
    history."""
    torch.manual_seed(seed)
    net = IntermediateRegressor(int(maps.shape[1]), head.n_landmarks, n_intermediate=head.n_intermediate,
                                softmax_scale=head.softmax_scale)
    sched = schedule_for(head, len(maps), n_labelled)
    hist = train_regressor(net, maps, targets, sched, val=val, generator=generator, progress=head.progress)
    return net, {**hist, "steps": sched.steps, "weight_decay": sched.weight_decay, "n_train_maps": len(maps),
                 "n_val": 0 if val is None else len(val[0])}


EPOCHS_AUTO = 20
MIN_STEPS = 150
MAX_STEPS = 1500
WD_AUTO = 0.5

__all__ = [
    "LOSSES",
    "IntermediateRegressor",
    "Schedule",
    "fit_regressor",
    "landmark_loss",
    "masked_mse",
    "predict_normalised",
    "schedule_for",
    "train_regressor",
]
