"""Checks that saved weights are the ones that were saved: the sha256 recorded beside them (a model folder's
config.json ``weights_sha256``, a saved head's head.json ``weights_sha256``) and finite values.

Set ``HYPERLAND_SKIP_CHECKSUMS=1`` to load a folder whose weights were edited by hand on purpose (or delete the
recorded ``weights_sha256``); non-finite weights are refused always.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ChecksumMismatchError, WeightsMismatchError

SKIP_ENV = "HYPERLAND_SKIP_CHECKSUMS"

if TYPE_CHECKING:
    import torch


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def skip_checksums() -> bool:
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def verify_recorded_sha256(path: str | os.PathLike, expected: str | None, *, record: str | os.PathLike) -> None:
    """ChecksumMismatchError when ``path`` no longer has the sha256 ``expected`` that ``record`` holds (nothing
    is checked when ``expected`` is None, for folders saved before checksums were recorded, or with SKIP_ENV)."""
    if expected is None or skip_checksums():
        return
    got = sha256_file(path)
    if got != expected:
        raise ChecksumMismatchError(
            f"'{path}' is not the file that was saved: its sha256 is {got[:16]}..., {Path(record).name} recorded "
            f"{expected[:16]}.... It changed since (disk or copy corruption, an interrupted copy, or an edit). Copy or "
            f"save it again. If you edited the weights on purpose, delete 'weights_sha256' from '{record}' or set "
            f"the environment variable {SKIP_ENV}=1.")


def check_finite(tensors: Mapping[str, torch.Tensor], *, path: str | os.PathLike) -> None:
    """WeightsMismatchError when a floating-point tensor holds NaN or inf."""
    import torch

    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsMismatchError(
            f"'{path}': {len(bad)} weight tensor(s) hold NaN or inf values (e.g. {bad[:3]}); predictions from them "
            "would be NaN or wrong. The file is damaged or was saved from a diverged fit: save or export it again.")


__all__ = ["SKIP_ENV", "check_finite", "sha256_file", "skip_checksums", "verify_recorded_sha256"]
