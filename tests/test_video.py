"""Video in, tracks out (hyperland/video.py, `hyperland predict VIDEO`) on DeepLabCut's real openfield video: frames
decoded in bounded batches, one row per frame with the container's time stamps, the CLI's points equal to the
head's own on the same frames, smoothing and the overlay video."""

from __future__ import annotations

import csv
import gc
import json
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperland.cli import main
from hyperland.errors import InvalidImageError, InvalidOptionError, MissingDependencyError
from hyperland.smoothing import smooth_points
from hyperland.video import Tracks, is_video, iter_frames, track, video_info, write_overlay

av = pytest.importorskip("av", reason="PyAV (hyperland[video]) is part of the dev extra")

OPENFIELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "dlc-openfield"
VIDEO = OPENFIELD / "videos" / "m3v1mp4.mp4"
NAMES = ["snout", "leftear", "rightear", "tailbase"]


def _pyav_frames(indices: list[int]) -> tuple[float, dict[int, np.ndarray]]:
    """The container's average frame rate and the RGB pixels of ``indices``, read with PyAV directly."""
    with av.open(str(VIDEO)) as c:
        s = c.streams.video[0]
        out = {}
        for i, f in enumerate(c.decode(s)):
            if i in indices:
                out[i] = f.to_ndarray(format="rgb24")
            if i >= max(indices):
                break
        return float(s.average_rate), out


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory, r18) -> Path:
    """A tiny prototype head fitted on 3 labelled openfield frames (DeepLabCut CSV: 3 header rows, then the image
    path relative to the project and x, y per body part), saved with the body-part names."""
    from hyperland.heads import LandmarkHead

    if not VIDEO.is_file():
        pytest.fail(f"openfield data not found at {OPENFIELD}; place ../shared beside the repository.")
    rows = list(csv.reader((OPENFIELD / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv").open()))
    assert rows[1][1::2] == NAMES
    picked = [rows[3 + i] for i in (0, 40, 80)]
    images = [str(OPENFIELD / r[0]) for r in picked]
    points = np.array([[float(v) if v else np.nan for v in r[1:]] for r in picked]).reshape(3, 4, 2)
    head = LandmarkHead(4, method="prototype", n_components=4, random_state=0)
    head.fit(r18, images, points, landmark_names=NAMES)
    out = tmp_path_factory.mktemp("video") / "head"
    head.save(out)
    return out


def test_iter_frames_selects_decodes_and_holds_one_batch():
    assert is_video(VIDEO) and is_video("a.MKV") and not is_video("a.png")
    info = video_info(VIDEO)
    assert (info.width, info.height, info.n_frames) == (640, 480, 2330)
    fps, ref = _pyav_frames([5, 9, 29])
    assert info.fps == pytest.approx(fps)
    alive: list[weakref.ref] = []
    seen: list[int] = []
    most_alive = 0
    for batch in iter_frames(VIDEO, batch_size=3, start=5, stop=30, step=4):
        assert len(batch.frames) == len(batch.indices) == len(batch.times) <= 3
        assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in batch.frames)
        np.testing.assert_allclose(batch.times, np.array(batch.indices) / fps, atol=1e-5)
        for i, f in zip(batch.indices, batch.frames):
            if i in ref:
                np.testing.assert_array_equal(f, ref[i])  # the very pixels PyAV decodes for that index
        seen += batch.indices
        alive += [weakref.ref(f) for f in batch.frames]
        del batch, f
        gc.collect()
        most_alive = max(most_alive, sum(r() is not None for r in alive))
    assert seen == list(range(5, 30, 4))
    assert most_alive <= 3  # the generator keeps no frame of an earlier batch: memory ≤ one batch
    with pytest.raises(InvalidOptionError, match="batch_size=0"):
        next(iter_frames(VIDEO, batch_size=0))
    with pytest.raises(InvalidOptionError, match="stop=3 with start=5"):
        next(iter_frames(VIDEO, start=5, stop=3))


def test_cli_tracks_equal_the_heads_points_with_container_times(head_dir, tmp_path, capsys):
    from hyperland.heads import LandmarkHead

    out = tmp_path / "t.csv"
    assert main(["predict", "--head", str(head_dir), str(VIDEO), "--stop", "40", "--batch-size", "16",
                 "--out", str(out), "-q"]) == 0  # .csv: CSV without --format
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["frame", "time_s"] + [f"{n}_{c}" for n in NAMES for c in ("x", "y", "confidence")]
    assert len(rows) == 41
    frames = np.array([int(r[0]) for r in rows[1:]])
    assert frames.tolist() == list(range(40))
    fps, ref = _pyav_frames([0, 17, 39])
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], frames / fps, atol=1e-5)
    vals = np.array([r[2:] for r in rows[1:]], float).reshape(40, 4, 3)
    assert np.isfinite(vals).all() and ((vals[..., 2] > 0) & (vals[..., 2] <= 1)).all()
    assert ((vals[..., 0] >= -0.5) & (vals[..., 0] <= 639.5) & (vals[..., 1] >= -0.5) & (vals[..., 1] <= 479.5)).all()
    head = LandmarkHead.load(head_dir)  # the same head from Python, on the frames PyAV decodes
    pts, conf = head.predict([Image.fromarray(ref[i]) for i in (0, 17, 39)], return_confidence=True)
    np.testing.assert_allclose(vals[[0, 17, 39], :, :2], pts, atol=1e-3)
    np.testing.assert_allclose(vals[[0, 17, 39], :, 2], conf, atol=1e-3)
    tracks = track(head, VIDEO, stop=40, batch_size=7)  # the batch size does not change the points
    np.testing.assert_allclose(tracks.points, vals[..., :2], atol=1e-3)
    assert tracks.landmark_names == tuple(NAMES) and tracks.fps == pytest.approx(fps)


def test_cli_step_smooth_json_and_overlay(head_dir, tmp_path, capsys):
    base = ["predict", "--head", str(head_dir), str(VIDEO), "--start", "10", "--stop", "40", "--step", "3", "-q"]
    assert main(base) == 0
    raw = json.loads(capsys.readouterr().out)
    assert [r["frame"] for r in raw] == list(range(10, 40, 3)) and raw[0]["landmarks"] == NAMES
    overlay = tmp_path / "o.mp4"
    assert main(base + ["--smooth", "savgol:5", "--overlay", str(overlay), "--format", "json"]) == 0
    smoothed = json.loads(capsys.readouterr().out)
    pts = np.array([r["points"] for r in raw])
    conf = np.array([r["confidence"] for r in raw])
    want = smooth_points(pts, conf, spec="savgol:5", times=np.array([r["time_s"] for r in raw]))
    np.testing.assert_allclose(np.array([r["points"] for r in smoothed]), want, atol=2e-3)
    np.testing.assert_allclose(np.array([r["confidence"] for r in smoothed]), conf)  # confidences unchanged
    fps, ref = _pyav_frames([10])
    with av.open(str(overlay)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (640, 480) and float(s.average_rate) == pytest.approx(fps / 3, rel=1e-4)
        drawn = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(drawn) == 10
    x, y = np.round(want[0, 3]).astype(int)  # the last-drawn landmark's dot (red, PALETTE[3]) where it was tracked
    assert np.abs(drawn[0][y, x].astype(int) - (214, 39, 40)).max() < 40
    assert np.abs(drawn[0][y, x].astype(int) - ref[10][y, x]).max() > 40  # not the source pixel
    assert np.abs(drawn[0][5:40, 300:340].astype(int) - ref[10][5:40, 300:340]).mean() < 4  # elsewhere: the video


def test_video_input_errors_name_the_flags(head_dir, tmp_path, capsys, monkeypatch):
    img = str(OPENFIELD / "labeled-data" / "m4s1" / "img0000.png")
    assert main(["predict", "--head", str(head_dir), img, "--smooth", "savgol", "-q"]) == 2
    assert "--smooth apply to a video input only" in capsys.readouterr().err
    assert main(["predict", "--head", str(head_dir), str(VIDEO), img, "-q"]) == 2
    assert "one video at a time" in capsys.readouterr().err
    assert main(["predict", "--head", str(head_dir), str(VIDEO), "--smooth", "median", "-q"]) == 2
    assert "--smooth 'median': expected savgol" in capsys.readouterr().err
    assert main(["predict", "--head", str(head_dir), str(VIDEO), "--step", "0", "-q"]) == 2
    assert "--step 0: expected an integer >= 1" in capsys.readouterr().err
    assert main(["predict", "--head", str(head_dir), str(VIDEO), "--start", "5000", "-q"]) == 2
    assert "select no frame" in capsys.readouterr().err
    assert main(["predict", "--head", str(head_dir), str(tmp_path / "none.mp4"), "-q"]) == 2
    assert "Video file not found" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(InvalidImageError, match="not a video FFmpeg can read"):
        video_info(tmp_path / "junk.mp4")
    assert main(["predict", "--head", str(head_dir), str(VIDEO), "--overlay", str(tmp_path / "o.gif"), "-q"]) == 2
    assert "--overlay '" in (err := capsys.readouterr().err) and "cannot write a '.gif' video" in err
    empty = Tracks(np.zeros((0, 4, 2)), None, np.zeros(0, np.int64), np.zeros(0), 30.0)
    with pytest.raises(InvalidOptionError, match="hold no frame"):
        write_overlay(VIDEO, empty, tmp_path / "x.mp4")
    monkeypatch.setitem(sys.modules, "av", None)  # import fails as if PyAV were missing
    with pytest.raises(MissingDependencyError, match=r'pip install "hyperland\[video\]"'):
        next(iter_frames(VIDEO))
    assert main(["predict", "--head", str(head_dir), str(VIDEO), "-q"]) == 2
    assert 'pip install "hyperland[video]"' in capsys.readouterr().err
