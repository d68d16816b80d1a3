"""The embedded default model: shipped in the package, pinned by the manifest's sha256, interchangeable with the
Hub copy (same file, same check), loaded offline by ``hyperland.load()``; and reduced-precision saving."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from safetensors import safe_open

import hyperland
import hyperland.assets
from hyperland.errors import InvalidOptionError, ManifestError, OfflineModeError
from hyperland.hub import sha256_file
from hyperland.loading import DEFAULT_MODEL
from hyperland.manifest import load_manifest, parse_manifest

ENTRY = load_manifest()[DEFAULT_MODEL]
EMBEDDED = hyperland.assets.embedded_dir(ENTRY.embedded or "")


def test_default_is_the_embedded_dense_model_and_the_file_matches_the_manifest():
    assert DEFAULT_MODEL == "mtfl-dense-r18"
    assert ENTRY.status == "embedded" and ENTRY.published
    assert ENTRY.repo_id == "hyperland/mtfl-dense-r18" and ENTRY.embedded == "models/mtfl-dense-r18"
    weights = EMBEDDED / ENTRY.filename
    assert sha256_file(weights) == ENTRY.sha256
    assert weights.stat().st_size <= 25 * 1024 * 1024
    assert (EMBEDDED / "config.json").is_file() and "mtfl-dense-r18" in (EMBEDDED / "README.md").read_text()
    with safe_open(str(weights), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 (safe_open, not a dict)
        assert f.metadata() == {"format": "pt"}  # one key: byte-identical files from every export
    assert "F16" in dtypes and "F32" not in dtypes


def test_load_without_arguments_is_offline_and_casts_to_float32(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: any request would fail
    model = hyperland.load(cache_dir=tmp_path / "empty-cache")
    assert model.name == "mtfl-dense-r18" and model.config.architecture == "resnet18"
    assert not (tmp_path / "empty-cache").exists()
    with safe_open(str(EMBEDDED / ENTRY.filename), "pt") as f:
        ref = f.get_tensor("conv1.weight")
    w = model.backbone.state_dict()["conv1.weight"]
    assert w.dtype == torch.float32 and torch.equal(w, ref.float())
    feats = model.extract(hyperland.assets.faces_dir() / "0001-image20056.jpg")
    assert feats.shape == (960, 24, 24) and bool(torch.isfinite(feats).all())


def _copy_embedded(tmp_path, monkeypatch):
    root = tmp_path / "assets"
    shutil.copytree(EMBEDDED, root / ENTRY.embedded)
    monkeypatch.setattr(hyperland.assets, "ROOT", root)
    return root / ENTRY.embedded


def test_hub_copy_stands_in_for_a_missing_embedded_copy(hub, tmp_path, monkeypatch, caplog):
    fingerprint = hyperland.load().fingerprint
    hub.publish(ENTRY.repo_id, EMBEDDED)
    monkeypatch.setattr(hyperland.assets, "ROOT", tmp_path / "stripped-install")
    with caplog.at_level(logging.WARNING, logger="hyperland.loading"):
        model = hyperland.load()
    assert model.fingerprint == fingerprint  # the same file, verified by the same sha256
    assert "missing from this install" in caplog.text
    assert hub.count("GET", "/lfs/") == 1


def test_damaged_embedded_copy_is_never_used(hub, tmp_path, monkeypatch, caplog):
    fingerprint = hyperland.load().fingerprint
    local = _copy_embedded(tmp_path, monkeypatch)
    data = bytearray((local / ENTRY.filename).read_bytes())
    data[-1] ^= 0xFF  # one flipped bit pattern in the last weight
    (local / ENTRY.filename).write_bytes(bytes(data))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineModeError) as info:
        hyperland.load()
    msg = str(info.value)
    assert "is damaged" in msg and ENTRY.sha256[:12] in msg and "--force-reinstall" in msg
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.publish(ENTRY.repo_id, EMBEDDED)
    with caplog.at_level(logging.WARNING, logger="hyperland.loading"):
        assert hyperland.load().fingerprint == fingerprint
    assert "is damaged" in caplog.text


def test_manifest_rules_for_embedded_entries():
    base = {"status": "embedded", "architecture": "resnet18", "data": "d", "license": "MIT",
            "repo_id": "org/m", "sha256": "0" * 64, "embedded": "models/m"}
    entry = parse_manifest({"format": 1, "models": {"m": base}})["m"]
    assert entry.revision is None and entry.published  # the sha256 pins the content
    for bad, match in [({"embedded": None}, "goes with status 'embedded'"),
                       ({"embedded": "../../etc"}, "relative folder under hyperland/assets"),
                       ({"embedded": "/abs/path"}, "relative folder under hyperland/assets"),
                       ({"sha256": None}, "'sha256' must be 64 lower-case hex"),
                       ({"revision": "main"}, "'revision' must be a 40-hex commit")]:
        with pytest.raises(ManifestError, match=match):
            parse_manifest({"format": 1, "models": {"m": {**base, **bad}}})
    with pytest.raises(ManifestError, match="goes with status 'embedded'"):
        parse_manifest({"format": 1, "models": {"m": {**base, "status": "published", "revision": "a" * 40}}})


def test_save_pretrained_float16_round_trip(r18, tmp_path):
    d = r18.save_pretrained(tmp_path / "half", dtype="float16")
    with safe_open(str(d / "model.safetensors"), "pt") as f:
        assert f.get_tensor("conv1.weight").dtype == torch.float16
        assert f.get_tensor("bn1.num_batches_tracked").dtype == torch.int64  # integers keep their type
    assert "float16" in (d / "README.md").read_text()
    half = hyperland.load(d)
    expected = r18.backbone.state_dict()["layer1.0.conv1.weight"].half().float()
    assert torch.equal(half.backbone.state_dict()["layer1.0.conv1.weight"], expected)
    full = r18.save_pretrained(tmp_path / "full") / "model.safetensors"
    assert (d / "model.safetensors").stat().st_size < 0.55 * full.stat().st_size
    with pytest.raises(InvalidOptionError, match="expected one of"):
        r18.save_pretrained(tmp_path / "x", dtype="int8")


def test_save_pretrained_refuses_weights_that_overflow_float16(tmp_path):
    model = hyperland.load("random-r18")
    with torch.no_grad():
        model.backbone.conv1.weight[0, 0, 0, 0] = 1e6  # beyond float16's 65504
    with pytest.raises(InvalidOptionError, match="not finite in float16"):
        model.save_pretrained(tmp_path / "bad", dtype="float16")
    assert not (tmp_path / "bad" / "model.safetensors").exists()
    model.save_pretrained(tmp_path / "ok", dtype="bfloat16")  # bfloat16 has float32's range


def test_repair_advice_fits_the_kind_of_install(tmp_path):
    from hyperland.assets import ROOT, repair_advice

    shipped = ROOT / ENTRY.embedded / ENTRY.filename  # this checkout: an editable install under git
    advice = repair_advice(shipped)
    assert "git -C" in advice and "checkout -- hyperland/assets/models/mtfl-dense-r18/model.safetensors" in advice
    assert repair_advice(tmp_path / "site-packages" / "hyperland" / "x.safetensors") == \
        "reinstall hyperland: `pip install --force-reinstall hyperland`"
