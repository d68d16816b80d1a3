"""Landmark metrics with float distances and missing-landmark masks.

Points are (N, K, 2) pixel (x, y). A landmark is missing when its ground truth is NaN or when
``visible[n, k]`` is False; missing landmarks are excluded from every average (never counted as an
error of 0). An image with no usable landmark, or whose normaliser is missing/zero, gets NaN and is
excluded from the means. All functions return fractions (0.05 = 5%), not percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .errors import InvalidKeypointsError, InvalidOptionError

ArrayLike = np.ndarray | Sequence
Norm = Literal["interocular", "bbox"] | float | ArrayLike


def _points(x: ArrayLike, name: str) -> np.ndarray:
    try:
        a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InvalidKeypointsError(f"{name} is not numeric ({exc}). Expected (N, K, 2) pixel (x, y).") from exc
    if a.ndim == 2 and a.shape[-1] == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 2:
        raise InvalidKeypointsError(f"{name} has shape {a.shape}. Expected (N, K, 2) pixel (x, y).")
    return a


def _pair(pred: ArrayLike, gt: ArrayLike, visible: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    p, g = _points(pred, "pred"), _points(gt, "gt")
    if p.shape != g.shape:
        raise InvalidKeypointsError(f"pred has shape {p.shape} but gt has shape {g.shape}. Expected equal shapes.")
    g = g.copy()
    if visible is not None:
        v = np.asarray(visible, dtype=bool)
        if v.shape != g.shape[:2]:
            raise InvalidKeypointsError(f"visible has shape {v.shape}. Expected {g.shape[:2]} booleans.")
        g[~v] = np.nan
    return p, g


def distances(pred: ArrayLike, gt: ArrayLike, *, visible: ArrayLike | None = None) -> np.ndarray:
    """(N, K) Euclidean pixel distances; NaN where the landmark is missing."""
    p, g = _pair(pred, gt, visible)
    return np.linalg.norm(p - g, axis=-1)


def normalizer(gt: ArrayLike, norm: Norm = "interocular", *, eyes: tuple[int, int] = (0, 1),
               visible: ArrayLike | None = None) -> np.ndarray:
    """(N,) reference lengths: eye distance, sqrt(w·h) of the visible points' box, or given values."""
    _, g = _pair(gt, gt, visible)
    n = g.shape[0]
    if isinstance(norm, str):
        if norm == "interocular":
            k = g.shape[1]
            if not all(0 <= e < k for e in eyes) or eyes[0] == eyes[1]:
                raise InvalidKeypointsError(f"eyes={eyes} are not two different landmark indices in [0, {k}).")
            d = np.linalg.norm(g[:, eyes[0]] - g[:, eyes[1]], axis=-1)
        elif norm == "bbox":
            with np.errstate(all="ignore"):
                lo, hi = np.nanmin(g, axis=1), np.nanmax(g, axis=1)
            d = np.sqrt(np.prod(hi - lo, axis=-1))
        else:
            raise InvalidOptionError(f"norm={norm!r}. Expected 'interocular', 'bbox', a number or an (N,) array.")
    else:
        d = np.broadcast_to(np.asarray(norm, dtype=np.float64), (n,)).copy()
    d = d.astype(np.float64)
    d[~(d > 0)] = np.nan
    return d


def nme(pred: ArrayLike, gt: ArrayLike, *, norm: Norm = "interocular", eyes: tuple[int, int] = (0, 1),
        visible: ArrayLike | None = None, reduce: Literal["mean", "none"] = "mean") -> float | np.ndarray:
    """Normalised mean error: per image, the mean distance over its usable landmarks divided by ``norm``
    (``"interocular"`` with ``eyes`` indices, ``"bbox"`` = sqrt(w·h) of the ground-truth box, or a scale);
    ``reduce="none"`` returns the (N,) per-image values (NaN where unusable), else their mean."""
    d = distances(pred, gt, visible=visible)
    ref = normalizer(gt, norm, eyes=eyes, visible=visible)
    with np.errstate(all="ignore"):
        per = np.nanmean(d, axis=1) / ref if d.shape[1] else np.full(d.shape[0], np.nan)
    if reduce == "none":
        return per
    return _nanmean(per)


def pck(pred: ArrayLike, gt: ArrayLike, *, alpha: float = 0.1, ref: Norm = "bbox", eyes: tuple[int, int] = (0, 1),
        visible: ArrayLike | None = None) -> float:
    """Fraction of usable landmarks within ``alpha`` × ref of the truth (float distances, ≤ counts as correct);
    ``ref``: ``"bbox"`` (sqrt(w·h) of the visible ground truth), ``"interocular"``, a number or (N,) array."""
    d = distances(pred, gt, visible=visible)
    r = normalizer(gt, ref, eyes=eyes, visible=visible)
    ok = np.isfinite(d) & np.isfinite(r)[:, None]
    if not ok.any():
        return float("nan")
    return float((d[ok] <= alpha * np.broadcast_to(r[:, None], d.shape)[ok]).mean())


def failure_rate(errors: ArrayLike, *, threshold: float = 0.1) -> float:
    """Fraction of images whose per-image error (e.g. ``nme(..., reduce="none")``) exceeds ``threshold``."""
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    e = e[np.isfinite(e)]
    return float((e > threshold).mean()) if e.size else float("nan")


def ced(errors: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Cumulative error distribution: fraction of images with error ≤ each threshold."""
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    e = e[np.isfinite(e)]
    t = np.asarray(thresholds, dtype=np.float64)
    return (e[None, :] <= t[:, None]).mean(axis=1) if e.size else np.full(t.shape, np.nan)


def auc(errors: ArrayLike, *, threshold: float = 0.1) -> float:
    """Area under the cumulative error curve on [0, threshold], divided by ``threshold`` (1 = all errors 0).

    Computed exactly: the integral of the step CDF is mean(max(0, threshold - e)) / threshold.
    """
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    e = e[np.isfinite(e)]
    if not e.size:
        return float("nan")
    return float(np.clip(threshold - e, 0.0, None).mean() / threshold)


def _nanmean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


__all__ = ["auc", "ced", "distances", "failure_rate", "nme", "normalizer", "pck"]
