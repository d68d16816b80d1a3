"""Optional landmark probe during training: fit a prototype landmark head on half of the labelled
validation faces and report the NME on the other half, so landmark quality can be watched while training.

It needs labelled validation samples (MTFL with ``val_count > 0``) and :class:`hyperland.head.LandmarkHead`;
without either it logs why once and returns None.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .data import DataSplit

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def _skip(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        logger.warning("Landmark probe skipped: %s", reason)


def run_probe(backbone: nn.Module, split: DataSplit, config: TrainConfig) -> Optional[dict[str, Any]]:
    if len(split.val_samples) < 4:
        _skip("needs labelled validation faces (an MTFL root with --val-count >= 4).")
        return None
    try:
        from ..head import LandmarkHead  # type: ignore[attr-defined]
        from ..metrics import nme  # type: ignore[attr-defined]
    except ImportError as exc:
        _skip(f"hyperland.head / hyperland.metrics are not available ({exc}).")
        return None
    from ..data import load_samples
    from ..model import HyperlandModel
    from .trainer import backbone_config

    samples = split.val_samples[: config.probe_images]
    half = len(samples) // 2
    model = HyperlandModel(backbone_config(config), copy.deepcopy(backbone).float().eval())
    model.backbone.to(memory_format=torch.contiguous_format)
    fit_imgs, fit_pts = load_samples(samples[:half])
    test_imgs, test_pts = load_samples(samples[half:])
    try:
        head = LandmarkHead().fit(model, fit_imgs, fit_pts)
        pred = head.predict(model, test_imgs)
        err = float(np.mean(np.asarray(nme(pred, test_pts))))
    except (TypeError, AttributeError) as exc:  # the head's API is owned elsewhere; never stop training for it
        _skip(f"LandmarkHead API did not match ({exc}).")
        return None
    return {"nme": err, "n_fit": half, "n_test": len(samples) - half}


__all__ = ["run_probe"]
