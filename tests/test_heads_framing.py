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


def _turn(shape: np.ndarray, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return shape @ np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]).T


def test_reference_shape_and_orientations_recover_known_turns():
    """Shapes turned by known angles (mean 0), scaled and shifted: the reference is the template (centred, unit RMS
    radius) and each shape's orientation is its angle, with a point missing in some frames."""
    template = np.array([[-1.0, 0.0], [-0.7, 0.4], [-0.7, -0.4], [2.4, 0.0]])
    template = (template - template.mean(0)) / np.sqrt((((template - template.mean(0)) ** 2).sum(-1)).mean())
    angles = np.array([-100.0, -40.0, 0.0, 40.0, 100.0])  # circular mean 0
    pts = np.stack([3.0 * (i + 1) * _turn(template, a) + np.array([100 + 10 * i, 50.0]) for i, a in enumerate(angles)])
    pts[1, 2] = np.nan  # an unlabelled ear
    ref = fr.reference_shape(pts.astype(np.float32))
    np.testing.assert_allclose(ref, template, atol=1e-4)
    np.testing.assert_allclose(fr.orientations(pts.astype(np.float32), ref), angles, atol=1e-2)
    # a turned shape's orientation follows the frame's y-down axes: +90 takes +x to +y (the crop's convention)
    assert fr.orientations(_turn(ref, 90.0)[None].astype(np.float32), ref)[0] == pytest.approx(90.0, abs=1e-3)
    # fewer than two labelled points: no orientation (0), and no reference from such frames
    one = np.full((2, 4, 2), np.nan, np.float32)
    one[:, 0] = 5.0
    assert fr.reference_shape(one) is None
    np.testing.assert_array_equal(fr.orientations(one, ref), [0.0, 0.0])


def test_aligned_crops_turn_every_object_to_the_reference():
    """frame_align: the crop at each labelled frame's orientation shows the object in the reference's orientation
    (the crop points of differently turned objects agree up to a shift: the crop is centred on the points' bounding
    box, which turns with the frame)."""
    template = np.array([[-10.0, 0.0], [-7.0, 4.0], [-7.0, -4.0], [24.0, 0.0]])
    pts = np.stack([_turn(template, a) + np.array([40.0, 30.0]) for a in (0.0, 120.0, -150.0)]).astype(np.float32)
    ref = fr.reference_shape(pts)
    frames = [torch.zeros(3, 60, 80)] * 3
    _, local = fr.object_crops(frames, pts, margin=1.3, extent=fr.median_extent(pts), size=32,
                               angles=fr.orientations(pts, ref))
    local = local - local.mean(1, keepdims=True)
    np.testing.assert_allclose(local[1], local[0], atol=1e-3)
    np.testing.assert_allclose(local[2], local[0], atol=1e-3)


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
    # ... chosen on contiguous blocks of the labelled frames (video frames are alike); the fine stage as asked
    assert head.coarse_.val_blocks is True and head.fine_.val_blocks is False
    shape = LandmarkHead(4, framing="object", frame_size=64, n_augment=1, n_components=8, random_state=0,
                         frame_prior="shape", progress=False).fit(r18, paths[:4], pts[:4])
    assert shape.coarse_.prior_centre == "shape" and shape.coarse_.selection_["centre"] == "shape"
    assert ((pred[..., 0] >= -1) & (pred[..., 0] <= 640) & (pred[..., 1] >= -1) & (pred[..., 1] <= 480)).all()
    head.save(tmp_path / "h")
    back = LandmarkHead.load(tmp_path / "h", model=r18)
    np.testing.assert_allclose(back.predict(paths[4:]), pred, atol=1e-3)  # two crop passes: 1e-5 shifts resample
    assert (tmp_path / "h" / "coarse" / "head.json").is_file() and (tmp_path / "h" / "fine" / "head.json").is_file()
    np.testing.assert_array_equal(back.frame_reference_, head.frame_reference_)
    turns = fr.crop_turns("auto", fr.orientations(pts[:4], head.frame_reference_))
    assert back.frame_turns_ == head.frame_turns_ == turns


def test_framed_head_saved_before_alignment_reads_unturned(r18, tmp_path):
    """A framed head saved before frame_align (no 'frame.reference' / 'frame.turns', an integer frame_turns) loads
    unaligned and reads its crops as it did."""
    import json

    from safetensors.torch import load_file, save_file

    paths, pts = _openfield(5)
    head = LandmarkHead(4, framing="object", frame_size=64, n_augment=1, n_components=8, random_state=0,
                        frame_align=False, frame_turns=1, progress=False).fit(r18, paths[:4], pts[:4])
    assert head.frame_reference_ is None and head.frame_turns_ == 1
    head.save(tmp_path / "h")
    weights = load_file(tmp_path / "h" / "head.safetensors")
    save_file({k: v for k, v in weights.items() if k == "frame.extent"}, tmp_path / "h" / "head.safetensors")
    cfg = json.loads((tmp_path / "h" / "head.json").read_text())
    cfg["params"].pop("frame_align")
    cfg.pop("weights_sha256")  # edited on purpose
    (tmp_path / "h" / "head.json").write_text(json.dumps(cfg))
    back = LandmarkHead.load(tmp_path / "h", model=r18)
    assert back.frame_reference_ is None and back.frame_turns_ == 1
    np.testing.assert_allclose(back.predict(paths[4:]), head.predict(paths[4:]), atol=1e-3)


def test_crop_turns_auto_reads_freely_turning_objects_in_eight():
    """frame_turns="auto": 8 readings where the labelled orientations span more than 90 degrees, else 1; an integer
    is kept; unaligned heads (no orientations) read once."""
    assert fr.crop_turns("auto", np.array([-96.0, 0.0, 82.0])) == fr.FREE_TURNS == 8
    assert fr.crop_turns("auto", np.array([-20.0, 5.0, 30.0])) == 1
    assert fr.crop_turns("auto", None) == 1 and fr.crop_turns(4, np.array([0.0])) == 4


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
