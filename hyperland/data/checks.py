"""Validation shared by every loader: missing files, malformed lines, landmark counts, points outside the
image, empty splits and few-shot draws. Errors are :class:`~hyperland.errors.DatasetError` and name the
annotation file and line where one is known.

Points outside the image
    Real annotations put a few points just outside the frame (a chin below a tight crop, an occluded bird
    part at the border). Loaders therefore take ``outside="warn"`` by default: one warning per dataset says
    how many samples have points more than ``margin`` pixels outside ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``
    and names the first. ``outside="error"`` raises instead, ``outside="ignore"`` skips the check (it reads
    every image header, which costs about 0.1 ms per image).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DatasetError, InvalidImageError, InvalidOptionError
from .base import Sample

logger = logging.getLogger(__name__)
Outside = Literal["warn", "error", "ignore"]
OUTSIDE: tuple[str, ...] = ("warn", "error", "ignore")


def where(path: str | Path, lineno: int | None = None) -> str:
    """``file:line`` prefix for messages."""
    return f"{path}:{lineno}" if lineno is not None else str(path)


def require_file(image: Path, *, source: str | Path, lineno: int | None = None) -> Path:
    """Raise when an image listed in an annotation file does not exist."""
    if not image.is_file():
        raise DatasetError(f"{where(source, lineno)}: image '{image}' is listed but missing. Check the dataset "
                           "root (pass the folder the paths are relative to) or remove the entry.")
    return image


def parse_floats(fields: Sequence[str], *, source: str | Path, lineno: int | None, what: str) -> np.ndarray:
    """Floats from text fields; an empty field or ``nan`` becomes NaN (a missing landmark)."""
    try:
        return np.array([float(f) if f.strip() not in ("", "nan", "NaN") else np.nan for f in fields], np.float32)
    except ValueError as exc:
        raise DatasetError(f"{where(source, lineno)}: {what} must be numbers ({exc}).") from exc


def check_landmark_count(samples: Sequence[Sample], *, source: str | Path) -> None:
    """Every sample must have the same number of landmarks K; name the first one that differs."""
    if not samples:
        return
    k = samples[0].n_landmarks
    for s in samples:
        if s.n_landmarks != k:
            line = s.meta.get("line")
            raise DatasetError(
                f"{where(source, line)}: '{s.image}' has {s.n_landmarks} landmarks but '{samples[0].image}' has "
                f"{k}. Expected the same K for every sample; fix or drop that entry."
            )


def check_not_empty(samples: Sequence[Sample], *, source: str | Path, split: str = "") -> None:
    if not samples:
        name = f" split '{split}'" if split else ""
        raise DatasetError(f"{source}:{name} holds no samples. Expected at least one labelled image.")


def outside_margin(points: np.ndarray, size: tuple[int, int], *, margin: float = 0.0) -> bool:
    """True when a finite point lies more than ``margin`` px outside the pixel frame of an (H, W) image."""
    h, w = size
    p = points[np.isfinite(points).all(axis=1)]
    lo = -0.5 - margin
    return bool(((p[:, 0] < lo) | (p[:, 1] < lo) | (p[:, 0] > w - 0.5 + margin) | (p[:, 1] > h - 0.5 + margin)).any())


def check_in_image(samples: Sequence[Sample], *, outside: Outside = "warn", source: str | Path,
                   margin: float = 0.0) -> list[Sample]:
    """Apply the ``outside`` policy (see the module docstring); returns ``samples`` unchanged."""
    if outside not in OUTSIDE:
        raise InvalidOptionError(f"outside={outside!r}. Expected one of {OUTSIDE}.")
    if outside == "ignore":
        return list(samples)
    from ..images import image_size  # here: reading the dataset registry (the CLI's --help) needs no torch

    bad = []
    for s in samples:
        try:
            size = image_size(s.image)
        except InvalidImageError as exc:
            raise DatasetError(f"{where(source, s.meta.get('line'))}: {exc}") from exc
        if outside_margin(s.points, size, margin=margin):
            bad.append(s)
    if bad:
        first = bad[0]
        msg = (f"{where(source, first.meta.get('line'))}: {len(bad)} of {len(samples)} samples have landmarks "
               f"outside their image, first '{first.image}'. Pass outside='ignore' to accept them, or fix the "
               "annotations.")
        if outside == "error":
            raise DatasetError(msg)
        warnings.warn(msg, stacklevel=3)
    return list(samples)


def draw(samples: Sequence[Sample], n: int, *, seed: int) -> list[Sample]:
    """``n`` samples drawn without replacement, reproducibly for ``seed`` (numpy default_rng)."""
    if n < 1:
        raise InvalidOptionError(f"Asked for {n} labelled samples. Expected a positive count.")
    if n > len(samples):
        raise DatasetError(f"Asked for {n} labelled samples but the pool holds {len(samples)}. Request at most "
                           f"{len(samples)} shots (or 'all').")
    idx = np.random.default_rng(seed).choice(len(samples), size=n, replace=False)
    return [samples[i] for i in sorted(idx.tolist())]


def resolve_path(path: str, base: Path) -> Path:
    """An image path of an annotation file: absolute as it is, else relative to ``base``."""
    p = Path(path)
    return p if p.is_absolute() else base / p


def relative_path(image: str | Path, base: Path) -> str:
    """``image`` relative to ``base`` when it lies under it (POSIX separators), else its absolute path."""
    rel, base = Path(image).resolve(), base.resolve()
    return (rel.relative_to(base) if rel.is_relative_to(base) else rel).as_posix()


def finish_samples(samples: list[Sample], *, source: Path, outside: Outside, check_files: bool) -> list[Sample]:
    """The checks every reader ends with: not empty, one landmark count, points inside the image."""
    check_not_empty(samples, source=source)
    check_landmark_count(samples, source=source)
    if check_files:
        check_in_image(samples, outside=outside, source=source)
    return samples


__all__ = ["OUTSIDE", "Outside", "check_in_image", "check_landmark_count", "check_not_empty", "draw", "finish_samples",
           "outside_margin", "parse_floats", "relative_path", "require_file", "resolve_path", "where"]
