"""`hyperland models` and `hyperland extract` (streamed safetensors output)."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from hyperland.cli import main
from hyperland.commands.extract import SafetensorsStreamWriter
from hyperland.errors import ShapeMismatchError


def test_models_lists_manifest(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("celeba-r50 "))
    assert "unpublished" in line and "resnet50" in line
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["random-r18"] == "builtin"


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "hyperland 0." in capsys.readouterr().out


@pytest.mark.parametrize("dtype, opts, kw", [
    ("float16", ["--layers", "2,3", "--size", "12,10"], {"layers": (2, 3), "size": (12, 10)}),
    ("float32", ["--normalize", "none"], {"normalize": None}),
])
def test_extract_streams_what_model_extract_returns(r18, aflw_images, tmp_path, capsys, dtype, opts, kw):
    images = [str(p) for p in aflw_images[:3]]
    out = tmp_path / "sub" / "feats.safetensors"
    rc = main(["extract", "--model", "random-r18", *images, "--out", str(out), "--dtype", dtype,
               "--batch-size", "2", "-q", *opts])
    assert rc == 0 and "wrote 3 hypercolumns" in capsys.readouterr().out
    expect = r18.extract(images, dtype=getattr(torch, dtype), batch_size=2, **kw)
    with safe_open(str(out), "pt") as f:
        assert list(f.keys()) == ["features"]
        got = f.get_tensor("features")
        meta = f.metadata()
        assert torch.equal(f.get_slice("features")[1:2], expect[1:2])
    assert got.dtype == expect.dtype and torch.equal(got, expect)
    assert json.loads(meta["images"]) == images
    assert meta["fingerprint"] == r18.fingerprint and meta["model"] == "random-r18"
    assert json.loads(meta["layers"]) == list(kw.get("layers", (1, 2, 3, 4)))
    assert json.loads(meta["size"]) == list(expect.shape[-2:])
    assert meta["normalize"] == ("none" if "normalize" in kw else "l2")
    assert torch.equal(load_file(str(out))["features"], expect)  # plain safetensors readers agree
    assert [p.name for p in out.parent.iterdir()] == ["feats.safetensors"]  # no temp file left


def test_extract_directory_argument(aflw_images, tmp_path, r18):
    d = tmp_path / "imgs"
    d.mkdir()
    for p in aflw_images[:2]:
        (d / p.name).write_bytes(p.read_bytes())
    (d / "notes.txt").write_text("not an image")
    out = tmp_path / "f.safetensors"
    assert main(["extract", str(d), "--out", str(out), "--size", "6", "-q"]) == 0
    with safe_open(str(out), "pt") as f:
        assert [p.rsplit("/", 1)[-1] for p in json.loads(f.metadata()["images"])] == [p.name for p in aflw_images[:2]]
        assert f.get_tensor("features").shape == (2, 960, 6, 6)


def test_extract_errors_leave_no_file(aflw_images, tmp_path, capsys):
    out = tmp_path / "f.safetensors"
    rc = main(["extract", str(aflw_images[0]), str(tmp_path / "missing.jpg"), "--out", str(out), "-q",
               "--batch-size", "1"])
    assert rc == 2 and "missing.jpg" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(["extract", str(aflw_images[0]), "--out", str(out), "--layers", "7", "-q"]) == 2
    assert "available feature indices" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["extract", str(aflw_images[0]), "--out", str(out), "--layers", "a,b"])
    assert "comma-separated integers" in capsys.readouterr().err
    assert main(["extract", "--model", "celeba-r50", str(aflw_images[0]), "--out", str(out)]) == 2
    assert "hyperland-train" in capsys.readouterr().err


def test_stream_writer_layout_by_hand(tmp_path):
    x = torch.arange(24, dtype=torch.float32).view(4, 2, 3)
    w = SafetensorsStreamWriter(tmp_path / "t.safetensors", "x", (4, 2, 3), torch.float32, {"k": "v"})
    w.write(x[:3])
    w.write(x[3:])
    w.close()
    raw = (tmp_path / "t.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and header["x"] == {"dtype": "F32", "shape": [4, 2, 3], "data_offsets": [0, 96]}
    assert header["__metadata__"] == {"k": "v"} and len(raw) == 8 + n + 96
    assert torch.equal(load_file(str(tmp_path / "t.safetensors"))["x"], x)
    short = SafetensorsStreamWriter(tmp_path / "s.safetensors", "x", (4, 2, 3), torch.float32)
    short.write(x[:1])
    with pytest.raises(ShapeMismatchError, match="wrote 1 of 4 rows"):
        short.close()
    assert not (tmp_path / "s.safetensors").exists() and len(list(tmp_path.iterdir())) == 1
