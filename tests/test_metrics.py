"""hyperland.metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyperland import InvalidKeypointsError, metrics

# one image, 3 landmarks; eyes at (0,0) and (10,0): inter-ocular distance 10
GT = np.array([[[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]])
PRED = np.array([[[3.0, 4.0], [10.0, 0.0], [5.0, 7.5]]])  # errors 5, 0, 2.5


def test_nme_interocular_by_hand() -> None:
    assert metrics.nme(PRED, GT) == pytest.approx((5 + 0 + 2.5) / 3 / 10)


def test_nme_other_eyes_bbox_and_scale() -> None:
    # eyes (0, 2): distance sqrt(50)
    assert metrics.nme(PRED, GT, eyes=(0, 2)) == pytest.approx(2.5 / math.sqrt(50))
    # bbox of GT: w=10, h=5 -> sqrt(50)
    assert metrics.nme(PRED, GT, norm="bbox") == pytest.approx(2.5 / math.sqrt(50))
    assert metrics.nme(PRED, GT, norm=2.0) == pytest.approx(1.25)


def test_nme_missing_landmarks_are_excluded_not_zero() -> None:
    gt = GT.copy()
    gt[0, 2] = np.nan  # nose missing: mean over the two eyes only
    assert metrics.nme(PRED, gt) == pytest.approx((5 + 0) / 2 / 10)
    vis = np.array([[True, True, False]])
    assert metrics.nme(PRED, GT, visible=vis) == pytest.approx(0.25)


def test_nme_image_without_eyes_is_dropped_from_mean() -> None:
    gt = np.concatenate([GT, GT])
    gt[1, 0] = np.nan  # second image has no left eye: no normaliser
    pred = np.concatenate([PRED, GT])
    per = metrics.nme(pred, gt, reduce="none")
    assert per[0] == pytest.approx(0.25) and np.isnan(per[1])
    assert metrics.nme(pred, gt) == pytest.approx(0.25)


def test_pck_float_distances_and_visibility() -> None:
    # bbox ref sqrt(50)=7.071; alpha 0.5 -> threshold 3.536: errors 5 (no), 0 (yes), 2.5 (yes)
    assert metrics.pck(PRED, GT, alpha=0.5) == pytest.approx(2 / 3)
    # interocular ref 10, alpha 0.25 -> 2.5: 2.5 counts (<=); an integer-truncating PCK would also pass 2.9
    pred = PRED.copy()
    pred[0, 2] = [5.0, 7.9]  # error 2.9 > 2.5
    assert metrics.pck(pred, GT, alpha=0.25, ref="interocular") == pytest.approx(1 / 3)
    assert metrics.pck(PRED, GT, alpha=0.25, ref=10.0, visible=[[False, True, True]]) == pytest.approx(1.0)
    # a hidden eye removes the inter-ocular normaliser: nothing left to score
    assert np.isnan(metrics.pck(PRED, GT, alpha=0.25, ref="interocular", visible=[[False, True, True]]))


def test_failure_rate_auc_ced() -> None:
    errors = np.array([0.02, 0.05, 0.2, np.nan])
    assert metrics.failure_rate(errors, threshold=0.1) == pytest.approx(1 / 3)
    # AUC@0.1 = mean(max(0, 0.1 - e)) / 0.1 = (0.08 + 0.05 + 0) / 3 / 0.1
    assert metrics.auc(errors, threshold=0.1) == pytest.approx(0.13 / 3 / 0.1)
    np.testing.assert_allclose(metrics.ced(errors, [0.0, 0.05, 0.1, 0.3]), [0, 2 / 3, 2 / 3, 1])


def test_auc_matches_numeric_integral() -> None:
    errors = np.random.default_rng(0).uniform(0, 0.15, size=50)
    t = np.linspace(0, 0.1, 100001)
    numeric = np.trapezoid(metrics.ced(errors, t), t) / 0.1
    assert metrics.auc(errors, threshold=0.1) == pytest.approx(numeric, abs=1e-4)


def test_bad_shapes_raise() -> None:
    with pytest.raises(InvalidKeypointsError, match="Expected equal shapes"):
        metrics.nme(PRED, GT[:, :2])
    with pytest.raises(InvalidKeypointsError, match=r"Expected \(N, K, 2\)"):
        metrics.nme(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(InvalidKeypointsError, match="eyes"):
        metrics.nme(PRED, GT, eyes=(0, 5))
