"""Framing (heads/framing.py): crop geometry against hand-computed values, and a framed head on real openfield
frames: fit, predict in frame pixels, save / load identical."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperland.heads import LandmarkHead
from hyperland.heads import framing as fr

OPENFIELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "dlc-openfield"


def test_crop_geometry_round_trip_and_pixels():
    img = torch.zeros(3, 40, 60)
    img[:, 10, 30] = 1.0  # one bright pixel at (x=30, y=10)
    # the crop's centre (between its pixels 3 and 4) at (29.5, 9.5), 1 px per crop pixel: (30, 10) lands on (4, 4)
    centres, sides, angles = np.array([[29.5, 9.5]], np.float32), np.array([8.0], np.float32), np.zeros(1, np.float32)
    out = fr.crop([img], centres, sides, angles, 8)[0]
    assert out.shape == (3, 8, 8)
    assert torch.nonzero(out[0] > 0.99).tolist() == [[4, 4]]
    np.testing.assert_allclose(fr.to_crop(np.array([[[30.0, 10.0]]], np.float32), centres, sides, angles, 8),
                               [[[4.0, 4.0]]], atol=1e-5)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 50, size=(3, 4, 2)).astype(np.float32)
    c, s, a = rng.uniform(10, 40, (3, 2)).astype(np.float32), rng.uniform(5, 30, 3).astype(np.float32), \
        rng.uniform(-180, 180, 3).astype(np.float32)
    np.testing.assert_allclose(fr.from_crop(fr.to_crop(pts, c, s, a, 16), c, s, a, 16), pts, atol=1e-3)
    # a quarter turn: the frame's +x direction is the crop's +y
    q = fr.to_crop(np.array([[[30.5, 9.5]]], np.float32), centres, sides, np.array([90.0], np.float32), 8)
    np.testing.assert_allclose(q, [[[3.5, 2.5]]], atol=1e-5)


def test_extent_is_orientation_free_and_nan_aware():
    p = np.array([[[0, 0], [3, 4], [np.nan, np.nan]], [[np.nan, np.nan]] * 3], np.float32)
    c, e = fr.centre_extent(p)
    np.testing.assert_allclose(c[0], [1.5, 2.0])
    assert e[0] == pytest.approx(5.0) and np.isnan(e[1])
    assert fr.median_extent(p) == pytest.approx(5.0)


def _openfield(n: int) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader((OPENFIELD / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv").open()))[3:3 + n]
    pts = np.array([[float(v) if v else np.nan for v in r[1:9]] for r in rows], np.float32).reshape(n, 4, 2)
    return [str(OPENFIELD / r[0]) for r in rows], pts


def test_framed_head_fits_predicts_saves(r18, tmp_path):
    paths, pts = _openfield(6)
    head = LandmarkHead(4, framing="object", frame_size=64, n_augment=1, n_components=8, random_state=0,
                        progress=False).fit(r18, paths[:4], pts[:4])
    pred, conf = head.predict(paths[4:], return_confidence=True)
    assert pred.shape == (2, 4, 2) and conf.shape == (2, 4) and np.isfinite(pred).all()
    assert head.coarse_.n_landmarks == 1  # the coarse stage learns the object's centre only
    # ... under a prior that never rests on its readout of absolute position alone (frame_prior="mixture")
    assert head.coarse_.prior_centre == "mixture" and head.coarse_.selection_["centre"] in ("mixture", "shape")
    assert head.fine_.prior_centre == "auto"
    shape = LandmarkHead(4, framing="object", frame_size=64, n_augment=1, n_components=8, random_state=0,
                         frame_prior="shape", progress=False).fit(r18, paths[:4], pts[:4])
    assert shape.coarse_.prior_centre == "shape" and shape.coarse_.selection_["centre"] == "shape"
    assert ((pred[..., 0] >= -1) & (pred[..., 0] <= 640) & (pred[..., 1] >= -1) & (pred[..., 1] <= 480)).all()
    head.save(tmp_path / "h")
    back = LandmarkHead.load(tmp_path / "h", model=r18)
    np.testing.assert_allclose(back.predict(paths[4:]), pred, atol=1e-3)  # two crop passes: 1e-5 shifts resample
    assert (tmp_path / "h" / "coarse" / "head.json").is_file() and (tmp_path / "h" / "fine" / "head.json").is_file()


def test_framed_prototype_head(r18):
    """A framed head of a method without few-shot warps: its fine head is fitted on the crops as they are."""
    paths, pts = _openfield(5)
    head = LandmarkHead(4, method="prototype", framing="object", frame_size=64, n_components=8, random_state=0,
                        progress=False).fit(r18, paths[:4], pts[:4])
    pred, conf = head.predict(paths[4:], return_confidence=True)
    assert pred.shape == (1, 4, 2) and conf.shape == (1, 4) and np.isfinite(pred).all()
    assert head.fine_.get_params()["n_augment"] == LandmarkHead().n_augment


def test_framed_stages_mirror_only_with_given_pairs(r18):
    """mirror="auto" (the default) leaves a framed head's stages unmirrored, even with names that pair (openfield's
    pool CV: mirrored copies hurt both stages); given pairs reach the fine stage, and the coarse stage mirrors its
    centre (mirror=[]); a pair index beyond K is an error before anything is fitted."""
    from hyperland.errors import InvalidOptionError

    paths, pts = _openfield(4)
    names = ["snout", "leftear", "rightear", "tailbase"]
    opts = {"framing": "object", "frame_size": 64, "n_augment": 1, "n_components": 8, "random_state": 0,
            "progress": False}
    auto = LandmarkHead(4, **opts).fit(r18, paths, pts, landmark_names=names)
    assert auto.coarse_.mirror is False and auto.fine_.mirror is False and auto.fine_.mirror_offset_ is None
    assert auto.fine_.landmark_names_ == names
    given = LandmarkHead(4, mirror=[[1, 2]], **opts).fit(r18, paths, pts)
    assert given.coarse_.mirror == [] and given.fine_.mirror == [[1, 2]]
    assert given.fine_.mirror_offset_ is not None and given.coarse_.mirror_offset_ is not None
    assert given.fine_.selection_["n_train_maps"] == 2 * auto.fine_.selection_["n_train_maps"]
    with pytest.raises(InvalidOptionError, match=r"\[4\] do not exist"):
        LandmarkHead(4, mirror=[[1, 4]], **opts).fit(r18, paths, pts)
