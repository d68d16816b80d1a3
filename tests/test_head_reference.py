"""A saved head finds its model (manifest name, model folder relative to the head, hf-hub reference), checks its
fingerprint, and the CLI fit + predict give exactly the Python API's points."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hyperland
from hyperland.cli import main
from hyperland.data import landmark_names, load_samples, read_keypoints
from hyperland.errors import BackboneMismatchError, ModelNotFoundError, WeightsMismatchError
from hyperland.heads import LandmarkHead

FACES = Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces"
FAST = {"n_augment": 1, "n_components": 8}


def _labels(tmp_path: Path, n: int = 6) -> Path:
    """The first n bundled training faces as a keypoint CSV with absolute image paths."""
    rows = list(csv.reader((FACES / "train.csv").open()))
    out = tmp_path / "labels.csv"
    out.write_text("\n".join([",".join(rows[0])] + [",".join([str(FACES / r[0])] + r[1:]) for r in rows[1:n + 1]])
                   + "\n")
    return out


def test_cli_fit_predict_equals_python(tmp_path, capsys):
    """The same CSV through `hyperland fit` + `hyperland predict` and through the documented Python path."""
    labels = _labels(tmp_path)
    test_imgs = [str(p) for p in sorted(FACES.glob("*.jpg"))[-3:]]
    assert main(["fit", "--train", str(labels), "--out", str(tmp_path / "head"), "--model", "random-r18", "-q",
                 "--options", json.dumps(FAST)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method"] == "ridge"  # the library's default head
    assert main(["predict", "--head", str(tmp_path / "head"), *test_imgs, "-q"]) == 0  # no --model: recorded
    cli = json.loads(capsys.readouterr().out)
    cli_pts = np.array([r["points"] for r in cli])
    cli_conf = np.array([r["confidence"] for r in cli])

    model = hyperland.load("random-r18")
    samples = read_keypoints(labels)
    imgs, pts = load_samples(samples)
    # the names the CLI reads from the CSV (the default head's mirrored copies pair left and right by them)
    head = LandmarkHead(pts.shape[1], random_state=0, **FAST).fit(model, imgs, pts,
                                                                   landmark_names=landmark_names(samples))
    assert head.mirror_offset_ is not None  # the copies were made
    py_pts, py_conf = head.predict(test_imgs, return_confidence=True)
    np.testing.assert_allclose(cli_pts, py_pts, atol=1e-4, rtol=0)  # JSON keeps 4 decimals
    np.testing.assert_allclose(cli_conf, py_conf, atol=1e-4)
    saved = LandmarkHead.load(tmp_path / "head")  # the saved head, its model found from head.json
    np.testing.assert_allclose(saved.predict(test_imgs), py_pts, atol=1e-4)
    assert cli[0]["landmarks"] == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
    assert ((cli_conf > 0) & (cli_conf <= 1)).all()


def test_head_finds_a_model_folder_relative_to_itself(tmp_path, capsys):
    project = tmp_path / "project"
    hyperland.load("random-r18").save_pretrained(project / "models" / "adapted")
    labels = _labels(tmp_path, 4)
    assert main(["fit", "--train", str(labels), "--out", str(project / "heads" / "face5"), "-q",
                 "--model", str(project / "models" / "adapted"), "--options", json.dumps(FAST)]) == 0
    capsys.readouterr()
    cfg = json.loads((project / "heads" / "face5" / "head.json").read_text())
    assert cfg["model"] == {"source": "../../models/adapted", "name": "random-r18", "resize": 136, "border": 20}
    assert str(tmp_path) not in (project / "heads" / "face5" / "head.json").read_text()  # no machine path
    moved = tmp_path / "moved"
    shutil.move(str(project), str(moved))  # the project folder moves as a whole
    img = str(min(FACES.glob("*.jpg")))
    assert main(["predict", "--head", str(moved / "heads" / "face5"), img, "-q"]) == 0
    assert np.isfinite(np.array(json.loads(capsys.readouterr().out)[0]["points"])).all()
    shutil.rmtree(moved / "models")  # now the recorded folder is gone: the error names --model
    assert main(["predict", "--head", str(moved / "heads" / "face5"), img, "-q"]) == 2
    err = capsys.readouterr().err
    assert "../../models/adapted" in err or "models/adapted" in err
    assert "--model MODEL" in err


def test_recorded_model_other_weights_are_refused(tmp_path):
    """The reference is checked by fingerprint: a folder that now holds other weights is not used silently."""
    model = hyperland.load("random-r18")
    model.save_pretrained(tmp_path / "m")
    imgs, pts = load_samples(read_keypoints(_labels(tmp_path, 3)))
    head = LandmarkHead(5, method="prototype", n_components=4).fit(hyperland.load(tmp_path / "m"), imgs, pts)
    head.save(tmp_path / "h")
    shutil.rmtree(tmp_path / "m")
    hyperland.load("timm:resnet18").save_pretrained(tmp_path / "m")  # other weights at the same place
    with pytest.raises(BackboneMismatchError, match="model=MODEL"):
        LandmarkHead.load(tmp_path / "h")


def test_head_of_a_hand_built_model_asks_for_it(tmp_path):
    model = hyperland.load("random-r18")
    model.source = None  # as for a HyperlandModel built by hand
    imgs, pts = load_samples(read_keypoints(_labels(tmp_path, 3)))
    LandmarkHead(5, method="prototype", n_components=4).fit(model, imgs, pts).save(tmp_path / "h")
    with pytest.raises(ModelNotFoundError, match="records no loadable model"):
        LandmarkHead.load(tmp_path / "h")
    assert LandmarkHead.load(tmp_path / "h", model=model).n_landmarks == 5


def test_hub_model_is_recorded_with_its_commit(hub, tmp_path):
    hyperland.load("random-r18").save_pretrained(tmp_path / "up")
    hub.publish("org/faces", tmp_path / "up")
    model = hyperland.load("hf-hub:org/faces")
    assert model.source is not None and model.source.startswith("hf-hub:org/faces@")
    assert len(model.source.rsplit("@", 1)[1]) == 40  # pinned to the commit it was downloaded at
    imgs, pts = load_samples(read_keypoints(_labels(tmp_path, 3)))
    LandmarkHead(5, method="prototype", n_components=4).fit(model, imgs, pts).save(tmp_path / "h")
    assert LandmarkHead.load(tmp_path / "h").fingerprint_ == model.fingerprint


@pytest.mark.parametrize("key, value", [("model", 3), ("model", {"source": "x"}), ("explained_variance", "high"),
                                        ("history", [1]), ("learned", "yes"), ("selection", 5)])
def test_every_head_json_field_is_type_checked(tmp_path, key, value):
    model = hyperland.load("random-r18")
    imgs, pts = load_samples(read_keypoints(_labels(tmp_path, 3)))
    LandmarkHead(5, method="prototype", n_components=4).fit(model, imgs, pts).save(tmp_path / "h")
    cfg = json.loads((tmp_path / "h" / "head.json").read_text())
    cfg[key] = value
    (tmp_path / "h" / "head.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsMismatchError, match=f"'{key}' is"):
        LandmarkHead.load(tmp_path / "h", model=model)
