"""The landmark regressor of Cheng, Su & Maji (ICCV 2021) as a named option set for :class:`LandmarkHead`.

The paper's recipe (after DVE, Thewlis et al. 2019): the full hypercolumn (no PCA) on a 48×48 grid (every
layer resized bilinearly; at 96 px input that upsamples even layer1's 24×24), the soft-argmax regressor with
50 intermediate points and the softmax × 100, DVE's smooth-L1 loss on coordinates × 10, Adam with betas
(0.5, 0.999), a cosine decay of the learning rate to 8e-4 × lr, batch 32, and

* few-shot: lr 1e-2, weight decay 5e-2, 1,000 epochs of 1,000 maps (the K labelled images repeated up to
  1,000 per epoch) with a light thin-plate-spline warp (rotation σ 2°, scale and translation σ 0.02);
* full sets: lr 1e-3, weight decay 5e-4, 200 epochs, no warp.

What differs here, on purpose (CPU): the warps are **fixed copies** (``n_augment=8`` per labelled image,
extracted once, as every few-shot head here does) instead of a fresh warp every epoch, since re-extracting the
backbone every epoch is too costly on CPU. ``hyperland.augment.warp`` draws uniform, not Gaussian, amounts, so
each σ above becomes the uniform half-width with the same standard deviation (σ·√3: rotation ±3.46°, zoom
1 ± 0.0346, shift ±0.0346 of the half-side, TPS control points ±0.0346 of the half-side; the TPS amplitude is
our choice at the same σ). No validation split (``val_fraction=0``): the last weights are kept, as in the
paper. With 1,000 epochs of 1,000 full 48×48 hypercolumns the few-shot fit is hours on a CPU; pass a smaller
``epochs`` to :meth:`LandmarkHead.paper` and report it.
"""

from __future__ import annotations

import math
from typing import Any

_SQRT3 = math.sqrt(3.0)  # a uniform U(±a) has standard deviation a / √3

COMMON: dict[str, Any] = {
    "method": "regressor",
    "descriptor": "pca", "n_components": None,  # the full hypercolumn: no PCA, never a learned projection
    "grid": 48, "pool": 1,
    "n_intermediate": 50, "softmax_scale": 100.0,
    "loss": "smooth_l1", "loss_scale": 10.0,
    "betas": (0.5, 0.999), "final_lr": 8e-4, "batch_size": 32,
    "val_fraction": 0.0,
}
FEW_SHOT: dict[str, Any] = {
    "lr": 1e-2, "weight_decay": 5e-2, "epochs": 1000, "epoch_size": 1000,
    "augment": True, "n_augment": 8,
    "rotation": 2.0 * _SQRT3, "scale": (1.0 - 0.02 * _SQRT3, 1.0 + 0.02 * _SQRT3),
    "translate": 0.02 * _SQRT3, "tps": 0.02 * _SQRT3,
}
FULL: dict[str, Any] = {
    "lr": 1e-3, "weight_decay": 5e-4, "epochs": 200, "epoch_size": None, "augment": False,
}


def paper_options(*, few_shot: bool) -> dict[str, Any]:
    """The LandmarkHead hyperparameters of the paper's regressor (a new dict): ``few_shot=True`` for a handful
    of labelled images (the paper: up to 100), False for full training sets."""
    return {**COMMON, **(FEW_SHOT if few_shot else FULL)}


__all__ = ["paper_options"]
