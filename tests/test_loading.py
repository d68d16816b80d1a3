"""hyperland.load(): builtin, timm:, local model directories, unknown/unpublished names, strict weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file, save_file

import hyperland
from hyperland.backbone import create_backbone, load_weights
from hyperland.errors import (
    ChecksumMismatchError,
    ManifestError,
    ModelNotFoundError,
    WeightsMismatchError,
    WeightsNotPublishedError,
)
from hyperland.manifest import parse_manifest


@pytest.fixture(scope="module")
def saved(r18, tmp_path_factory) -> Path:
    return r18.save_pretrained(tmp_path_factory.mktemp("model") / "r18")


def test_builtin_is_seeded_and_reproducible(r18):
    again = hyperland.load("random-r18")
    x = torch.rand(1, 3, 40, 40)
    torch.testing.assert_close(again.extract(x), r18.extract(x), rtol=0, atol=0)
    assert r18.config.name == "random-r18" and r18.config.provenance["seed"] == 0
    state = torch.get_rng_state()
    hyperland.load("random-r18")
    assert torch.equal(state, torch.get_rng_state())  # loading does not consume the caller's RNG


def test_builtin_seed_from_manifest(r18):
    raw = {"format": 1, "models": {"r18-seed7": {"status": "builtin", "architecture": "resnet18", "data": "none",
                                                  "license": "MIT", "seed": 7}}}
    other = hyperland.load("r18-seed7", manifest=parse_manifest(raw))
    assert other.fingerprint != r18.fingerprint


def test_list_models():
    models = hyperland.list_models()
    assert models["random-r18"] == "builtin" and models["celeba-r50"] == "unpublished"
    assert list(models) == sorted(models)


def test_save_pretrained_round_trip(r18, saved):
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["architecture"] == "resnet18" and cfg["out_indices"] == [1, 2, 3, 4] and cfg["format"] == 1
    assert "library_name: hyperland" in (saved / "README.md").read_text()
    keys = set(load_file(str(saved / "model.safetensors")))
    sha = hashlib.sha256((saved / "model.safetensors").read_bytes()).hexdigest()
    assert cfg["weights_sha256"] == sha
    assert keys == set(r18.backbone.state_dict()) and "conv1.weight" in keys  # timm key names
    for src in (str(saved), saved):  # str and os.PathLike
        back = hyperland.load(src)
        assert back.fingerprint == r18.fingerprint and back.config == replace(r18.config, weights_sha256=sha)
        x = torch.rand(2, 3, 50, 60)
        torch.testing.assert_close(back.extract(x), r18.extract(x), rtol=0, atol=0)
        pts = torch.tensor([[[3.0, 4.0], [25.5, 30.0]]] * 2)
        torch.testing.assert_close(back.sample(x, pts), r18.sample(x, pts), rtol=0, atol=0)


def test_overrides_and_device(saved):
    m = hyperland.load(saved, resize=112, border=8, device="cpu")
    assert m.config.input_size == 96 and m.config.resize == 112 and m.device.type == "cpu"


def test_timm_source():
    m = hyperland.load("timm:resnet18")
    assert m.config.architecture == "resnet18" and m.layers == (1, 2, 3, 4)
    assert [d["index"] for d in m.feature_info] == [0, 1, 2, 3, 4]  # timm's own indices, stride-2 stem included
    assert m.extract(torch.rand(3, 40, 40)).shape == (960, 24, 24)
    assert m.extract(torch.rand(3, 40, 40), layers=(0,)).shape == (64, 48, 48)


def test_timm_unknown_and_tagged_offline(monkeypatch):
    with pytest.raises(ModelNotFoundError, match="timm has no architecture 'resnet999'"):
        hyperland.load("timm:resnet999")
    with pytest.raises(ModelNotFoundError, match="needs an architecture"):
        hyperland.load("timm:")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="could not fetch pretrained weights for 'resnet18.a1_in1k'"):
        hyperland.load("timm:resnet18.a1_in1k")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelNotFoundError, match=r"Unknown model 'random-r5'\. Did you mean 'random-r50'"):
        hyperland.load("random-r5")
    with pytest.raises(ModelNotFoundError, match="Did you mean 'celeba-r50'"):
        hyperland.load("celeb-r50")
    with pytest.raises(ModelNotFoundError, match="Known names: .*random-r18"):
        hyperland.load("zzz")
    with pytest.raises(ModelNotFoundError, match="empty"):
        hyperland.load("  ")


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:justname", "hf-hub:a/b/c", "hf-hub:/x"])
def test_bad_hub_references(name):
    with pytest.raises(ModelNotFoundError, match="hf-hub:org/name"):
        hyperland.load(name)


@pytest.mark.parametrize("name", ["celeba-r18", "celeba-r50", "celeba-wild-r50", "inat-aves-r18", "inat-aves-r50"])
def test_unpublished_names_say_how_to_reproduce(name):
    with pytest.raises(WeightsNotPublishedError) as info:
        hyperland.load(name)
    msg = str(info.value)
    assert "not published" in msg and "hyperland-train --recipe" in msg and "hyperland convert" in msg
    assert f"hyperland.load('models/{name}')" in msg
    assert isinstance(info.value, ModelNotFoundError)  # callers catching "not found" still catch it


def test_missing_directory_and_missing_files(tmp_path, saved):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        hyperland.load(str(tmp_path / "nope" / "model"))
    d = tmp_path / "partial"
    d.mkdir()
    (d / "config.json").write_text((saved / "config.json").read_text())
    with pytest.raises(ModelNotFoundError, match="model.safetensors missing"):
        hyperland.load(d)


def _copy_dir(src: Path, dst: Path, *, config=None, state=None) -> Path:
    dst.mkdir()
    cfg = json.loads((src / "config.json").read_text())
    cfg.pop("weights_sha256")  # a hand-edited folder: its weights no longer match the recorded checksum
    cfg.update(config or {})
    (dst / "config.json").write_text(json.dumps(cfg))
    tensors = load_file(str(src / "model.safetensors"))
    if state is not None:
        tensors = state(tensors)
    save_file(tensors, str(dst / "model.safetensors"))
    return dst


def test_mismatched_weights_are_strict(tmp_path, saved):
    with pytest.raises(WeightsMismatchError, match="missing.*unexpected|missing"):
        hyperland.load(_copy_dir(saved, tmp_path / "arch", config={"architecture": "resnet34"}))
    extra = _copy_dir(saved, tmp_path / "extra", state=lambda t: t | {"fc.weight": torch.zeros(10, 512)})
    with pytest.raises(WeightsMismatchError, match=r"1 unexpected \(e\.g\. \['fc\.weight'\]\)"):
        hyperland.load(extra)
    missing = _copy_dir(saved, tmp_path / "missing", state=lambda t: {k: v for k, v in t.items() if k != "bn1.bias"})
    with pytest.raises(WeightsMismatchError, match=r"1 missing \(e\.g\. \['bn1\.bias'\]\)"):
        hyperland.load(missing)
    shape = _copy_dir(saved, tmp_path / "shape", state=lambda t: t | {"conv1.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(WeightsMismatchError, match=r"conv1\.weight: file \(64, 3, 3, 3\) vs model \(64, 3, 7, 7\)"):
        hyperland.load(shape)


def test_explicit_drop_filter(tmp_path, saved, r18):
    path = tmp_path / "with_head.safetensors"
    save_file(load_file(str(saved / "model.safetensors")) | {"head.fc.weight": torch.zeros(2, 2)}, str(path))
    backbone = create_backbone(r18.config, seed=123)
    load_weights(backbone, path, drop=("head.",))
    assert torch.equal(backbone.conv1.weight, r18.backbone.conv1.weight)


def test_corrupt_weights_file(tmp_path, saved):
    d = _copy_dir(saved, tmp_path / "corrupt")
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsMismatchError, match="Cannot read weights file"):
        hyperland.load(d)


def _flip_bit(path: Path, offset_from_end: int) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x40
    path.write_bytes(bytes(data))


def test_bit_flipped_folder_is_refused_naming_the_file(tmp_path, saved, r18, monkeypatch, capsys):
    d = tmp_path / "copy"
    shutil.copytree(saved, d)
    _flip_bit(d / "model.safetensors", 1000)  # inside the tensor data: the file still parses
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors' is not the file that was saved.*"
                                                    r"HYPERLAND_SKIP_CHECKSUMS=1"):
        hyperland.load(d)
    from hyperland.cli import main

    img = min((Path(hyperland.__file__).parent / "assets" / "faces").glob("*.jpg"))
    assert main(["extract", "--model", str(d), str(img), "--out", str(tmp_path / "f.st"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not the file that was saved" in err and "Traceback" not in err
    monkeypatch.setenv("HYPERLAND_SKIP_CHECKSUMS", "1")  # a folder edited on purpose
    assert hyperland.load(d).fingerprint != r18.fingerprint  # loads, and really is different
    monkeypatch.delenv("HYPERLAND_SKIP_CHECKSUMS")
    cfg = json.loads((d / "config.json").read_text())
    del cfg["weights_sha256"]  # or: drop the recorded checksum (and folders saved before it was recorded)
    (d / "config.json").write_text(json.dumps(cfg))
    assert hyperland.load(d).fingerprint != r18.fingerprint


def test_non_finite_weights_are_refused(tmp_path, saved, monkeypatch):
    nan = _copy_dir(saved, tmp_path / "nan", state=lambda t: t | {"bn1.weight": t["bn1.weight"].clone().fill_(float("nan"))})
    monkeypatch.setenv("HYPERLAND_SKIP_CHECKSUMS", "1")  # not a checksum question: refused whatever
    with pytest.raises(WeightsMismatchError, match=r"1 weight tensor\(s\) hold NaN or inf values \(e\.g\. \['bn1\.weight'\]\)"):
        hyperland.load(nan)


def test_recorded_checksum_must_look_like_one(tmp_path, saved):
    d = _copy_dir(saved, tmp_path / "bad", config={"weights_sha256": "abc"})
    with pytest.raises(ManifestError, match="'weights_sha256' 'abc' is not 64 lower-case hex digits"):
        hyperland.load(d)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"out_indices": [1]}), "missing 'architecture'"),
        (json.dumps({"architecture": "resnet18", "colour": 1}), r"unknown keys \['colour'\]"),
        (json.dumps({"architecture": "resnet18", "format": 2}), "config format 2"),
        (json.dumps({"architecture": "resnet18", "layers": [5]}), "not all in 'out_indices'"),
        (json.dumps({"architecture": "resnet18", "resize": 40, "border": 20}), "fewer than 8 input pixels"),
    ],
)
def test_invalid_config_json(tmp_path, saved, text, pattern):
    d = _copy_dir(saved, tmp_path / "cfg")
    (d / "config.json").write_text(text)
    with pytest.raises(ManifestError, match=pattern):
        hyperland.load(d)


def test_vit_round_trip_uses_timm_key_names(tmp_path):
    import timm

    vit = hyperland.load("timm:vit_tiny_patch16_224")
    d = vit.save_pretrained(tmp_path / "vit")
    keys = set(load_file(str(d / "model.safetensors")))
    assert "cls_token" in keys and not any(k.startswith("model.") for k in keys)
    back = hyperland.load(d)
    assert back.fingerprint == vit.fingerprint
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(back.extract(x), vit.extract(x), rtol=0, atol=0)
    # a plain timm ViT checkpoint loads once its pruned final norm/head are dropped explicitly
    plain = timm.create_model("vit_tiny_patch16_224", img_size=96)
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(path))
    backbone = create_backbone(back.config, seed=None)
    with pytest.raises(WeightsMismatchError, match="unexpected"):
        load_weights(backbone, path)
    load_weights(backbone, path, drop=("norm.", "head."))
    torch.testing.assert_close(backbone.model.cls_token, plain.cls_token)
