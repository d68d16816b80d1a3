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
                 "--out", str(out), "--options", opts]) == 0
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
    assert rows[0][:3] == ["image", "x0", "y0"] and len(rows) == 2
    np.testing.assert_allclose(np.array(rows[1][1:], float).reshape(5, 2), pts[0], atol=2e-3)


def test_predict_with_missing_head_is_a_clean_error(tmp_path, capsys) -> None:
    assert main(["predict", "--head", str(tmp_path / "nope"), str(tmp_path / "x.jpg")]) == 2
    assert "not a saved head" in capsys.readouterr().err
