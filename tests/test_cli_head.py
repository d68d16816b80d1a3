"""`hyperland fit` / `hyperland predict` end to end on six real AFLW faces."""

from __future__ import annotations

import csv
import json

import numpy as np

from hyperland.cli import main


def test_fit_then_predict(mtfl_root, tmp_path, capsys) -> None:
    out = tmp_path / "head"
    opts = json.dumps({"steps": 5, "n_augment": 1, "n_components": 16})
    assert main(["fit", "--model", "random-r18", "--train", str(mtfl_root / "testing.txt"), "--limit", "6",
                 "--out", str(out), "--options", opts]) == 2  # steps: a regressor option, the default head is ridge
    assert "does not read ['steps']" in capsys.readouterr().err
    assert main(["fit", "--model", "random-r18", "--train", str(mtfl_root / "testing.txt"), "--limit", "6",
                 "--out", str(out), "--method", "regressor", "--options", opts]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_images"] == 6 and info["landmarks"] == 5 and (out / "head.safetensors").is_file()
    imgs = sorted((mtfl_root / "AFLW").glob("*.jpg"))[:2]
    assert main(["predict", "--head", str(out), *map(str, imgs)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in res] == [str(p) for p in imgs]
    pts = np.array([r["points"] for r in res])
    assert pts.shape == (2, 5, 2) and np.isfinite(pts).all()
    assert main(["predict", "--head", str(out), "--format", "csv", "--out", str(tmp_path / "p.csv"), str(imgs[0])]) == 0
    rows = list(csv.reader((tmp_path / "p.csv").open()))
    assert rows[0][:3] == ["image", "left_eye_x", "left_eye_y"] and len(rows) == 2  # MTFL's landmark names
    assert len(rows[0]) == 11  # the regressor has no confidence: points only
    np.testing.assert_allclose(np.array(rows[1][1:], float).reshape(5, 2), pts[0], atol=2e-3)


def test_predict_with_missing_head_is_a_clean_error(tmp_path, capsys) -> None:
    assert main(["predict", "--head", str(tmp_path / "nope"), str(tmp_path / "x.jpg")]) == 2
    assert "not a saved head" in capsys.readouterr().err


def test_predict_folders_and_named_csv_columns(tmp_path, capsys) -> None:
    """A generic CSV's landmark names travel into head.json and become predict's CSV columns, so the output reads
    back as a keypoint file; predict takes folders of images like extract."""
    from pathlib import Path

    from hyperland.data import read_csv

    faces = Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces"
    names = ["le", "re", "nose", "lm", "rm"]
    rows = list(csv.reader((faces / "train.csv").open()))
    labels = tmp_path / "labels.csv"
    header = ["image"] + [f"{n}_{a}" for n in names for a in ("x", "y")]
    body = [",".join([str(faces / r[0])] + r[1:11]) for r in rows[1:5]]
    labels.write_text("\n".join([",".join(header), *body]) + "\n")
    head = tmp_path / "head"
    assert main(["fit", "--train", str(labels), "--out", str(head), "--method", "prototype", "--model", "random-r18",
                 "--options", '{"n_components": 4}', "-q"]) == 0
    assert json.loads((head / "head.json").read_text())["landmarks"] == names
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted(faces.glob("*.jpg"))[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    capsys.readouterr()
    assert main(["predict", "--head", str(head), str(folder), "--format", "csv", "--out", str(tmp_path / "p.csv"),
                 "-q"]) == 0
    back = read_csv(tmp_path / "p.csv")
    assert len(back) == 3 and back[0].meta["landmarks"] == names and np.isfinite(back[0].points).all()
    assert [Path(s.image).name for s in back] == sorted(p.name for p in folder.iterdir())
