"""weights_manifest.json: the shipped manifest and validation of bad ones."""

from __future__ import annotations

import copy
import json
import re

import pytest

from hyperland.errors import ManifestError
from hyperland.manifest import load_manifest, parse_manifest

SHA = "ab" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GOOD = {
    "format": 1,
    "models": {
        "tiny": {"status": "published", "architecture": "resnet18", "data": "MTFL", "license": "MIT",
                 "repo_id": "org/tiny", "revision": COMMIT, "sha256": SHA, "recipe": "mtfl-r18"},
        "rnd": {"status": "builtin", "architecture": "resnet18", "data": "none", "license": "MIT", "seed": 3},
        "todo": {"status": "unpublished", "architecture": "resnet50", "data": "CelebA faces", "license": "MIT",
                 "recipe": "celeba-r50"},
    },
}


def test_shipped_manifest_lists_paper_models_and_builtins():
    entries = load_manifest()
    statuses = {n: e.status for n, e in entries.items()}
    assert statuses["random-r18"] == statuses["random-r50"] == "builtin"
    for name in ("celeba-r18", "celeba-r50", "celeba-wild-r50", "inat-aves-r18", "inat-aves-r50"):
        e = entries[name]
        assert e.status == "unpublished" and e.recipe and e.paper and "2006.14787" in e.paper
        assert e.architecture in ("resnet18", "resnet50")
    for e in entries.values():
        if e.status == "published":
            assert re.fullmatch(r"[0-9a-f]{64}", e.sha256 or "") and re.fullmatch(r"[0-9a-f]{40}", e.revision or "")
        if e.status == "embedded":  # content pinned by sha256; the Hub copy may follow its default branch
            assert re.fullmatch(r"[0-9a-f]{64}", e.sha256 or "") and e.embedded and e.repo_id


def test_parse_good_manifest():
    entries = parse_manifest(GOOD)
    assert set(entries) == {"tiny", "rnd", "todo"}
    assert entries["tiny"].published and entries["tiny"].filename == "model.safetensors"
    assert entries["rnd"].seed == 3 and not entries["rnd"].published
    how = entries["todo"].how_to_get()
    assert "hyperland-train --recipe celeba-r50" in how and "hyperland convert" in how


def test_load_manifest_from_path(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps(GOOD))
    assert set(load_manifest(p)) == {"tiny", "rnd", "todo"}
    p.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(p)


def _bad(path: tuple[str, ...], value, delete: bool = False):
    raw = copy.deepcopy(GOOD)
    node = raw
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "raw, pattern",
    [
        ([], "expected an object with a 'models'"),
        ({"format": 1}, "expected an object with a 'models'"),
        (_bad(("format",), 2), "unknown manifest format 2"),
        (_bad(("models", "tiny"), "x"), "is a str"),
        (_bad(("models", "tiny", "colour"), "red"), r"unknown fields \['colour'\]"),
        (_bad(("models", "tiny", "name"), "other"), "must agree"),
        (_bad(("models", "Bad Name"), GOOD["models"]["rnd"] | {"name": "Bad Name"}), "lower-case"),
        (_bad(("models", "rnd", "license"), None, delete=True), "'license'"),
        (_bad(("models", "rnd", "status"), "beta"), "status 'beta'"),
        (_bad(("models", "tiny", "sha256"), "abc"), "'sha256' must be 64"),
        (_bad(("models", "tiny", "sha256"), SHA.upper()), "'sha256' must be 64"),
        (_bad(("models", "tiny", "revision"), "main"), "'revision' must be a 40-hex commit"),
        (_bad(("models", "tiny", "repo_id"), "no-slash"), "'repo_id' must be org/name"),
        (_bad(("models", "rnd", "seed"), None, delete=True), "integer 'seed'"),
        (_bad(("models", "rnd", "metrics"), [1]), "'metrics' must be an object"),
    ],
)
def test_invalid_manifests(raw, pattern):
    with pytest.raises(ManifestError, match=pattern):
        parse_manifest(raw)
