"""Heads shared like models: save_pretrained's card, push_to_hub → from_pretrained through the real
huggingface_hub client and the loopback hub, `hyperland predict --head hf-hub:...`."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest

import hyperland
from hyperland.cli import main
from hyperland.data import landmark_names, load_samples, read_keypoints
from hyperland.errors import InvalidOptionError
from hyperland.heads import LandmarkHead

FACES = Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces"


@pytest.fixture
def fitted(r18):
    samples = read_keypoints(FACES / "train.csv")[:4]
    imgs, pts = load_samples(samples)
    return LandmarkHead(5, n_components=8, n_augment=1, random_state=0, progress=False).fit(
        r18, imgs, pts, landmark_names=landmark_names(samples))


def test_push_then_from_pretrained_and_cli(hub, fitted, tmp_path, monkeypatch, capsys):
    def upload_folder(self, *, folder_path, repo_id, **kw):  # the upload API boundary: publish on the local hub
        commit = hub.publish(repo_id, Path(folder_path))
        return type("CommitInfo", (), {"commit_url": f"{hub.url}/{repo_id}/commit/{commit}"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    url = fitted.push_to_hub("org/face5")
    assert "/org/face5/commit/" in url
    card = (Path(hub.root) / "org" / "face5").rglob("README.md").__next__().read_text()
    assert "left_eye, right_eye, nose" in card and fitted.fingerprint_ in card and "`random-r18`" in card
    assert "labelled training images: 4" in card
    head = LandmarkHead.from_pretrained("hf-hub:org/face5")  # its backbone comes from its head.json
    img = str(min(FACES.glob("*.jpg")))
    np.testing.assert_allclose(head.predict(img), fitted.predict(img), atol=1e-4)
    assert main(["predict", "--head", "hf-hub:org/face5", img, "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out[0]["points"], fitted.predict(img)[0], atol=1e-3)


def test_a_head_on_a_local_model_folder_is_not_pushed(fitted, tmp_path):
    fitted.model_.save_pretrained(tmp_path / "m")
    local = hyperland.load(tmp_path / "m")
    samples = read_keypoints(FACES / "train.csv")[:3]
    imgs, pts = load_samples(samples)
    head = LandmarkHead(5, method="prototype", n_components=4).fit(local, imgs, pts)
    with pytest.raises(InvalidOptionError, match="Push the model first"):
        head.push_to_hub("org/x")
    card = (head.save_pretrained(tmp_path / "h") / "README.md").read_text()
    assert "# A hyperland landmark head: 5 landmarks" in card
