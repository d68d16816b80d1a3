"""LandmarkHead on a few real AFLW faces with random-r18 at 96 px: shapes, frames, persistence, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import hyperland
from hyperland import BackboneMismatchError, InvalidKeypointsError, NotFittedError
from hyperland.data import load_samples, read_mtfl
from hyperland.features import encode, fit_projection
from hyperland.heads import LandmarkHead
from hyperland.heads.checks import PointsOutsideImageWarning
from hyperland.heads.regressor import IntermediateRegressor

FAST = {"method": "regressor", "steps": 20, "n_augment": 1, "n_components": 16, "progress": False}


@pytest.fixture(scope="module")
def faces(mtfl_root):
    samples = read_mtfl(mtfl_root, "testing")[:12]
    return load_samples(samples)


def test_regressor_soft_argmax_finds_a_peak() -> None:
    """A single score map with one hot cell: soft-argmax at multiplier 100 lands on that cell's centre."""
    net = IntermediateRegressor(1, 1, n_intermediate=1, softmax_scale=100.0)
    with torch.no_grad():
        net.score_weight.fill_(1.0)
        net.score_bias.zero_()
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 1, 2] = 1.0  # row 1, column 2 -> centre x = (2*2+1)/4-1 = 0.25, y = (2*1+1)/4-1 = -0.25
    out = net(maps)
    torch.testing.assert_close(out, torch.tensor([[[0.25, -0.25]]]), atol=1e-4, rtol=0)


def test_fit_predict_shapes_and_pixel_frame(r18, faces) -> None:
    imgs, pts = faces
    head = LandmarkHead(5, random_state=0, **FAST).fit(r18, imgs[:8], pts[:8])
    pred = head.predict(imgs[8:])
    assert pred.shape == (4, 5, 2) and np.isfinite(pred).all()
    # images as passed in: a 2x upscaled copy gets 2x the coordinates (pixel centres: (p + .5) * 2 - .5)
    big = [im.resize((300, 300)) for im in imgs[8:]]
    np.testing.assert_allclose(head.predict(big), (pred + 0.5) * 2 - 0.5, atol=1.5)
    assert 0 < head.score(imgs[8:], pts[8:]) < 200


def test_fit_is_reproducible_and_features_path_matches(r18, faces) -> None:
    imgs, pts = faces
    a = LandmarkHead(5, random_state=3, augment=False, **FAST).fit(r18, imgs[:8], pts[:8])
    b = LandmarkHead(5, random_state=3, augment=False, **FAST).fit(r18, imgs[:8], pts[:8])
    np.testing.assert_allclose(a.predict(imgs[8:]), b.predict(imgs[8:]), atol=1e-4)
    feats = encode(r18, imgs[8:], projection=a.projection_, pool=a.pool_)
    np.testing.assert_allclose(a.predict(features=feats), a.predict(imgs[8:]), atol=1e-4)


def test_prototype_locates_its_own_training_points(r18, faces) -> None:
    imgs, pts = faces
    head = LandmarkHead(5, method="prototype", n_components=None, pool=1).fit(r18, imgs[:1], pts[:1])
    pred = head.predict(imgs[:1])
    # each descriptor correlates best with itself (argmax + local soft-argmax): within about a grid cell (6 px)
    assert np.linalg.norm(pred - pts[:1], axis=-1).max() < 10.0


def test_save_load_roundtrip_and_backbone_check(r18, faces, tmp_path) -> None:
    imgs, pts = faces
    head = LandmarkHead(5, random_state=0, **FAST).fit(r18, imgs[:8], pts[:8])
    head.save(tmp_path / "h")
    cfg = json.loads((tmp_path / "h" / "head.json").read_text())
    assert cfg["fingerprint"] == r18.fingerprint
    back = LandmarkHead.load(tmp_path / "h", model=r18)
    np.testing.assert_allclose(back.predict(imgs[8:]), head.predict(imgs[8:]), atol=1e-4)
    with pytest.raises(InvalidKeypointsError, match="predicts 5 landmarks"):
        LandmarkHead.load(tmp_path / "h", model=r18, n_landmarks=68)
    other = hyperland.load("random-r18")
    with torch.no_grad():
        next(other.backbone.parameters()).add_(1.0)
    other._fingerprint = None
    with pytest.raises(BackboneMismatchError, match="allow_backbone_mismatch"):
        LandmarkHead.load(tmp_path / "h", model=other)
    assert LandmarkHead.load(tmp_path / "h", model=other, allow_backbone_mismatch=True).predict(imgs[:1]).shape == (1, 5, 2)


def test_sklearn_params_and_not_fitted(faces) -> None:
    head = LandmarkHead(5, steps=7)
    assert head.get_params()["steps"] == 7
    assert head.set_params(steps=9).steps == 9
    with pytest.raises(NotFittedError, match="not fitted"):
        head.predict(faces[0][:1])


def test_bad_keypoints(r18, faces) -> None:
    imgs, pts = faces
    head = LandmarkHead(5, **FAST)
    with pytest.raises(InvalidKeypointsError, match=r"Expected \(N, K, 2\)"):
        head.fit(r18, imgs[:4], pts[:4, :, 0])
    with pytest.raises(InvalidKeypointsError, match="4 point sets for 3 images"):
        head.fit(r18, imgs[:3], pts[:4])
    with pytest.raises(InvalidKeypointsError, match="n_landmarks=5"):
        head.fit(r18, imgs[:4], pts[:4, :3])
    bad = pts[:4].copy()
    bad[:, 2] = np.nan
    with pytest.raises(InvalidKeypointsError, match=r"Landmark\(s\) \[2\] are NaN in every image"):
        head.fit(r18, imgs[:4], bad)


def test_points_outside_warn_and_partial_nan_is_fine(r18, faces) -> None:
    imgs, pts = faces
    p = pts[:4].copy()
    p[0, 0] = [-30.0, 10.0]
    p[1, 3] = np.nan
    with pytest.warns(PointsOutsideImageWarning, match="outside their image"):
        head = LandmarkHead(5, random_state=0, **FAST).fit(r18, imgs[:4], p)
    assert np.isfinite(head.predict(imgs[4:5])).all()


def test_features_from_another_projection_are_refused(r18, faces) -> None:
    imgs, pts = faces
    head = LandmarkHead(5, random_state=0, **FAST).fit(r18, imgs[:8], pts[:8])
    other = fit_projection(r18, imgs[8:], n_components=16)
    with pytest.raises(BackboneMismatchError, match="projection"):
        head.predict(features=encode(r18, imgs[8:], projection=other, pool=2))


def test_val_split_and_explicit_val(r18, faces) -> None:
    imgs, pts = faces
    # 12 images, val_fraction 0.25 -> 3 validation images (min_val lowered to allow it)
    head = LandmarkHead(5, random_state=0, val_fraction=0.25, min_val=3, augment=False, **FAST).fit(
        r18, imgs, pts)
    assert head.history_["n_val"] == 3 and head.history_["n_train_maps"] == 9
    assert np.isfinite(head.history_["val_loss"])
    head = LandmarkHead(5, random_state=0, augment=False, **FAST).fit(r18, imgs[:8], pts[:8], val=(imgs[8:], pts[8:]))
    assert head.history_["n_val"] == 4 and head.history_["n_train_maps"] == 8


def test_features_plus_images_augments_without_reextracting(r18, faces) -> None:
    imgs, pts = faces
    head = LandmarkHead(5, random_state=0, **FAST)
    proj = fit_projection(r18, imgs[:6], n_components=16)
    feats = encode(r18, imgs[:6], projection=proj, pool=2)
    head.fit(r18, imgs[:6], pts[:6], features=feats)
    assert head.history_["n_train_maps"] == 6 * 2  # originals from features + 1 augmented copy each
    assert head.projection_ is proj
    assert head.predict(features=encode(r18, imgs[6:], projection=proj, pool=2)).shape == (6, 5, 2)


def test_larger_sets_warp_a_seeded_subset(r18, faces) -> None:
    """augment="auto" above augment_max: warped copies of augment_max of the training images, drawn from the
    seed (the same subset on a refit), never of none."""
    imgs, pts = faces
    opts = dict(augment_max=3, n_augment=2, mirror=False, random_state=0, progress=False)
    head = LandmarkHead(5, **opts).fit(r18, imgs[:6], pts[:6])
    assert head.selection_["n_labelled"] == 6 and head.selection_["n_train_maps"] == 6 + 3 * 2
    rows = head._warp_rows(6, 0)
    assert rows is not None and len(rows) == 3 and np.array_equal(rows, np.sort(rows))
    assert np.array_equal(rows, LandmarkHead(5, **opts)._warp_rows(6, 0))
    assert head._warp_rows(3, 0).tolist() == [0, 1, 2] and LandmarkHead(5, augment=False)._warp_rows(6, 0) is None
    again = LandmarkHead(5, **opts).fit(r18, imgs[:6], pts[:6])
    np.testing.assert_array_equal(again.predict(imgs[6:8]), head.predict(imgs[6:8]))


def _dots(n: int, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """Grey-noise images with 5 coloured discs (radius 5) at random places; the disc centres are the truth."""
    from PIL import Image, ImageDraw

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
    images, points = [], rng.uniform(25, 125, size=(n, 5, 2)).astype(np.float32)
    for p in points:
        im = Image.fromarray(rng.integers(90, 150, size=(150, 150, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for (x, y), c in zip(p, colours):
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=c)
        images.append(im)
    return images, points


def test_prototype_finds_landmarks_that_the_features_can_see() -> None:
    """Known data: 20 labelled images of coloured discs, 10 new ones. With timm's zero-init residual blocks the
    random network is close to its stem, whose features see colour, so the head must put each landmark on its
    disc (measured 1.6 px mean error on 50/50 images) while the mean shape is ~39 px off: this fails if features,
    projection, head or the pixel frame lose the signal."""
    r18 = hyperland.load("random-r18-zero-init")
    rng = np.random.default_rng(0)
    train, train_pts = _dots(20, rng)
    test, test_pts = _dots(10, rng)
    head = LandmarkHead(5, method="prototype", random_state=0, progress=False).fit(r18, train, train_pts)
    err = np.linalg.norm(head.predict(test) - test_pts, axis=-1)
    base = np.linalg.norm(train_pts.mean(0) - test_pts, axis=-1)
    assert base.mean() > 25 and err.mean() < 5 and np.median(err) < 4


def test_landmark_names_survive_fit_save_load(r18, mtfl_root, tmp_path) -> None:
    """Names from the samples' file (here MTFL's five) go through fit(landmark_names=) into head.json and back."""
    from hyperland.data import landmark_names

    samples = read_mtfl(mtfl_root, "testing")[:4]
    names = landmark_names(samples)
    assert names == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
    imgs, pts = load_samples(samples)
    head = LandmarkHead(5, method="prototype", n_components=8).fit(r18, imgs, pts, landmark_names=names)
    head.save(tmp_path / "h")
    assert json.loads((tmp_path / "h" / "head.json").read_text())["landmarks"] == names
    assert LandmarkHead.load(tmp_path / "h", model=r18).landmark_names_ == names
    assert LandmarkHead(5, method="prototype", n_components=8).fit(r18, imgs, pts).landmark_names_ is None
    for bad in (names[:4], [*names[:4], "nose"], "left_eye", [*names[:4], ""]):
        with pytest.raises(InvalidKeypointsError, match="expected 5 distinct non-empty strings"):
            LandmarkHead(5, method="prototype").fit(r18, imgs, pts, landmark_names=bad)
    mixed = [samples[0], type(samples[1])(samples[1].image, samples[1].points, samples[1].visible, {})]
    assert landmark_names(mixed) is None  # the samples disagree: no names rather than wrong ones
