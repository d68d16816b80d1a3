"""Helpers shared by the tests of hyperland.train: tiny configs on a handful of real MTFL faces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hyperland.data import read_mtfl
from hyperland.train.config import TrainConfig


def image_list(mtfl_root: Path, folder: Path, n: int = 32) -> Path:
    """A list file of the first ``n`` training.txt faces (never AFLW, never the lfwnet test)."""
    samples = read_mtfl(mtfl_root, "training")[:n]
    path = folder / "images.txt"
    path.write_text("\n".join(str(s.image) for s in samples) + "\n", encoding="utf-8")
    return path


def tiny_config(data: Path, **changes: Any) -> TrainConfig:
    """timm's test_resnet at 32 px, batch 8: a few optimiser steps take about a second on one CPU thread."""
    base: dict[str, Any] = {
        "data": str(data), "architecture": "test_resnet", "resize": 40, "border": 4, "batch_size": 8,
        "queue_size": 16, "epochs": 2, "num_workers": 0, "lr": 0.05, "shuffle_groups": 2, "log_every": 1,
        "progress": False, "checkpoint_every": 1,
    }
    base.update(changes)
    return TrainConfig(**base)


def model_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)["model"]
