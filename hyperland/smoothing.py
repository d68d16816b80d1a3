"""Temporal smoothing of landmark tracks, confidence-aware.

Tracks are ``(T, K, 2)`` pixel points over ``T`` frames with ``(T, K)`` confidences in [0, 1] (or None: every
point counts as confident). Both filters first **fill**: a point that is NaN or whose confidence is below
``min_confidence`` is replaced by linear interpolation in time between the nearest confident points of the same
landmark (before the first and after the last confident point it takes that point's value), so an outlier the
head was unsure of is replaced by its confident neighbours and weighs nothing in the filter. A landmark with no
confident point in the whole track keeps its raw points. ``min_confidence=None`` (the default) is relative:
a quarter of the landmark's median confidence over the track, because confidences are not calibrated across heads
and scenes (on the openfield video the default ridge head's median confidence is 0.06, a prototype head's 0.55),
so a fixed threshold would fill most points of one head and none of another; the relative rule fills the frames
where the head is much less sure than usual (occlusion, motion blur). Pass a number for an absolute threshold.
Then:

* ``savgol[:WINDOW]``: Savitzky–Golay (:func:`scipy.signal.savgol_filter`, polynomial order 2, ``mode="interp"``
  so the first and last half-windows are fitted by the window's polynomial) over ``WINDOW`` samples (odd, default
  7; shortened to the track's length). Polynomials of degree ≤ 2 pass unchanged: a still point stays still and a
  point moving at constant speed stays on its line. The samples are taken as evenly spaced in time (frames at a
  fixed ``step``), so the window spans ``WINDOW × step`` frames.
* ``oneeuro[:MIN_CUTOFF[:BETA]]``: the 1€ filter (Casiez, Roussel & Vogel, "1€ Filter: A Simple Speed-based
  Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012): an exponential smoother whose cutoff
  frequency rises with the point's speed, ``f_c = MIN_CUTOFF + BETA · |v̂|`` (Hz; ``v̂`` the speed in px/s,
  low-passed at 1 Hz), so jitter at rest is removed and fast motion lags little. Causal, and it reads the real time
  stamps. Here the two coordinates of a point share one cutoff (the norm of its velocity). Defaults
  ``MIN_CUTOFF = 1`` Hz and ``BETA = 0.05`` s/px (speeds in pixels: at 100 px/s the cutoff is 6 Hz).

The head's confidences are returned unchanged, so a filled point can be recognised by its low confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import InvalidKeypointsError, InvalidOptionError

SmoothMethod = Literal["savgol", "oneeuro"]
DEFAULT_WINDOW = 7
RELATIVE_CONFIDENCE = 0.25  # min_confidence=None: this fraction of each landmark's median confidence
SAVGOL_ORDER = 2
SPEC_HELP = "savgol, savgol:WINDOW (odd, >= 3), oneeuro or oneeuro:MIN_CUTOFF[:BETA]"


@dataclass(frozen=True)
class Smoothing:
    """One parsed smoothing choice (:func:`parse_smoothing`)."""

    method: SmoothMethod
    window: int = DEFAULT_WINDOW
    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0


def parse_smoothing(spec: str | Smoothing) -> Smoothing:
    """``"savgol"``, ``"savgol:9"``, ``"oneeuro"``, ``"oneeuro:0.5"``, ``"oneeuro:0.5:0.1"`` → :class:`Smoothing`."""
    if isinstance(spec, Smoothing):
        return spec
    name, *rest = str(spec).strip().split(":")
    try:
        values = [float(r) for r in rest]
    except ValueError:
        values = [math.nan]
    if name == "savgol" and len(values) <= 1:
        window = values[0] if values else DEFAULT_WINDOW
        if math.isfinite(window) and window == int(window) and window >= 3 and window % 2 == 1:
            return Smoothing("savgol", window=int(window))
    finite = all(0 <= v < math.inf for v in values)
    if name == "oneeuro" and len(values) <= 2 and finite and (not values or values[0] > 0):
        defaults = Smoothing("oneeuro")
        return Smoothing("oneeuro", min_cutoff=values[0] if values else defaults.min_cutoff,
                         beta=values[1] if len(values) > 1 else defaults.beta)
    raise InvalidOptionError(f"smooth={spec!r}: expected {SPEC_HELP} (e.g. 'savgol:9'; MIN_CUTOFF > 0 Hz, "
                             "BETA >= 0).")


def fill_unconfident(points: np.ndarray, confidence: np.ndarray | None, *,
                     min_confidence: float | None = None, times: np.ndarray | None = None) -> np.ndarray:
    """``points`` (T, K, 2) with every point below ``min_confidence`` (None: a quarter of its landmark's median
    confidence) or NaN interpolated in time from the confident points of its landmark (``times``: the sample
    times, default 0 .. T-1)."""
    pts = _check_track(points, confidence)
    t = np.arange(len(pts), dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
    good = np.isfinite(pts).all(axis=2)
    if confidence is not None:
        conf = np.asarray(confidence, dtype=np.float64)
        good &= conf >= (RELATIVE_CONFIDENCE * np.median(conf, axis=0) if min_confidence is None else min_confidence)
    out = pts.astype(np.float64, copy=True)
    for k in range(pts.shape[1]):
        ok = good[:, k]
        if ok.any() and not ok.all():
            for c in range(2):
                out[~ok, k, c] = np.interp(t[~ok], t[ok], pts[ok, k, c])
    return out


def smooth_points(points: np.ndarray, confidence: np.ndarray | None = None, *, spec: str | Smoothing,
                  times: np.ndarray | None = None, min_confidence: float | None = None) -> np.ndarray:
    """Smoothed (T, K, 2) float32 points: fill the unconfident points, then filter (module docstring).
    ``times`` (T,) seconds, increasing: the 1€ filter needs them; default 30 samples per second."""
    s = parse_smoothing(spec)
    t = np.arange(len(points), dtype=np.float64) / 30.0 if times is None else np.asarray(times, dtype=np.float64)
    if t.shape != (len(points),) or (len(t) > 1 and not (np.diff(t) > 0).all()):
        raise InvalidKeypointsError(f"times of shape {t.shape}: expected ({len(points)},) increasing seconds.")
    filled = fill_unconfident(points, confidence, min_confidence=min_confidence, times=t)
    if s.method == "savgol":
        out = _savgol(filled, s.window)
    else:
        out = one_euro(filled, t, min_cutoff=s.min_cutoff, beta=s.beta, d_cutoff=s.d_cutoff)
    return out.astype(np.float32)


def _savgol(x: np.ndarray, window: int) -> np.ndarray:
    from scipy.signal import savgol_filter

    w = min(window, len(x) if len(x) % 2 else len(x) - 1)
    if w <= SAVGOL_ORDER:  # too short a track to fit the polynomial: nothing to smooth
        return x
    missing = ~np.isfinite(x)  # a landmark never confident and NaN: stays NaN, does not spread
    out = savgol_filter(np.where(missing, 0.0, x), w, SAVGOL_ORDER, axis=0, mode="interp")
    out[missing] = np.nan
    return out


def _alpha(te: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """Smoothing factor of an exponential low-pass at ``cutoff`` Hz for a sample period ``te`` s (Casiez et al.)."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / te)


def one_euro(x: np.ndarray, times: np.ndarray, *, min_cutoff: float = 1.0, beta: float = 0.05,
             d_cutoff: float = 1.0) -> np.ndarray:
    """The 1€ filter (Casiez et al., CHI 2012) along axis 0 of (T, K, 2) points at ``times`` seconds; the two
    coordinates of a point share the cutoff of its speed."""
    out = np.array(x, dtype=np.float64, copy=True)
    speed = np.zeros(out.shape[1:])  # (K, 2) low-passed velocity
    for i in range(1, len(out)):
        te = float(times[i] - times[i - 1])
        v = (out[i] - out[i - 1]) / te  # raw velocity against the previous filtered value, px/s
        a_d = _alpha(te, d_cutoff)
        speed = np.where(np.isfinite(v), a_d * v + (1.0 - a_d) * speed, 0.0)  # low-passed velocity, from 0
        a = _alpha(te, min_cutoff + beta * np.linalg.norm(speed, axis=-1, keepdims=True))
        out[i] = a * out[i] + (1.0 - a) * out[i - 1]
    return out


def _check_track(points: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[2] != 2:
        raise InvalidKeypointsError(f"points of shape {pts.shape}: expected (T, K, 2) pixel (x, y) over T frames.")
    if confidence is not None and np.shape(confidence) != pts.shape[:2]:
        raise InvalidKeypointsError(f"confidence of shape {np.shape(confidence)}: expected {pts.shape[:2]} (T, K).")
    return pts


__all__ = ["DEFAULT_WINDOW", "RELATIVE_CONFIDENCE", "SPEC_HELP", "Smoothing", "fill_unconfident", "one_euro",
           "parse_smoothing", "smooth_points"]
