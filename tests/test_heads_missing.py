"""Missing labels (NaN, DeepLabCut's empty cells): every head ignores them where they are missing and still
predicts every landmark; a landmark labelled nowhere is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hyperland import InvalidKeypointsError
from hyperland.data import load_samples, read_dlc, read_mtfl
from hyperland.heads import LandmarkHead
from hyperland.heads.cells import PRIOR_STD_ONE_IMAGE, shape_prior
from hyperland.heads.checks import split_validation
from hyperland.heads.ridge import MIN_SELECT, fit_readout, select
from hyperland.heads.warped import WarpCache

NOSE = 2
KEEP = [0, 1, 3, 4]


@pytest.fixture(scope="module")
def faces(mtfl_root: Path):
    """16 real AFLW faces (150 px): 10 to fit on, 6 to predict."""
    return load_samples(read_mtfl(mtfl_root, "testing")[:16])


def test_readout_fits_each_coordinate_on_its_labelled_rows() -> None:
    """Known linear data; landmark 1 labelled in 12 of 40 rows. Its readout must be the ridge fit on those 12 rows
    (scikit-learn's RidgeCV on them is the reference) and recover the true map; landmark 0's must not change."""
    from sklearn.linear_model import RidgeCV

    from hyperland.heads.ridge import ALPHAS

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    w = rng.normal(size=(6, 4)) * 0.3
    y = torch.from_numpy((x @ w + [0.1, -0.2, 0.3, 0.05]).astype(np.float32)).view(40, 2, 2)
    blank = y.clone()
    blank[12:, 1] = float("nan")
    r = fit_readout(x, blank)
    xs = x[:12].astype(np.float64)
    scale = float(np.mean(np.sum(xs ** 2, axis=1)))
    ref = RidgeCV(alphas=[a * scale for a in ALPHAS], alpha_per_target=True).fit(xs, y[:12, 1].double().numpy())
    np.testing.assert_allclose(r.coef[2:].numpy(), ref.coef_, atol=1e-4)
    np.testing.assert_allclose(r.intercept[2:].numpy(), ref.intercept_, atol=1e-4)
    np.testing.assert_allclose(r(x)[:, 1].numpy(), y[:, 1].numpy(), atol=0.03)  # all 40 rows, not just 12
    full = fit_readout(x, y[:, :1])
    torch.testing.assert_close(r.coef[:2], full.coef)
    assert len(r.alpha) == 4 and all(a is not None for a in r.alpha)
    # one labelled row: that value; none (inside a held-out fold): the frame centre
    one = blank.clone()
    one[1:, 1] = float("nan")
    one_r = fit_readout(x, one)
    np.testing.assert_allclose(one_r(x[20:22])[:, 1].numpy(), y[[0, 0], 1].numpy(), atol=1e-6)
    one[:, 1] = float("nan")
    assert fit_readout(x, one)(x[:3])[:, 1].abs().max() == 0


def test_shape_prior_counts_labelled_images_not_copies() -> None:
    t = torch.tensor([[[0.0, 0.0], [0.5, 0.5]], [[0.2, 0.4], [float("nan")] * 2], [[0.1, 0.0], [0.5, 0.6]],
                      [[0.4, 0.2], [float("nan")] * 2]])
    groups = np.array([0, 1, 0, 1])  # rows 2 and 3 are copies of images 0 and 1
    mean, std = shape_prior(t, (100, 100), groups=groups)
    # landmark 0: mean (0.175, 0.15); squared deviations sum to 0.0875 (x) and 0.11 (y) over 4 rows; the spread is
    # the RMS over both axes of the unbiased variance: sqrt((0.0875 + 0.11) / 2 / 3)
    torch.testing.assert_close(mean, torch.tensor([[0.175, 0.15], [0.5, 0.55]]))
    assert std[0].item() == pytest.approx(((0.0875 + 0.11) / 2 / 3) ** 0.5, rel=1e-5)
    assert std[1].item() == pytest.approx(PRIOR_STD_ONE_IMAGE)  # two rows, but one labelled image
    assert shape_prior(t, (100, 100))[1][1].item() == pytest.approx(0.05)  # rows counted: sqrt(0.05² / 2 · 2)
    nowhere = t.clone()
    nowhere[:, 1] = float("nan")
    m, s = shape_prior(nowhere, (100, 100), groups=groups)
    assert m[1].tolist() == [0.0, 0.0] and s[1].item() == pytest.approx(PRIOR_STD_ONE_IMAGE)


def test_augmented_copies_keep_missing_points_missing(faces) -> None:
    imgs, pts = faces
    p = pts[:2].copy()
    p[0, NOSE] = np.nan
    maps, out = WarpCache().warped(imgs[:2], p, encode=torch.stack, encoding=(), n=3, tps=0.05, rotation=10.0,
                                   scale=(0.9, 1.1), translate=0.0, seed=0)
    assert len(maps) == 6 and np.isnan(out[:3, NOSE]).all()
    assert np.isfinite(np.delete(out, NOSE, axis=1)).all() and np.isfinite(out[3:]).all()


def test_validation_split_keeps_every_landmark_in_training() -> None:
    pts = np.zeros((40, 3, 2), np.float32)
    pts[1:, 2] = np.nan  # landmark 2 only in image 0
    for seed in range(20):
        train, val = split_validation(40, 0.25, 5, np.random.default_rng(seed), points=pts)
        assert 0 in train and len(train) + len(val) == 40 and not set(train) & set(val)
    plain = [0 in split_validation(40, 0.25, 5, np.random.default_rng(s))[1] for s in range(20)]
    assert any(plain)  # without the points, image 0 does land in validation for some seeds


def test_selection_scores_only_labelled_points() -> None:
    """One landmark labelled in a single image: no fold can both teach and score it, so the held-out error is that
    of the other landmark alone, and nothing is NaN."""
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)  # the test's own draws, whatever ran before it
    maps = torch.randn(8, 4, 6, 6, generator=gen)
    targets = torch.rand(8, 2, 2, generator=gen) * 1.6 - 0.8
    targets[1:, 1] = float("nan")
    pooled = maps.mean((2, 3)).numpy()
    choice, _ = select(maps, pooled, targets, np.arange(8), refine_mode="auto", rng=rng, min_select=2)
    only, _ = select(maps, pooled, targets[:, :1], np.arange(8), refine_mode="auto", rng=np.random.default_rng(0),
                     min_select=2)
    assert choice.folds == 5 and np.isfinite(choice.val_error)
    assert choice.val_error == pytest.approx(only.val_error, rel=0.05)


@pytest.mark.parametrize("n", [10, 5])
def test_default_head_with_a_landmark_labelled_in_one_image(r18, faces, n: int) -> None:
    """The nose labelled in 1 of n faces: every landmark is predicted, with finite confidences, and the other four
    land where a head fitted without the nose puts them. Dropping the faces with a missing label instead (a
    complete-case fit: one face) moves them by ~9 px on average here. The fitted-shape pass couples the landmarks
    (the nose, labelled once, steers the pose fit a tenth as much as the others: ``label_share``), so they move a
    little. Pool 2 and no augmentation keep the fits at a few seconds; the openfield test below runs the augmented
    path."""
    imgs, pts = faces
    train, test = imgs[:n], imgs[10:]
    blank = pts[:n].copy()
    blank[1:, NOSE] = np.nan
    opts = {"random_state": 0, "pool": 2, "augment": False, "progress": False}
    head = LandmarkHead(5, **opts).fit(r18, train, blank)
    pred, conf = head.predict(test, return_confidence=True)
    assert np.isfinite(pred).all() and np.isfinite(conf).all() and ((conf >= 0) & (conf <= 1)).all()
    if n >= MIN_SELECT:  # fewer: the default decoding, nothing held out
        assert np.isfinite(head.selection_["val_error"]) and head.selection_["folds"] == 5
    else:
        assert head.selection_["val_error"] is None and head.selection_["folds"] == 0
    ref = LandmarkHead(4, **opts).fit(r18, train, pts[:n][:, KEEP]).predict(test)
    gap = np.linalg.norm(pred[:, KEEP] - ref, axis=-1)
    spread = np.linalg.norm(ref - pts[10:, KEEP], axis=-1).mean()  # how far off the heads are from the truth
    # measured: mean gap 2.7 px (n=10) and 0.2 px (n=5) against a spread of 11-12 px; complete-case: 8.8-9.0 px
    assert np.median(gap) < 0.2 * spread and gap.mean() < 0.35 * spread, (np.round(gap, 1), spread)


def test_a_landmark_labelled_nowhere_is_named(r18, faces) -> None:
    imgs, pts = faces
    p = pts[:4].copy()
    p[:, 3] = np.nan
    for method in ("ridge", "prototype", "regressor"):
        with pytest.raises(InvalidKeypointsError, match=r"Landmark\(s\) \[3\] are NaN in every image"):
            LandmarkHead(5, method=method, progress=False).fit(r18, imgs[:4], p)


@pytest.mark.parametrize("method", ["prototype", "regressor"])
def test_other_methods_with_partly_missing_labels(r18, faces, method: str) -> None:
    """Prototype and regressor heads: the nose in 1 of 12 faces, and a validation split that draws that face: it
    goes back to training, and every landmark is predicted (the prototype head would otherwise answer NaN)."""
    imgs, pts = faces
    p = np.concatenate([pts[:10], pts[:2]]).copy()
    p[1:, NOSE] = np.nan
    tr = [*imgs[:10], *imgs[:2]]
    extra = {"n_augment": 1, "steps": 20} if method == "regressor" else {}  # options the regressor alone reads
    head = LandmarkHead(5, method=method, val_fraction=0.25, min_val=3, n_components=16, random_state=2,
                        progress=False, **extra).fit(r18, tr, p)  # seed 2: face 0 drawn for validation
    assert np.isfinite(head.predict(imgs[10:])).all()
    if method == "regressor":  # 3 validation faces drawn; face 0, the only one with a nose, went back to training
        assert head.history_["n_val"] == 2 and head.history_["n_train_maps"] == 10 * 2


def test_openfield_frames_with_a_part_left_out(r18, openfield_csv: Path) -> None:
    """DeepLabCut's openfield mouse: 6 frames, the tail base labelled in 2 of them; the default head predicts all
    four parts in 2 other frames, in the frame's pixels, with confidences."""
    samples = read_dlc(openfield_csv)
    imgs, pts = load_samples([samples[i] for i in (0, 10, 20, 30, 40, 50, 60, 70)], size=r18.config.resize)
    pts[2:6, 3] = np.nan
    head = LandmarkHead(4, random_state=0, n_augment=2, progress=False).fit(r18, imgs[:6], pts[:6])
    pred, conf = head.predict(imgs[6:], return_confidence=True)
    assert pred.shape == (2, 4, 2) and np.isfinite(pred).all() and np.isfinite(conf).all()
    side = r18.config.resize
    assert ((pred > -0.5) & (pred < side - 0.5)).all()
    assert head.selection_["n_labelled"] == 6
