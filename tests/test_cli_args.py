"""Arguments every subcommand shares: one --model default (item 1 of issue 12), one -q/--quiet flag, and a
parser that is built without importing torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hyperland import DEFAULT_MODEL, load
from hyperland.cli import build_parser

MODEL_COMMANDS = [["fit", "--train", "t.csv", "--out", "o"], ["extract", "x.jpg", "--out", "o"], ["eval"],
                  ["demo"], ["viz", "pca", "x.jpg", "--out", "o"]]
HEAD_COMMANDS = [["predict", "--head", "h", "x.jpg"], ["viz", "landmarks", "x.jpg", "--head", "h", "--out", "o"]]


def _subparser(parser: argparse.ArgumentParser, names: list[str]) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("argv", MODEL_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_model_default_is_the_embedded_model(argv):
    args = build_parser().parse_args(argv)
    assert args.model == DEFAULT_MODEL == "mtfl-dense-r18"
    assert load.__defaults__[0] == DEFAULT_MODEL  # hyperland.load() with no name: the same default
    names = [a for a in argv[:2] if not a.startswith("-") and "." not in a]
    help_text = _subparser(build_parser(), names).format_help()
    assert f"default {DEFAULT_MODEL}" in " ".join(help_text.split())


@pytest.mark.parametrize("argv", HEAD_COMMANDS, ids=lambda a: a[0])
def test_head_commands_default_to_the_heads_model(argv):
    args = build_parser().parse_args(argv)
    assert args.model is None and args.quiet is False
    help_text = " ".join(_subparser(build_parser(), argv[:2] if argv[0] == "viz" else argv[:1]).format_help().split())
    assert "the model recorded in the head's head.json" in help_text


@pytest.mark.parametrize("argv", MODEL_COMMANDS + HEAD_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_network_command_has_device(argv):
    """Every command that runs the network takes --device (default None: the CPU)."""
    assert build_parser().parse_args(argv).device is None
    assert build_parser().parse_args([*argv, "--device", "cpu"]).device == "cpu"


@pytest.mark.parametrize("argv", MODEL_COMMANDS + HEAD_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_heavy_command_has_quiet(argv):
    assert build_parser().parse_args(argv).quiet is False
    assert build_parser().parse_args([*argv, "-q"]).quiet is True


# ---------------------------------------------------------------- errors in CLI terms, Ctrl-C, SIGTERM (issue 12.5/6)
def test_library_keywords_become_flags_in_cli_errors(tmp_path, capsys):
    import json as _json
    from pathlib import Path

    from hyperland.cli import main

    faces = Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces"
    head = tmp_path / "head"
    assert main(["fit", "--train", str(faces / "train.csv"), "--limit", "3", "--method", "prototype",
                 "--model", "random-r18", "--out", str(head), "-q", "--options", '{"n_components": 4}']) == 0
    capsys.readouterr()
    cfg = _json.loads((head / "head.json").read_text())
    cfg["fingerprint"] = "0123456789abcdef"  # as if fitted on another backbone
    (head / "head.json").write_text(_json.dumps(cfg))
    img = str(min(faces.glob("*.jpg")))
    assert main(["predict", "--head", str(head), "--model", "random-r18", img]) == 2
    err = capsys.readouterr().err
    assert "pass --allow-backbone-mismatch." in err and "allow_backbone_mismatch" not in err
    assert main(["predict", "--head", str(head), "--model", "random-r18", img, "--allow-backbone-mismatch", "-q"]) == 0
    assert main(["extract", img, "--out", str(tmp_path / "f.st"), "--model", "random-r18", "--batch-size", "0"]) == 2
    assert "--batch-size 0; expected a positive integer" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    from hyperland.cli import main
    from hyperland.commands import models

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "run", interrupted)
    assert main(["models"]) == 130
    err = capsys.readouterr().err
    assert err == "hyperland models: interrupted (Ctrl-C); files being written were discarded, earlier files are unchanged.\n"


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_killed_extract_leaves_no_temp_file(tmp_path, sig, code):
    import os
    import signal
    import time
    from pathlib import Path

    faces = sorted((Path(__file__).resolve().parents[1] / "hyperland" / "assets" / "faces").glob("*.jpg"))
    out = tmp_path / "feats.safetensors"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hyperland.cli", "extract", *map(str, faces * 60), "--out", str(out),
                             "--model", "random-r18", "--batch-size", "8", "-q"], env=env, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # (a shell's background job ignores SIGINT, and so would the child: Python then never raises KeyboardInterrupt)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".feats.safetensors.*.tmp")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if not list(tmp_path.glob(".*.tmp")):
        proc.kill()
        _, err = proc.communicate(timeout=60)
        raise AssertionError(f"the extraction never started writing (exit {proc.returncode}): {err[-2000:]}")
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert err.strip().endswith("files being written were discarded, earlier files are unchanged.")
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- startup (issue 12.7)
@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["models"], ["eval", "--help"], ["fit", "--help"]])
def test_help_version_and_models_import_no_torch(argv):
    import os
    from pathlib import Path

    code = ("import sys, runpy\nsys.argv = ['hyperland', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('hyperland.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'timm', 'sklearn', 'scipy', 'huggingface_hub', 'safetensors') "
            "if m in sys.modules)\nprint('HEAVY', heavy)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert res.stdout.strip().splitlines()[-1] == "HEAVY []", res.stdout + res.stderr


def test_public_api_is_imported_on_first_use():
    import os
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = ("import sys, hyperland\nassert 'torch' not in sys.modules\nm = hyperland.LandmarkHead\n"
            "import hyperland.match\nfrom hyperland import match\nassert match is hyperland.match and callable(match)\n"
            "print('torch' in sys.modules, m.__module__, hyperland.load.__module__, hyperland.metrics.__name__)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert res.stdout.split() == ["True", "hyperland.heads.estimator", "hyperland.loading", "hyperland.metrics"], res.stderr
