"""torch.distributed helpers that fall back to one process. Only the CLI calls :func:`init_from_env`.

Launch with torchrun (``env://``: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); without those
variables everything below acts as a single process of rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def info() -> DistInfo:
    return DistInfo(rank(), world_size(), int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0)


def init_from_env(*, backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group torchrun describes (``env://``); a no-op without WORLD_SIZE > 1.

    ``backend`` defaults to NCCL when CUDA is available, else gloo. Each process uses GPU LOCAL_RANK.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(seconds=timeout_s))
    return info()


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@torch.no_grad()
def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0 (rank order); itself on one process. No gradient."""
    if not is_distributed() or world_size() == 1:
        return tensor
    tensor = tensor.contiguous()
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, dim=0)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over ranks (a new tensor); itself on one process."""
    if not is_distributed() or world_size() == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def all_reduce_sum_int(value: int, *, device: torch.device | str = "cpu") -> int:
    if not is_distributed() or world_size() == 1:
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.long, device=device)
    dist.all_reduce(t)
    return int(t.item())


__all__ = [
    "DistInfo",
    "all_gather_cat",
    "all_reduce_mean",
    "all_reduce_sum_int",
    "barrier",
    "info",
    "init_from_env",
    "is_distributed",
    "is_main",
    "rank",
    "shutdown",
    "world_size",
]
