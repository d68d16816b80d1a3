"""Optional landmark probe during training: fit a training-free prototype :class:`hyperland.head.LandmarkHead`
on half of the labelled validation faces and report its NME (%) on the other half, beside the mean-shape
baseline of the same split, so landmark quality can be watched while training.

It needs labelled validation samples (an MTFL root with ``val_count > 0``); without them it logs why once
and returns None. Faces are the validation images resized to ``resize`` × ``resize`` (whole image, no
label-derived crop), points in that frame.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from torch import nn

from ..backbone import create_backbone
from ..config import ModelConfig
from .data import DataSplit

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def _skip(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        logger.warning("Landmark probe skipped: %s", reason)


def run_probe(backbone: nn.Module, split: DataSplit, config: ModelConfig, *, max_images: int = 200
              ) -> dict[str, Any] | None:
    """{"nme": head NME %, "mean_shape_nme": baseline %, "n_fit", "n_test"} or None when it cannot run."""
    if len(split.val_samples) < 4:
        _skip("it needs labelled validation faces (an MTFL root with --val-count >= 4).")
        return None
    from ..data import load_samples
    from ..heads import LandmarkHead
    from ..metrics import nme
    from ..model import HyperlandModel

    samples = split.val_samples[:max_images]
    half = len(samples) // 2
    fresh = create_backbone(config, seed=None)
    fresh.load_state_dict({k: v.detach().float().cpu() for k, v in backbone.state_dict().items()})
    model = HyperlandModel(config, fresh)
    fit_imgs, fit_pts = load_samples(samples[:half], size=config.resize)
    test_imgs, test_pts = load_samples(samples[half:], size=config.resize)
    head = LandmarkHead(fit_pts.shape[1], method="prototype", random_state=0, progress=False)
    head.fit(model, fit_imgs, fit_pts)
    mean_shape = np.broadcast_to(np.nanmean(fit_pts, axis=0), test_pts.shape)
    return {"nme": head.score(test_imgs, test_pts), "mean_shape_nme": 100.0 * float(nme(mean_shape, test_pts)),
            "n_fit": half, "n_test": len(samples) - half}


__all__ = ["run_probe"]
