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


class ToyBackbone(torch.nn.Module):
    """A one-stage 'backbone' with BatchNorm, returning a feature list like timm's features_only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.relu(self.bn(self.conv(x)))]


def toy_moco(*, queue: int = 6, groups: int = 1, momentum: float = 0.9) -> Any:
    from hyperland.train.moco import Encoder, MoCo, ProjectionHead

    torch.manual_seed(0)
    return MoCo(Encoder(ToyBackbone(), ProjectionHead(4, hidden_dim=5, out_dim=3)), queue_size=queue,
                momentum=momentum, temperature=0.1, groups=groups)


def ddp_moco_step(rank: int, world: int, store: str, batch: torch.Tensor, out: str) -> None:
    """One MoCo forward/backward under DDP (gloo) on this rank's slice of ``batch``; saves what it saw."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        m = toy_moco(queue=24, groups=1)
        ddp = DistributedDataParallel(m)
        b = batch.shape[1] // world
        im_q, im_k = batch[0, rank * b:(rank + 1) * b], batch[1, rank * b:(rank + 1) * b]
        loss, _ = ddp(im_q, im_k, shuffle=torch.Generator().manual_seed(11))
        loss.backward()
        torch.save({"loss": loss.detach(), "grad": m.encoder_q.backbone.conv.weight.grad, "queue": m.queue,
                    "ptr": m.queue_ptr}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
    # Skip interpreter teardown, as hyperland-train does under torchrun: a gloo process can abort in C++ static
    # destructors at exit ("terminate called without an active exception", seen ~1 in 20 runs), after its work
    # and its output file are complete.
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
