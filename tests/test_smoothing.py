"""Temporal smoothing (hyperland/smoothing.py) on synthetic tracks against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyperland.errors import InvalidKeypointsError, InvalidOptionError
from hyperland.smoothing import Smoothing, fill_unconfident, one_euro, parse_smoothing, smooth_points

FPS = 30.0


def _track(x: list[float], y: list[float] | None = None) -> np.ndarray:
    """(T, 1, 2) points of one landmark."""
    y = [0.0] * len(x) if y is None else y
    return np.stack([np.asarray(x, float), np.asarray(y, float)], axis=-1)[:, None, :]


def test_parse_smoothing_specs_and_errors():
    assert parse_smoothing("savgol") == Smoothing("savgol", window=7)
    assert parse_smoothing("savgol:9") == Smoothing("savgol", window=9)
    assert parse_smoothing("oneeuro") == Smoothing("oneeuro", min_cutoff=1.0, beta=0.05)
    assert parse_smoothing("oneeuro:0.5:0.1") == Smoothing("oneeuro", min_cutoff=0.5, beta=0.1)
    for bad in ("savgol:4", "savgol:1", "savgol:x", "savgol:7.5", "median", "oneeuro:0", "oneeuro:1:-1",
                "oneeuro:1:2:3", "savgol:inf"):
        with pytest.raises(InvalidOptionError, match="expected savgol"):
            parse_smoothing(bad)


def test_constant_track_stays_constant():
    pts = np.tile(np.array([[12.5, -3.0], [100.0, 40.0]]), (20, 1, 1))
    t = np.arange(20) / FPS
    for spec in ("savgol", "savgol:5", "oneeuro", "oneeuro:0.1:1.0"):
        np.testing.assert_allclose(smooth_points(pts, spec=spec, times=t), pts, atol=1e-5)


def test_savgol_keeps_a_line_and_quadratic_exactly_edges_included():
    t = np.arange(15, dtype=float)
    line = _track(list(3.0 + 2.5 * t), list(-1.0 * t))
    np.testing.assert_allclose(smooth_points(line, spec="savgol:7"), line, atol=1e-4)
    quad = _track(list(0.5 * t**2 - t))  # order 2: a parabola passes too
    np.testing.assert_allclose(smooth_points(quad, spec="savgol:5"), quad, atol=1e-3)


def test_savgol_impulse_response_is_the_textbook_kernel():
    """Window 5, order 2: the smoothing weights are (-3, 12, 17, 12, -3) / 35 (Savitzky & Golay 1964)."""
    x = np.zeros(11)
    x[5] = 35.0
    out = smooth_points(_track(list(x)), spec="savgol:5")[:, 0, 0]
    np.testing.assert_allclose(out[3:8], [-3.0, 12.0, 17.0, 12.0, -3.0], atol=1e-4)
    np.testing.assert_allclose(out[:2], 0.0, atol=1e-4)


def test_savgol_window_shrinks_to_short_tracks():
    line = _track([0.0, 1.0, 2.0, 3.0])  # 4 samples: window 7 becomes 3
    np.testing.assert_allclose(smooth_points(line, spec="savgol:7"), line, atol=1e-5)
    two = _track([0.0, 10.0])  # too short for an order-2 fit: unchanged
    np.testing.assert_allclose(smooth_points(two, spec="savgol"), two)


def test_unconfident_outlier_is_replaced_by_its_neighbours():
    x = [0.0, 1.0, 2.0, 100.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    conf = np.array([0.9, 0.9, 0.8, 0.0, 0.7, 0.9, 0.9, 0.9, 0.9])[:, None]
    filled = fill_unconfident(_track(x), conf)
    np.testing.assert_allclose(filled[:, 0, 0], np.arange(9.0))  # 100 → (2 + 4) / 2
    for spec in ("savgol:5", "savgol:7"):  # the outlier weighs nothing: the line comes back exactly
        np.testing.assert_allclose(smooth_points(_track(x), conf, spec=spec)[:, 0, 0], np.arange(9.0), atol=1e-4)
    # a confident outlier is kept and smoothed: the line plus the kernel times its 97 px above the line at t=3
    out = smooth_points(_track(x), np.ones_like(conf), spec="savgol:5")[:, 0, 0]
    np.testing.assert_allclose(out[3:6], [3.0 + 97.0 * 17 / 35, 4.0 + 97.0 * 12 / 35, 5.0 - 97.0 * 3 / 35],
                               atol=1e-3)


def test_default_threshold_is_relative_to_the_landmarks_median_confidence():
    x = [0.0, 1.0, 2.0, 100.0, 4.0]
    conf = np.array([0.9, 0.8, 0.9, 0.1, 0.9])[:, None]  # median 0.9: below 0.225 is filled
    for scale in (1.0, 0.01):  # a head whose confidences are 100x smaller fills the same point
        np.testing.assert_allclose(fill_unconfident(_track(x), conf * scale)[:, 0, 0], np.arange(5.0))
    kept = fill_unconfident(_track(x), conf * 0.01, min_confidence=0.0)[:, 0, 0]  # absolute 0: nothing filled
    np.testing.assert_allclose(kept, x)
    everything_low = fill_unconfident(_track(x), conf * 0.01, min_confidence=0.2)  # absolute: none confident
    np.testing.assert_allclose(everything_low[:, 0, 0], x)  # a landmark never confident keeps its raw points


def test_fill_uses_times_holds_edges_and_skips_hopeless_landmarks():
    pts = np.stack([_track([50.0, 0.0, 9.0, 30.0, 70.0])[:, 0], _track([1.0, 2.0, 3.0, 4.0, 5.0])[:, 0]], axis=1)
    conf = np.array([[0.0, 0.1], [0.5, 0.0], [0.1, 0.0], [0.5, 0.0], [0.0, 0.1]])
    t = np.array([0.0, 1.0, 2.0, 4.0, 5.0])
    out = fill_unconfident(pts, conf, min_confidence=0.2, times=t)
    # landmark 0: confident at t=1 (0) and t=4 (30); t=2 interpolates to 10; the edges hold 0 and 30
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.0, 10.0, 30.0, 30.0])
    np.testing.assert_allclose(out[:, 1], pts[:, 1])  # never confident: raw points kept
    nan = _track([0.0, np.nan, 2.0])
    np.testing.assert_allclose(fill_unconfident(nan, None)[:, 0, 0], [0.0, 1.0, 2.0])  # NaN counts as missing


def test_one_euro_matches_the_hand_computed_recursion():
    x = _track([0.0, 10.0, 10.0])
    t = np.arange(3) / FPS
    a1 = 1.0 / (1.0 + FPS / (2 * math.pi * 1.0))  # alpha at 1 Hz for te = 1/30 s: 0.17316
    out = one_euro(x, t, min_cutoff=1.0, beta=0.0)[:, 0, 0]  # beta 0: a plain exponential low-pass at 1 Hz
    np.testing.assert_allclose(out, [0.0, 10 * a1, 10 * a1 + a1 * (10 - 10 * a1)], rtol=1e-9)
    # beta > 0: the speed (300 px/s, low-passed at 1 Hz: 300 a1) raises the cutoff to 1 + 0.05 · 300 a1 Hz
    fc = 1.0 + 0.05 * 300.0 * a1
    a = 1.0 / (1.0 + FPS / (2 * math.pi * fc))
    got = one_euro(x, t, min_cutoff=1.0, beta=0.05)[1, 0]
    np.testing.assert_allclose(got, [10 * a, 0.0], rtol=1e-9)
    assert 10 * a > 10 * a1  # fast motion lags less


def test_one_euro_reads_the_time_stamps():
    x = _track([0.0, 10.0])
    slow = one_euro(x, np.array([0.0, 1.0]), min_cutoff=1.0, beta=0.0)[1, 0, 0]  # te = 1 s
    np.testing.assert_allclose(slow, 10.0 / (1.0 + 1.0 / (2 * math.pi)), rtol=1e-9)


def test_bad_shapes_and_times_are_refused():
    with pytest.raises(InvalidKeypointsError, match=r"expected \(T, K, 2\)"):
        smooth_points(np.zeros((5, 2)), spec="savgol")
    with pytest.raises(InvalidKeypointsError, match=r"confidence of shape \(5,\)"):
        smooth_points(np.zeros((5, 1, 2)), np.ones(5), spec="savgol")
    with pytest.raises(InvalidKeypointsError, match="increasing seconds"):
        smooth_points(np.zeros((3, 1, 2)), spec="oneeuro", times=np.array([0.0, 0.1, 0.1]))
