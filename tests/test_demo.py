"""`hyperland demo` on the bundled faces, and the bundle itself."""

from __future__ import annotations

import numpy as np

from hyperland.assets import faces_dir
from hyperland.cli import main
from hyperland.data import read_csv, read_mtfl

FACES = faces_dir()


def test_bundle_is_small_and_matches_mtfl(mtfl_root):
    size = sum(p.stat().st_size for p in FACES.iterdir())
    assert size < 1_000_000
    train, test = read_csv(FACES / "train.csv"), read_csv(FACES / "test.csv")
    assert len(train) == 20 and len(test) == 20
    mtfl = {s.image.name: s.points for s in read_mtfl(mtfl_root, "testing")[:40]}
    for s in train + test:
        np.testing.assert_allclose(s.points, mtfl[s.image.name], atol=1e-3)  # 0-based, 3 decimals


def _mean_shape_nme(train, test) -> float:
    # hand reference: all faces are 150 x 150, so the mean shape is the plain average of the training points
    mean = np.mean([s.points for s in train], axis=0)
    errs = []
    for s in test:
        iod = np.linalg.norm(s.points[0] - s.points[1])
        errs.append(np.linalg.norm(mean - s.points, axis=1).mean() / iod)
    return 100 * float(np.mean(errs))


def test_demo_runs_and_reports(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--options", '{"n_augment": 0}'])
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "demo_landmarks.png").is_file()
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    ref = _mean_shape_nme(read_csv(FACES / "train.csv"), read_csv(FACES / "test.csv"))
    assert f"{ref:.2f} %" in lines["mean-shape"]
    nme = float(lines["NME"].split()[4])
    assert 0 < nme < 200
    assert lines["model"].split()[1] == "mtfl-dense-r18"  # the embedded trained default, offline
    assert "ridge head, 20 faces" in lines["fit"]


def test_demo_regressor_and_bad_faces_folder(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--method", "regressor", "--options", '{"steps": 5, "n_augment": 0}',
                 "--model", "random-r18"]) == 0
    out = capsys.readouterr().out
    assert "regressor head, 20 faces" in out and "random-r18" in out
    assert main(["demo", "--out", str(tmp_path), "--faces", str(tmp_path / "nowhere")]) == 2
    assert "No faces at" in capsys.readouterr().err
