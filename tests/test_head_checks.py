"""Saved heads are checked on load: recorded sha256, finite tensors, a well-formed head.json; hyperparameters are
checked when a head is made (issue 12, items 4 and 5)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from hyperland.cli import main
from hyperland.data import load_samples, read_csv
from hyperland.errors import ChecksumMismatchError, InvalidOptionError, WeightsMismatchError
from hyperland.head import LandmarkHead

FACES = Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces"


@pytest.fixture(scope="module")
def saved(r18, tmp_path_factory) -> Path:
    imgs, pts = load_samples(read_csv(FACES / "train.csv")[:6])
    head = LandmarkHead(5, method="prototype", n_components=8, random_state=0, progress=False).fit(r18, imgs, pts)
    d = tmp_path_factory.mktemp("head") / "h"
    head.save(d)
    return d


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in ("head.json", "head.safetensors"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def _edit(d: Path, **changes) -> Path:
    cfg = json.loads((d / "head.json").read_text())
    for k, v in changes.items():
        if v is ...:
            cfg.pop(k)
        else:
            cfg[k] = v
    (d / "head.json").write_text(json.dumps(cfg))
    return d


def test_head_json_records_the_weights_sha256(saved):
    cfg = json.loads((saved / "head.json").read_text())
    assert cfg["weights_sha256"] == hashlib.sha256((saved / "head.safetensors").read_bytes()).hexdigest()


def test_flipped_head_weights_are_refused(r18, saved, tmp_path, monkeypatch):
    d = _copy(saved, tmp_path / "h")
    data = bytearray((d / "head.safetensors").read_bytes())
    data[-20] ^= 0x01  # inside the tensor data: the file still parses, a weight is slightly off
    (d / "head.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match=r"head\.safetensors' is not the file that was saved.*head\.json"):
        LandmarkHead.load(d, model=r18)
    monkeypatch.setenv("HYPERLAND_SKIP_CHECKSUMS", "1")
    assert LandmarkHead.load(d, model=r18).n_landmarks == 5


def test_nan_head_weights_are_refused_even_with_a_matching_checksum(r18, saved, tmp_path):
    d = _copy(saved, tmp_path / "h")
    t = load_file(str(d / "head.safetensors"))
    t["prototypes"][0, 0] = float("nan")
    save_file(t, str(d / "head.safetensors"))
    _edit(d, weights_sha256=hashlib.sha256((d / "head.safetensors").read_bytes()).hexdigest())
    with pytest.raises(WeightsMismatchError, match=r"1 weight tensor\(s\) hold NaN or inf values \(e\.g\. \['prototypes'\]\)"):
        LandmarkHead.load(d, model=r18)


def test_head_without_a_recorded_checksum_still_loads(r18, saved, tmp_path):
    d = _edit(_copy(saved, tmp_path / "h"), weights_sha256=...)  # saved before checksums were recorded
    pred = LandmarkHead.load(d, model=r18).predict(torch.rand(3, 40, 40))
    assert pred.shape == (1, 5, 2) and np.isfinite(pred).all()


@pytest.mark.parametrize("change, match", [
    ({"grid": ...}, r"missing key 'grid' \(\[H, W\]\)"),
    ({"n_features_in": "8"}, r"'n_features_in' is '8'; expected an integer >= 1"),
    ({"layers": "1,2"}, r"'layers' is '1,2'; expected a list of feature indices"),
    ({"params": {"n_landmarks": 0, "method": "prototype"}}, r"params: n_landmarks=0\. Expected an integer >= 1"),
    ({"params": {"n_landmarks": 5, "stpes": 1}}, r"params: unknown option\(s\) \['stpes'\]"),
    ({"params": {"n_landmarks": 5, "scale": "big"}}, r"params: scale='big'\. Expected two numbers"),
    ({"format": 7}, r"head format 7; this hyperland reads formats \(1, 2, 3\)"),
    ({"landmarks": ["a"]}, r"'landmarks' is \['a'\]; expected null or 5 landmark names"),
])
def test_edited_head_json_is_a_clear_error(r18, saved, tmp_path, capsys, change, match):
    d = _edit(_copy(saved, tmp_path / "h"), **change)
    with pytest.raises(WeightsMismatchError, match=match):
        LandmarkHead.load(d, model=r18)
    assert main(["predict", "--head", str(d), "--model", "random-r18", str(min(FACES.glob("*.jpg")))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperland predict: error: ") and err.count("\n") == 1


def test_head_json_that_is_not_an_object(r18, saved, tmp_path):
    d = _copy(saved, tmp_path / "h")
    (d / "head.json").write_text("[1, 2]")
    with pytest.raises(WeightsMismatchError, match="expected a JSON object, got list"):
        LandmarkHead.load(d, model=r18)


@pytest.mark.parametrize("args, kwargs, match", [
    ((0,), {}, r"n_landmarks=0\. Expected an integer >= 1"),
    ((5,), {"method": "svm"}, r"method='svm'\. Expected one of \['ridge', 'regressor', 'prototype'\]"),
    ((5,), {"steps": -1}, r"steps=-1\. Expected null or an integer >= 1"),
    ((5,), {"lr": float("nan")}, r"lr=nan\. Expected a number > 0"),
    ((5,), {"val_fraction": 1.0}, r"val_fraction=1\.0\. Expected a number in \[0, 1\)"),
    ((5,), {"scale": (1.2, 0.8)}, r"scale=\(1\.2, 0\.8\)\. Expected two numbers 0 < low <= high"),
])
def test_bad_hyperparameters_fail_when_the_head_is_made(args, kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        LandmarkHead(*args, **kwargs)
