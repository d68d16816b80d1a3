"""DeepLabCut CSV labels: the real openfield example, the 3-column path layout, multi-animal refusal, writing
predictions and reading them back, and dispatch from read_keypoints (so `hyperland fit --train` reads them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hyperland import DatasetError, InvalidKeypointsError
from hyperland.data import read_dlc, read_keypoints, write_dlc_predictions

PARTS = ["snout", "leftear", "rightear", "tailbase"]


def _project(tmp_path: Path, rows: list[str], *, source: Path, name: str = "CollectedData_Me.csv") -> Path:
    """A DeepLabCut project in tmp_path: labeled-data/m4s1/ with the first two openfield frames and a CSV."""
    video = tmp_path / "proj" / "labeled-data" / "m4s1"
    video.mkdir(parents=True)
    for i in (0, 1):
        shutil.copy(source.parent / f"img000{i}.png", video)
    (video / name).write_text("\n".join(rows) + "\n")
    return video / name


def test_reads_the_openfield_labels(openfield_csv: Path) -> None:
    samples = read_keypoints(openfield_csv)  # the generic entry point (hyperland fit --train) tells DLC by its header
    assert len(samples) == 116
    assert samples[0].meta["landmarks"] == PARTS and samples[0].meta["scorer"] == "Pranav"
    # row 5 of the file: labeled-data/m4s1/img0001.png,10.248,288.487,19.984,297.198,12.298,281.313,95.821,221.361
    s = samples[1]
    assert s.image == openfield_csv.parent / "img0001.png" and s.image.is_file() and s.meta["line"] == 5
    np.testing.assert_allclose(s.points, [[10.248, 288.487], [19.984, 297.198], [12.298, 281.313],
                                          [95.821, 221.361]], atol=1e-4)
    assert samples[-1].image.name == "img0115.png" and s.visible.all()
    np.testing.assert_allclose(samples[-1].points[3], [92.746, 192.154], atol=1e-3)  # tailbase of the last row


def test_an_empty_cell_is_a_missing_part(openfield_csv: Path, tmp_path: Path) -> None:
    rows = openfield_csv.read_text().splitlines()
    cells = rows[4].split(",")  # img0001
    cells[5:7] = ["", ""]  # rightear not labelled
    text = "\n".join(rows[:3] + [rows[3], ",".join(cells)])
    path = _project(tmp_path, text.splitlines(), source=openfield_csv)
    a, b = read_dlc(path)
    assert a.visible.all() and b.visible.tolist() == [True, True, False, True]
    assert np.isnan(b.points[2]).all() and b.points[3].tolist() == pytest.approx([95.821, 221.361])
    assert b.image == path.parent / "img0001.png"  # resolved against the project folder (parent of labeled-data)


def test_three_column_paths_and_a_csv_outside_its_project(tmp_path: Path, openfield_csv: Path) -> None:
    rows = ["scorer,,,Me,Me,Me,Me", "bodyparts,,,snout,snout,tailbase,tailbase", "coords,,,x,y,x,y",
            "labeled-data,m4s1,img0000.png,21.5,265.4,87.1,152.7",
            "labeled-data,m4s1,img0001.png,,,95.8,221.4"]
    path = _project(tmp_path, rows, source=openfield_csv)
    samples = read_dlc(path)
    assert [s.image.name for s in samples] == ["img0000.png", "img0001.png"]
    assert samples[0].image.parent == path.parent and samples[0].meta["landmarks"] == ["snout", "tailbase"]
    np.testing.assert_allclose(samples[0].points, [[21.5, 265.4], [87.1, 152.7]], atol=1e-4)
    assert samples[1].visible.tolist() == [False, True]
    # the video folder copied on its own: the images are found beside the CSV
    alone = tmp_path / "alone"
    shutil.copytree(path.parent, alone)
    assert read_dlc(alone / path.name)[1].image == alone / "img0001.png"
    # ... and an image that is nowhere is named with the folder it was looked for in
    (alone / "img0001.png").unlink()
    with pytest.raises(DatasetError, match=r":5: image .*img0001.png' is listed but missing.*project folder"):
        read_dlc(alone / path.name)


def test_multi_animal_and_malformed_files_are_refused(tmp_path: Path, openfield_csv: Path) -> None:
    multi = ["scorer,,,Me,Me,Me,Me", "individuals,,,mus1,mus1,mus2,mus2", "bodyparts,,,snout,snout,snout,snout",
             "coords,,,x,y,x,y", "labeled-data,m4s1,img0000.png,1,2,3,4"]
    with pytest.raises(DatasetError, match="multi-animal DeepLabCut file"):
        read_keypoints(_project(tmp_path, multi, source=openfield_csv))
    bad = tmp_path / "b.csv"
    bad.write_text("scorer,Me,Me\nbodyparts,snout,snout\ncoords,x,z\nimg0000.png,1,2\n")
    with pytest.raises(DatasetError, match=r"column 3 is \('snout', 'z'\)"):
        read_dlc(bad, check_files=False)
    bad.write_text("scorer,Me,Me\nbodyparts,snout,snout\ncoords,x,y\nimg0000.png,1\n")
    with pytest.raises(DatasetError, match=r"b.csv:4: 2 fields but the header has 3"):
        read_dlc(bad, check_files=False)


def test_predictions_round_trip(tmp_path: Path, openfield_csv: Path) -> None:
    path = _project(tmp_path, ["scorer,Me,Me", "bodyparts,snout,snout", "coords,x,y"], source=openfield_csv)
    images = [path.parent / "img0000.png", path.parent / "img0001.png"]
    pts = np.array([[[21.5, 265.25], [np.nan, np.nan]], [[10.125, 288.5], [95.75, 221.375]]])
    conf = np.array([[0.91, 0.02], [0.5, 0.75]])
    out = path.parent / "machinelabels-iter0.csv"
    write_dlc_predictions(out, images=images, points=pts, confidence=conf, landmarks=["snout", "tail"])
    lines = out.read_text().splitlines()
    assert lines[:3] == ["scorer,hyperland,hyperland,hyperland,hyperland,hyperland,hyperland",
                         "bodyparts,snout,snout,snout,tail,tail,tail", "coords,x,y,likelihood,x,y,likelihood"]
    assert lines[3] == "labeled-data/m4s1/img0000.png,21.500,265.250,0.9100,,,0.0200"  # relative to the project
    back = read_keypoints(out)
    assert [s.image for s in back] == images and back[0].meta["landmarks"] == ["snout", "tail"]
    np.testing.assert_allclose(np.stack([s.points for s in back]), pts, atol=1e-4)
    np.testing.assert_allclose([s.meta["likelihood"] for s in back], conf, atol=1e-4)
    assert back[0].visible.tolist() == [True, False]
    # without confidences: x, y per part (the hand-label layout), still read back
    write_dlc_predictions(out, images=images, points=pts, landmarks=["snout", "tail"], scorer="me")
    assert out.read_text().splitlines()[2] == "coords,x,y,x,y"
    assert "likelihood" not in read_dlc(out)[0].meta
    with pytest.raises(InvalidKeypointsError, match=r"Expected \(2, 3, 2\)"):
        write_dlc_predictions(out, images=images, points=pts, landmarks=["a", "b", "c"])
    with pytest.raises(InvalidKeypointsError, match=r"confidence has shape \(2,\)"):
        write_dlc_predictions(out, images=images, points=pts, confidence=conf[0], landmarks=["a", "b"])
