"""Convert the authors' contrast-landmark checkpoints (Cheng, Su & Maji) into a hyperland model directory.

Their files (e.g. ``ckpt_epoch_800_resnet50_celeba.pth``) are dicts with ``model`` = the query encoder's
state dict under ``encoder.module.*`` (a torchvision-style ResNet whose ``fc`` is the 128-d projection) and
a pickled ``argparse.Namespace`` of the training options (``opt``). We read them with torch's
``weights_only`` unpickler, which builds tensors and plain containers only; ``argparse.Namespace`` is the
one class added to its allow-list, and nothing else can be executed. ``fc`` is dropped by an explicit filter;
every other key must match the timm backbone exactly (strict loading).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .backbone import create_backbone, load_state
from .config import ModelConfig
from .errors import CheckpointError
from .hub import sha256_file
from .model import HyperlandModel

logger = logging.getLogger(__name__)
ENCODER_PREFIXES = ("encoder.module.", "module.encoder.", "encoder.", "module.")
DROPPED_PREFIXES = ("fc.",)  # the 128-d contrastive projection of the query encoder
SAFE_GLOBALS: list[Any] = [argparse.Namespace]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load with weights_only=True and argparse.Namespace as the only extra allowed class."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"Checkpoint '{p}' does not exist.")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for foreign classes, RuntimeError/EOFError for broken files
        raise CheckpointError(
            f"Cannot read '{p}' with the safe loader ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
            "Only tensors, plain containers and argparse.Namespace are allowed; a file that needs other classes "
            "is not an authors' contrast-landmark checkpoint, and is never unpickled unsafely here."
        ) from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        got = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"'{p}' holds {got}. Expected a dict with 'model' (the query encoder's state dict).")
    return ckpt


def options(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The training options stored in the checkpoint (argparse Namespace or dict), JSON-friendly."""
    for key in ("opt", "args", "options"):
        raw = ckpt.get(key)
        if isinstance(raw, argparse.Namespace):
            raw = vars(raw)
        if isinstance(raw, dict):
            return {str(k): v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                    for k, v in raw.items()}
    return {}


def encoder_state(model: dict[str, torch.Tensor], *, drop: Sequence[str] = DROPPED_PREFIXES
                  ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Strip the shared encoder prefix and drop the projection head; returns (state, dropped keys)."""
    keys = list(model)
    prefix = next((p for p in ENCODER_PREFIXES if keys and all(k.startswith(p) for k in keys)), "")
    if not prefix and any(k.startswith(ENCODER_PREFIXES) for k in keys):
        others = [k for k in keys if not k.startswith(ENCODER_PREFIXES)][:3]
        raise CheckpointError(f"The model state mixes encoder keys with others (e.g. {others}). Expected every key "
                              f"under one of {ENCODER_PREFIXES}.")
    state = {k[len(prefix):]: v for k, v in model.items()}
    dropped = sorted(k for k in state if k.startswith(tuple(drop)))
    return {k: v for k, v in state.items() if k not in dropped}, dropped


def convert_checkpoint(
    path: str | Path,
    *,
    arch: str,
    out: str | Path,
    name: str | None = None,
    resize: int = 136,
    border: int = 20,
    license: str = "other",
) -> HyperlandModel:
    """Read an authors' checkpoint, load its encoder into a timm ``arch`` backbone strictly and save it to ``out``."""
    ckpt = read_checkpoint(path)
    opt = options(ckpt)
    if isinstance(opt.get("arch"), str) and opt["arch"] != arch:
        raise CheckpointError(f"'{path}' was trained with arch={opt['arch']!r}, but --arch {arch} was given. "
                              "Pass the checkpoint's architecture.")
    state, dropped = encoder_state(ckpt["model"])
    config = ModelConfig(architecture=arch, resize=resize, border=border, name=name or Path(out).name,
                         provenance={"source": "converted from the authors' contrast-landmark checkpoint",
                                     "checkpoint": Path(path).name, "checkpoint_sha256": sha256_file(path),
                                     "epoch": ckpt.get("epoch") if isinstance(ckpt.get("epoch"), int) else None,
                                     "dropped_keys": dropped, "options": opt, "license": license})
    backbone = create_backbone(config, seed=None)
    own = backbone.state_dict()
    missing_nbt = [k for k in own if k.endswith("num_batches_tracked") and k not in state]
    if missing_nbt and all(k.endswith("num_batches_tracked") for k in set(own) - set(state)):
        # checkpoints from PyTorch < 0.4.1 have no BN step counters; they do not affect eval-mode outputs
        state.update({k: torch.zeros_like(own[k]) for k in missing_nbt})
    load_state(backbone, state, source=str(path))
    model = HyperlandModel(config, backbone)
    model.save_pretrained(out)
    logger.info("Converted %s → %s (dropped %s)", path, out, dropped)
    return model


__all__ = ["DROPPED_PREFIXES", "ENCODER_PREFIXES", "convert_checkpoint", "encoder_state", "options", "read_checkpoint"]
