"""Input checks and validation splits for :class:`hyperland.LandmarkHead`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidKeypointsError


class PointsOutsideImageWarning(UserWarning):
    """Training points outside their image: they are kept (a crop may cut a landmark off) but flagged."""


def check_points(points: Any, *, n: int, k: int, what: str = "points", allow_all_nan: bool = False) -> np.ndarray:
    """(N, K, 2) float32 pixel (x, y), NaN = missing; typed errors for shape, count and all-missing landmarks
    (``allow_all_nan``: a landmark may be missing everywhere, but not every landmark)."""
    if points is None:
        raise InvalidKeypointsError(f"{what} is missing. Expected an ({n}, {k}, 2) array of pixel (x, y).")
    try:
        pts = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidKeypointsError(f"{what} is not a numeric array ({exc}). Expected ({n}, {k}, 2).") from exc
    if pts.ndim != 3 or pts.shape[-1] != 2:
        raise InvalidKeypointsError(f"{what} has shape {pts.shape}. Expected (N, K, 2) pixel (x, y), here "
                                    f"({n}, {k}, 2).")
    if pts.shape[0] != n:
        raise InvalidKeypointsError(f"Got {pts.shape[0]} point sets for {n} images. Expected one (K, 2) set per image.")
    if pts.shape[1] != k:
        raise InvalidKeypointsError(f"{what} has {pts.shape[1]} landmarks per image; the head has n_landmarks={k}. "
                                    f"Pass LandmarkHead(n_landmarks={pts.shape[1]}) or fix the points.")
    if np.isinf(pts).any():
        raise InvalidKeypointsError(f"{what} contains inf. Use NaN for missing landmarks.")
    pts = pts.copy()
    pts[np.isnan(pts).any(-1)] = np.nan
    if allow_all_nan and pts.size and np.isnan(pts).all():
        raise InvalidKeypointsError(f"{what} are NaN in every image, so there is nothing to compare with. Label at "
                                    "least one point.")
    if not allow_all_nan:
        empty = np.where(np.isnan(pts).all(axis=(0, 2)))[0]
        if len(empty):
            raise InvalidKeypointsError(f"Landmark(s) {empty.tolist()} are NaN in every image, so nothing can be "
                                        "learned for them. Label each landmark in at least one image.")
    return pts


def check_landmark_names(names: Sequence[str] | None, *, k: int) -> list[str] | None:
    """``fit(landmark_names=)``: None, or K distinct non-empty strings (head.json and CSV column names)."""
    if names is None:
        return None
    got = [names] if isinstance(names, str) else list(names)
    if len(got) != k or not all(isinstance(n, str) and n for n in got) or len(set(got)) != k:
        raise InvalidKeypointsError(f"landmark_names={got!r}: expected {k} distinct non-empty strings, one per "
                                    "landmark in the order of the points' K axis (or None).")
    return got


def warn_outside(points: np.ndarray, sizes: Sequence[tuple[int, int]]) -> None:
    """Warn (and keep) about points more than half a pixel outside their image."""
    hw = np.asarray(sizes, dtype=np.float32)[:, None, :]  # (N, 1, 2) as (H, W)
    with np.errstate(invalid="ignore"):
        out = (points < -0.5) | (points > hw[..., ::-1] - 0.5)
    bad = np.where(out.any(-1))
    if len(bad[0]):
        warnings.warn(f"{len(bad[0])} point(s) lie outside their image (first: image {bad[0][0]}, landmark "
                      f"{bad[1][0]}); they are kept as training targets.", PointsOutsideImageWarning, stacklevel=3)


def split_validation(n: int, fraction: float, min_val: int, rng: np.random.Generator, *,
                     points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: ``round(fraction·n)`` validation images when at least ``min_val`` of them, else none.

    ``points`` (N, K, 2), NaN = missing: a landmark labelled only in validation images gets one of them moved back
    to the training side, so that every landmark labelled anywhere is learned from at least one training image."""
    n_val = round(fraction * n)
    if fraction <= 0 or n_val < min_val or n - n_val < 1:
        return np.arange(n), np.arange(0)
    perm = rng.permutation(n)
    train, val = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    if points is not None:
        labelled = np.isfinite(points).all(-1)
        for j in range(labelled.shape[1]):
            if not labelled[train, j].any() and labelled[val, j].any():
                move = val[labelled[val, j]][:1]
                train, val = np.union1d(train, move), np.setdiff1d(val, move)
    return train, val


__all__ = ["PointsOutsideImageWarning", "check_landmark_names", "check_points", "split_validation",
           "warn_outside"]
