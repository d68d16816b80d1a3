"""A DeepLabCut project end to end on the CLI: fit a framed head on CollectedData_*.csv, predict into DeepLabCut's
layout, read it back."""

from __future__ import annotations

import json
import shutil

import numpy as np

from hyperland.cli import main
from hyperland.data import read_dlc


def test_fit_on_collected_data_predict_dlc_layout(openfield_csv, tmp_path, capsys):
    project = tmp_path / "project"  # a small DLC project: 6 labelled frames of the openfield example
    (project / "labeled-data" / "m4s1").mkdir(parents=True)
    lines = openfield_csv.read_text().splitlines()
    (project / "labeled-data" / "m4s1" / "CollectedData_me.csv").write_text("\n".join(lines[:9]) + "\n")
    for row in lines[3:9]:
        rel = row.split(",")[0]
        shutil.copy(openfield_csv.parents[2] / rel, project / rel)
    labels = project / "labeled-data" / "m4s1" / "CollectedData_me.csv"
    opts = {"n_components": 4, "framing": "object", "frame_size": 64, "n_augment": 1}
    assert main(["fit", "--train", str(labels), "--limit", "4", "--out", str(tmp_path / "head"), "--model",
                 "random-r18", "--options", json.dumps(opts), "-q"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["framing"] == "object" and "train_nme" not in info and info["train_error_px"] >= 0
    frames = sorted((project / "labeled-data" / "m4s1").glob("img*.png"))[4:]
    out = project / "labeled-data" / "m4s1" / "MachineLabels-iter0.csv"
    assert main(["predict", "--head", str(tmp_path / "head"), *map(str, frames), "--format", "dlc", "--out",
                 str(out), "-q"]) == 0
    header = out.read_text().splitlines()[:3]
    assert header[1].split(",")[1:4] == ["snout"] * 3 and header[2].split(",")[1:4] == ["x", "y", "likelihood"]
    back = read_dlc(out)
    assert [s.image.name for s in back] == [f.name for f in frames]
    assert back[0].meta["landmarks"] == ["snout", "leftear", "rightear", "tailbase"]
    assert np.isfinite(np.stack([s.points for s in back])).all()
    assert main(["predict", "--head", str(tmp_path / "head"), str(frames[0]), "--format", "dlc", "-q"]) == 2
    assert "--format dlc writes a DeepLabCut CSV file: give --out" in capsys.readouterr().err
