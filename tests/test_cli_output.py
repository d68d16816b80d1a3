"""Every CLI output goes through the atomic writer, and every argument is checked before heavy work
(issue 12, item 3)."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest

from hyperland.cli import main

FACES = Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces"


@pytest.mark.parametrize("argv, match", [
    (["--out", "{blocker}"], "--out .*this is a file; expected a folder"),
    (["--methods", "ridge,svm"], r"--methods ridge,svm: unknown \['svm'\]"),
    (["--head-options", '{"stpes": 3}'], r"--head-options: unknown option\(s\) \['stpes'\]"),
    (["--head-options", '{"steps": -3}'], "--head-options: steps=-3. Expected null or an integer >= 1"),
    (["--head-options", '{"layers": [4]}'], r"--head-options sets layers \(set by --layers\)"),
])
def test_eval_checks_every_argument_before_reading_data(tmp_path, capsys, argv, match):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    argv = [a.replace("{blocker}", str(blocker)) for a in argv]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "res")]
    # --root does not exist: the error must be about the argument, found before the dataset is read
    assert main(["eval", "--dataset", "mtfl", "--root", str(tmp_path / "no-data"), *out, *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert not (tmp_path / "res").exists()


def test_eval_prints_the_table_even_when_writing_fails(tmp_path, capsys, monkeypatch):
    import hyperland._io as io_mod

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full)
    code = main(["eval", "--dataset", "generic", "--root", str(FACES), "--shots", "1", "--seeds", "1",
                 "--methods", "prototype", "--limit-test", "3", "--out", str(tmp_path / "res"), "--name", "t", "-q"])
    cap = capsys.readouterr()
    assert code == 2 and "| prototype | 1,2,3,4 |" in cap.out
    assert "t.json': the disk is full" in cap.err
    assert sorted(os.listdir(tmp_path / "res")) == []  # no truncated file, no temporary file


def test_fit_checks_options_and_limit_before_loading(tmp_path, capsys):
    base = ["fit", "--train", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "head")]
    for extra, match in [(["--options", "{steps: 3}"], "--options is not valid JSON"),
                         (["--options", "[1]"], "--options must be a JSON object, got list"),
                         (["--options", '{"steps": 0}'], "--options: steps=0. Expected null or an integer >= 1"),
                         (["--options", '{"lr": "fast"}'], "--options: lr='fast'. Expected a number > 0"),
                         (["--options", '{"seed": 1}'], r"unknown option\(s\) \['seed'\]"),
                         (["--seed", "2", "--options", '{"random_state": 1}'], "--seed 2 and --options "
                          '\'{"random_state": 1}\' disagree'),
                         (["--method", "prototype", "--options", '{"method": "ridge"}'], "--method prototype and "
                          '--options \'{"method": "ridge"}\' disagree'),
                         (["--options", '{"steps": 30}'], r"does not read \['steps'\] \(used by method 'regressor'\)"),
                         (["--limit", "-2"], "--limit -2: expected 0 .* or a positive number")]:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert match in err or re.search(match, err), err
    assert not (tmp_path / "head").exists()


def test_predict_out_keeps_the_old_file_when_the_disk_is_full(tmp_path, capsys, monkeypatch):
    faces = sorted(FACES.glob("*.jpg"))[:2]
    head = tmp_path / "head"
    assert main(["fit", "--train", str(FACES / "train.csv"), "--limit", "4", "--method", "prototype",
                 "--model", "random-r18", "--out", str(head), "-q"]) == 0
    out = tmp_path / "pred.json"
    assert main(["predict", "--head", str(head), str(faces[0]), "--out", str(out), "-q"]) == 0
    old = out.read_text()
    assert len(json.loads(old)) == 1 and out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    import hyperland._io as io_mod

    monkeypatch.setattr(io_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    capsys.readouterr()
    assert main(["predict", "--head", str(head), *map(str, faces), "--out", str(out), "-q"]) == 2
    assert "pred.json': the disk is full" in capsys.readouterr().err
    assert out.read_text() == old and sorted(p.name for p in tmp_path.iterdir()) == ["head", "pred.json"]


def test_extract_writes_with_the_umasks_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "f.safetensors"
        assert main(["extract", "--model", "random-r18", str(min(FACES.glob("*.jpg"))), "--out", str(out),
                     "--size", "4", "-q"]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644

def test_extract_refuses_a_folder_as_out_before_loading(tmp_path, capsys):
    assert main(["extract", str(FACES / "x.jpg"), "--out", str(tmp_path), "-q"]) == 2
    assert f"--out {tmp_path}: this is a folder; expected a file path" in capsys.readouterr().err


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("argv, match", [
    (["eval", "--dataset", "generic", "--root", str(FACES), "--limit-pool", "-1"], "--limit-pool -1: expected a positive"),
    (["eval", "--dataset", "generic", "--root", str(FACES), "--limit-test", "0"], "--limit-test 0: expected a positive"),
    (["demo", "--options", '{"n_augment": -1}'], r"--options: n_augment=-1\. Expected an integer >= 0"),
    (["extract", str(FACES), "--batch-size", "-1", "--out", "{tmp}/x.st"], "--batch-size -1; expected a positive"),
])
def test_bad_numbers_are_one_line_errors(tmp_path, capsys, argv, match):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "o")]
    assert main([*argv, *out, "-q", *(["--model", "random-r18"] if argv[0] != "eval" else [])]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and err.count("\n") == 1, err


def test_viz_layers_must_be_integers(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["viz", "pca", str(FACES / "x.jpg"), "--out", str(tmp_path), "--layers", "a"])
    assert info.value.code == 2 and "expected comma-separated integers such as 1,2,3,4" in capsys.readouterr().err


def test_eval_checks_layers_against_the_model_before_reading_images(tmp_path, capsys, monkeypatch):
    from hyperland.data import base

    def no_images(*a, **k):
        raise AssertionError("images were read before --layers was checked")

    monkeypatch.setattr(base, "load_sample", no_images)
    assert main(["eval", "--dataset", "generic", "--root", str(FACES), "--shots", "5", "--model", "random-r18", "--layers-sweep",
                 "4;7", "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--layers (7,) is not valid for resnet18" in err, err


def test_viz_eyes_must_be_two_integers(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["viz", "landmarks", str(FACES / "x.jpg"), "--head", "h", "--out", str(tmp_path), "--eyes", "a,b"])
    assert info.value.code == 2 and "expected comma-separated integers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["viz", "landmarks", str(FACES / "x.jpg"), "--head", "h", "--out", str(tmp_path), "--eyes", "0,1,2"])
    assert "expected two landmark indices such as 0,1; got '0,1,2'" in capsys.readouterr().err
