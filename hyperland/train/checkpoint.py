"""Training checkpoints: atomic writes (temp file, fsync, rename) and safe loads (``weights_only=True``).

A checkpoint is a dict of tensors, numbers, strings and lists only — model (query + key encoder, queue and
pointer), optimizer, LR schedule, grad scaler, progress counters, the resolved config as a plain dict and the
RNG states of torch, CUDA, numpy and Python — so that ``torch.load(weights_only=True)`` reads it without
unpickling any object.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from .._io import atomic_write, atomic_write_text
from ..errors import CheckpointError

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = 1


class _PythonWriter(io.RawIOBase):
    """Makes torch.save write through Python calls: a full disk is then an OSError (ENOSPC), which the atomic
    writer reports as "the disk is full", instead of torch's cryptic "unexpected pos" RuntimeError."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.error: OSError | None = None  # the first failed write (torch may raise its own error after it)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        try:
            return self._f.write(b)
        except OSError as exc:
            self.error = self.error or exc
            raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    def write(f: BinaryIO) -> None:
        w = _PythonWriter(f)
        try:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, w)  # type: ignore[arg-type]  # a binary writer
        except RuntimeError as exc:
            if w.error is None:
                raise
            raise w.error from exc

    return atomic_write(path, write)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"No checkpoint at '{p}'. A run directory holds {CHECKPOINT_NAME} once the first "
                              "checkpoint was written (see --checkpoint-every / --checkpoint-every-steps).")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"Cannot read checkpoint '{p}' ({type(exc).__name__}: {exc}). It may be truncated "
                              "or not a hyperland training checkpoint.") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{p}' is not a hyperland training checkpoint (format {CHECKPOINT_FORMAT}).")
    return ckpt


def capture_rng() -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy's global generator and Python's ``random``."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    ver, internal, gauss_next = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": [ver, list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    ver, internal, gauss_next = state["python"]
    random.setstate((ver, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


__all__ = ["CHECKPOINT_NAME", "atomic_write", "atomic_write_text", "capture_rng", "load_checkpoint",
           "restore_rng", "save_checkpoint"]
