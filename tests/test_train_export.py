"""hyperland-train export → hyperland.load() round trip, manifest entry and refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from train_utils import image_list, model_state, tiny_config

import hyperland
from hyperland.errors import CheckpointError, DatasetError
from hyperland.manifest import parse_manifest
from hyperland.train.cli import main as train_main
from hyperland.train.export import export_run
from hyperland.train.trainer import Trainer


@pytest.fixture(scope="module")
def finished_run(mtfl_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    faces = image_list(mtfl_root, tmp, 16)
    Trainer(tiny_config(faces, epochs=1, recipe="tiny-test"), tmp / "run").fit()
    return tmp / "run"


def test_export_round_trip_through_load(finished_run: Path, tmp_path: Path, aflw_images: list[Path]) -> None:
    res = export_run(finished_run, tmp_path / "model", name="tiny-moco", license="MIT")
    assert sorted(p.name for p in res.directory.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert res.sha256 == hashlib.sha256((tmp_path / "model" / "model.safetensors").read_bytes()).hexdigest()
    model = hyperland.load(tmp_path / "model")  # strict keys
    c = model.config
    assert (c.architecture, c.name, c.recipe, c.resize, c.border, c.out_indices) == \
        ("test_resnet", "tiny-moco", "tiny-test", 40, 4, (1, 2, 3, 4))
    assert c.provenance["source"] == "hyperland-train" and c.provenance["steps"] == 2
    assert c.provenance["data"] == "list 'images.txt' (16 train, 0 val, crop none)" and c.provenance["train_config"]["queue_size"] == 16
    trained = {k[len("encoder_q.backbone."):]: v for k, v in model_state(finished_run).items()
               if k.startswith("encoder_q.backbone.")}
    exported = model.backbone.state_dict()
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    feats = model.extract(aflw_images[:2], layers=(4,), normalize=None)
    assert feats.shape == (2, model.num_channels((4,)), 1, 1) and torch.isfinite(feats).all()
    card = (tmp_path / "model" / "README.md").read_text()
    assert "library_name: hyperland" in card and "tiny-test" in card
    assert "Objective: MoCo — MoCo v2 image-level InfoNCE" in card and "alone, no dense term" in card
    assert model.pca_layers == (1, 2, 3, 4) and model.pca is not None  # the descriptor PCA, of all 16 images
    assert model.pca.in_channels == model.num_channels() and model.config.provenance["pca"]["images"] == 16
    assert model.config.provenance["pca"]["data"].startswith("16 of the 16 training images of 'images.txt'")
    entry = res.manifest_entry["tiny-moco"]
    assert entry["sha256"] == res.sha256 and entry["architecture"] == "test_resnet"
    filled = {**entry, "repo_id": "org/tiny-moco", "revision": "a" * 40}
    assert parse_manifest({"format": 1, "models": {"tiny-moco": filled}})["tiny-moco"].published


def test_export_pca_images_and_moved_data(finished_run: Path, tmp_path: Path) -> None:
    """--pca-images 0 exports no PCA; the same images fitted again give the same PCA; a run whose images moved
    needs --data (a DatasetError that says so)."""
    assert hyperland.load(export_run(finished_run, tmp_path / "none", pca_images=0).directory).pca is None
    a = hyperland.load(export_run(finished_run, tmp_path / "a", pca_images=8).directory)
    b = hyperland.load(export_run(finished_run, tmp_path / "b", pca_images=8).directory)
    assert a.pca is not None and a.pca.key == b.pca.key and a.config.provenance["pca"]["images"] == 8
    with pytest.raises(DatasetError, match="pass --data PATH where they are now, or --pca-images 0"):
        export_run(finished_run, tmp_path / "c", data=tmp_path / "moved.txt")
    with pytest.raises(SystemExit):
        train_main(["export", str(finished_run), "--out", str(tmp_path / "d"), "--pca-images", "-1"])


def test_export_refuses_unfinished_runs_and_non_runs(mtfl_root: Path, tmp_path: Path) -> None:
    faces = image_list(mtfl_root, tmp_path, 16)
    Trainer(tiny_config(faces, epochs=2, max_steps=1), tmp_path / "run").fit()
    with pytest.raises(CheckpointError, match="has not finished \\(epoch 0/2, step 1\\)"):
        export_run(tmp_path / "run", tmp_path / "m")
    res = export_run(tmp_path / "run", tmp_path / "m", allow_unfinished=True)
    assert hyperland.load(res.directory).config.provenance["finished"] is False
    with pytest.raises(CheckpointError, match="No checkpoint"):
        export_run(tmp_path / "nothing", tmp_path / "m2")


def test_export_cli_prints_sha_and_entry(finished_run: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert train_main(["export", str(finished_run), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    sha = hashlib.sha256((tmp_path / "m" / "model.safetensors").read_bytes()).hexdigest()
    assert f"sha256 model.safetensors: {sha}" in out
    entry = json.loads(out[out.index("{"):])
    assert entry["run"]["sha256"] == sha and entry["run"]["recipe"] == "tiny-test"
    assert train_main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2


def test_export_push_to_hub_pins_the_commit(finished_run: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads are faked at huggingface_hub's upload API boundary, as in test_hub.py."""
    import huggingface_hub

    uploaded: dict = {}
    commit = "0123456789abcdef0123456789abcdef01234567"

    def create_repo(self, repo_id, **kw):
        uploaded["create"] = (repo_id, kw)

    def upload_folder(self, *, folder_path, repo_id, **kw):
        uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        return type("CommitInfo", (), {"commit_url": f"https://hub/{repo_id}/commit/{commit}"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    res = export_run(finished_run, tmp_path / "m", name="tiny", push_to_hub="me/tiny", private=True)
    assert uploaded["create"] == ("me/tiny", {"private": True, "exist_ok": True})
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors"]
    entry = res.manifest_entry["tiny"]
    assert (entry["repo_id"], entry["revision"], res.commit_url) == ("me/tiny", commit,
                                                                     f"https://hub/me/tiny/commit/{commit}")
    assert parse_manifest({"format": 1, "models": res.manifest_entry})["tiny"].sha256 == res.sha256


@pytest.mark.parametrize("recipe, changes, name", [
    ("mtfl-r18-dense", {}, "dense equivariant"),
    ("mtfl-r18", {}, "MoCo"),
    ("mtfl-r18", {"dense_weight": 0.5}, "MoCo + dense equivariant"),
])
def test_card_and_manifest_entry_name_the_trained_objective(recipe: str, changes: dict, name: str) -> None:
    """The model card and the manifest entry of an export describe the losses the config trained (a dense-only
    run used to be called "MoCo resnet18")."""
    from hyperland.config import ModelConfig
    from hyperland.modelcard import model_card
    from hyperland.train.config import load_recipe
    from hyperland.train.export import _manifest_entry

    cfg = load_recipe(recipe).override(**changes)
    card = model_card(ModelConfig("resnet18", recipe=cfg.recipe, provenance={"train_config": cfg.to_dict()}))
    training = card[card.index("## Training"):].split("\n")[1]
    assert training.startswith(f"Recipe `{recipe}`. Objective: {name} — ")
    assert ("MoCo v2" in training) == (cfg.moco_weight > 0)
    assert ("dense equivariant InfoNCE" in training and "layers [1, 2, 3] through a learned 64-d" in training) == \
        (cfg.dense_weight > 0)
    if changes:
        assert "weight 1 + the dense equivariant InfoNCE" in training and training.endswith("weight 0.5.")
    else:
        assert training.endswith("alone, no MoCo term." if name != "MoCo" else "alone, no dense term.")
    entry = _manifest_entry("m", cfg, "data", "0" * 64, license_="MIT", repo_id=None, revision=None)["m"]
    assert entry["description"].startswith(f"{name} resnet18 ({recipe}), {cfg.epochs} epochs, 96 px input")
