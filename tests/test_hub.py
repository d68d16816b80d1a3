"""Hub downloads through the real huggingface_hub client against a loopback server (tests/hubserver.py)."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch

import hyperland
from hyperland.errors import ChecksumMismatchError, ModelNotFoundError, OfflineModeError
from hyperland.hub import sha256_file
from hyperland.manifest import parse_manifest

REPO = "hyperland-test/tiny-r18"


@pytest.fixture(scope="module")
def two_models(r18, tmp_path_factory):
    """Two model directories with different weights: (dir_a, fingerprint_a, dir_b, fingerprint_b)."""
    root = tmp_path_factory.mktemp("models")
    a = r18.save_pretrained(root / "a")
    b_model = hyperland.load(a)
    with torch.no_grad():
        b_model.backbone.conv1.weight.mul_(2.0)
    b_model._fingerprint = None
    b = b_model.save_pretrained(root / "b")
    return a, r18.fingerprint, b, b_model.fingerprint


def _manifest(commit: str, sha: str, repo: str = REPO):
    return parse_manifest({"format": 1, "models": {"tiny-r18": {
        "status": "published", "architecture": "resnet18", "data": "none", "license": "MIT",
        "repo_id": repo, "revision": commit, "sha256": sha}}})


def test_manifest_name_downloads_and_verifies(hub, two_models, tmp_path):
    a, fp_a, _, _ = two_models
    commit = hub.publish(REPO, a)
    manifest = _manifest(commit, sha256_file(a / "model.safetensors"))
    model = hyperland.load("tiny-r18", manifest=manifest)
    assert model.fingerprint == fp_a and model.config.name == "tiny-r18"
    assert hub.count("HEAD", "/resolve/") == 2 and hub.count("GET", "/lfs/") == 1  # config + weights via the CDN
    cached = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{REPO.replace('/', '--')}" / "snapshots"
    assert (cached / commit / "model.safetensors").is_file()
    # a second load is served from the cache: the pinned commit needs no request at all
    before = len(hub.requests)
    assert hyperland.load("tiny-r18", manifest=manifest).fingerprint == fp_a
    assert len(hub.requests) == before


@pytest.mark.parametrize("lie_about_etag", [False, True])
def test_checksum_mismatch_names_file_and_hashes_and_evicts(hub, two_models, tmp_path, lie_about_etag):
    a, fp_a, _, _ = two_models
    commit = hub.publish(REPO, a)
    good = sha256_file(a / "model.safetensors")
    manifest = _manifest(commit, good)
    bad = (a / "model.safetensors").read_bytes()[:-8] + b"\0" * 8
    hub.overrides[(REPO, commit, "model.safetensors")] = bad
    hub.lie_about_etag = lie_about_etag  # True: a mirror serving other bytes under the right ETag
    import hashlib

    actual = hashlib.sha256(bad).hexdigest()
    cache = tmp_path / "cache"
    for _ in range(2):  # the bad file is not served from the cache: the second try downloads (and fails) again
        with pytest.raises(ChecksumMismatchError) as info:
            hyperland.load("tiny-r18", manifest=manifest, cache_dir=cache)
        msg = str(info.value)
        assert "model.safetensors" in msg and f"expected {good}" in msg and f"got {actual}" in msg
    assert hub.count("GET", "/lfs/") == 2
    blobs = list((cache / f"models--{REPO.replace('/', '--')}" / "blobs").iterdir())
    assert all(sha256_file(b) != actual for b in blobs)
    del hub.overrides[(REPO, commit, "model.safetensors")]  # the server is fixed
    assert hyperland.load("tiny-r18", manifest=manifest, cache_dir=cache).fingerprint == fp_a


def test_offline_cache_hit_and_miss(hub, two_models, tmp_path, monkeypatch):
    a, fp_a, _, _ = two_models
    commit = hub.publish(REPO, a)
    manifest = _manifest(commit, sha256_file(a / "model.safetensors"))
    cache = tmp_path / "cache"
    with pytest.raises(OfflineModeError) as info:  # empty cache, offline by argument
        hyperland.load("tiny-r18", manifest=manifest, cache_dir=cache, local_files_only=True)
    msg = str(info.value)
    assert "not in the local cache" in msg and "unset HF_HUB_OFFLINE" in msg and "cache_dir=" in msg
    assert not hub.requests
    hyperland.load("tiny-r18", manifest=manifest, cache_dir=cache)  # online: fills the cache
    hyperland.load(f"hf-hub:{REPO}", cache_dir=cache)  # and records refs/main
    hub.stop()
    n = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at call time, after huggingface_hub was imported
    assert hyperland.load("tiny-r18", manifest=manifest, cache_dir=cache).fingerprint == fp_a
    assert hyperland.load(f"hf-hub:{REPO}", cache_dir=cache).fingerprint == fp_a  # main → cached commit
    assert hyperland.load(f"hf-hub:{REPO}@{commit}", cache_dir=cache).fingerprint == fp_a
    with pytest.raises(OfflineModeError, match="HF_HUB_OFFLINE=1"):
        hyperland.load(f"hf-hub:{REPO}@v2", cache_dir=cache)
    with pytest.raises(OfflineModeError):
        hyperland.load("tiny-r18", manifest=manifest, cache_dir=tmp_path / "other-cache")
    assert len(hub.requests) == n
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online again, but the server is gone and nothing is cached
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda s: None)  # skip the client's retry backoff
    with pytest.raises(ModelNotFoundError, match="Could not reach the Hub") as info:
        hyperland.load(f"hf-hub:{REPO}", cache_dir=tmp_path / "empty")
    assert not isinstance(info.value, OfflineModeError)


def test_revision_pinning(hub, two_models, tmp_path):
    a, fp_a, b, fp_b = two_models
    c1 = hub.publish(REPO, a, tags=("v1",))
    c2 = hub.publish(REPO, b)  # main moves to c2
    assert c1 != c2
    assert hyperland.load(f"hf-hub:{REPO}@{c1}").fingerprint == fp_a
    assert hyperland.load(f"hf-hub:{REPO}@v1").fingerprint == fp_a
    assert hyperland.load(f"hf-hub:{REPO}").fingerprint == fp_b
    assert hyperland.load(f"hf-hub:{REPO}@main").fingerprint == fp_b
    assert hyperland.load(f"hf-hub:{REPO}@{c2}").fingerprint == fp_b
    # a manifest pin on c1 keeps loading c1 although main moved
    assert hyperland.load("tiny-r18", manifest=_manifest(c1, sha256_file(a / "model.safetensors"))).fingerprint == fp_a
    # and a manifest whose hash is of the other revision's file fails loudly
    with pytest.raises(ChecksumMismatchError):
        hyperland.load("tiny-r18", manifest=_manifest(c2, sha256_file(a / "model.safetensors")))


def test_cache_dir_is_used(hub, two_models, tmp_path):
    a, fp_a, _, _ = two_models
    commit = hub.publish(REPO, a)
    cache = tmp_path / "explicit-cache"
    assert hyperland.load(f"hf-hub:{REPO}", cache_dir=cache).fingerprint == fp_a
    snap = cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit
    assert sorted(p.name for p in snap.iterdir()) == ["config.json", "model.safetensors"]
    assert (cache / f"models--{REPO.replace('/', '--')}" / "refs" / "main").read_text() == commit
    assert not (Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{REPO.replace('/', '--')}").exists()


def test_hub_errors_are_typed(hub, two_models):
    a, _, _, _ = two_models
    hub.publish(REPO, a)
    with pytest.raises(ModelNotFoundError, match="'nobody/nothing' not found"):
        hyperland.load("hf-hub:nobody/nothing")
    with pytest.raises(ModelNotFoundError, match="Revision 'nope' does not exist"):
        hyperland.load(f"hf-hub:{REPO}@nope")
    cfg_only = a.parent / "cfg-only"
    cfg_only.mkdir(exist_ok=True)
    (cfg_only / "config.json").write_text((a / "config.json").read_text())
    hub.publish("hyperland-test/cfg-only", cfg_only)
    with pytest.raises(ModelNotFoundError, match="'model.safetensors' not found in 'hyperland-test/cfg-only'"):
        hyperland.load("hf-hub:hyperland-test/cfg-only")


def test_push_to_hub_uploads_the_model_directory(r18, monkeypatch):
    """Uploads are tested at huggingface_hub's upload API boundary (the one allowed fake)."""
    calls: dict = {}

    def create_repo(self, repo_id, **kw):
        calls["create"] = (repo_id, kw)

    def upload_folder(self, *, folder_path, repo_id, **kw):
        folder = Path(folder_path)
        calls["files"] = {p.name: p.read_bytes() for p in folder.iterdir()}
        calls["upload"] = (repo_id, kw)
        return type("CommitInfo", (), {"commit_url": f"https://hub/{repo_id}/commit/abc"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    url = r18.push_to_hub("me/r18", private=True, commit_message="first")
    assert url == "https://hub/me/r18/commit/abc"
    assert calls["create"] == ("me/r18", {"private": True, "exist_ok": True})
    assert calls["upload"][0] == "me/r18" and calls["upload"][1]["commit_message"] == "first"
    assert sorted(calls["files"]) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads(calls["files"]["config.json"])["architecture"] == "resnet18"
    from safetensors.torch import load as load_bytes

    state = load_bytes(calls["files"]["model.safetensors"])
    assert torch.equal(state["conv1.weight"], r18.backbone.conv1.weight)


def test_offline_set_before_import_is_honoured(hub, two_models, tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 read by huggingface_hub at import time gives the same offline error."""
    a, _, _, _ = two_models
    hub.publish(REPO, a)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineModeError, match="not in the local cache"):
        hyperland.load(f"hf-hub:{REPO}", cache_dir=tmp_path / "c")
    assert not hub.requests
