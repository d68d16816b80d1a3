"""Training faults (issue 12, item 6): a stop signal checkpoints before exiting, resume removes what a kill left
mid-write and cuts metrics.jsonl back to the checkpoint, a failed start leaves no run folder."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_utils import image_list, tiny_config

from hyperland.train.cli import main as train_main
from hyperland.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def faces(mtfl_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_list(mtfl_root, tmp_path_factory.mktemp("faces"), 32)


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_stop_signal_writes_a_checkpoint_then_resume_continues(faces, tmp_path, sig):
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config(faces, epochs=500, checkpoint_every=0).to_json())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hyperland.train", "--config", str(cfg), "--out", str(run)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if (run / "metrics.jsonl").is_file() and len(_steps(run)) >= 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    assert not (run / "last.pt").exists()  # no checkpoint before the signal (checkpoint_every=0)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig), err
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    step = ckpt["state"]["step"]
    assert re.search(rf"stopped by {sig} at epoch \d+, step {step};", out) and not ckpt["state"]["finished"]
    assert step >= 2 and "Traceback" not in err
    assert train_main(["--resume", str(run), "--max-steps", str(step + 2)]) == 0
    assert torch.load(run / "last.pt", map_location="cpu", weights_only=True)["state"]["step"] == step + 2


def test_resume_removes_stale_temps_and_cuts_metrics_back(faces, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_config(faces, max_steps=3), run).fit()
    assert _steps(run) == [1, 2, 3]
    with open(run / "metrics.jsonl", "a") as f:  # the run went on to step 5, then was killed before a checkpoint
        f.write(json.dumps({"step": 4, "loss": 1.0}) + "\n" + json.dumps({"step": 5, "loss": 1.0}) + "\n" + '{"st')
    stale = [run / ".last.pt.99999999.k1ll.tmp", run / ".last.pt.oldstyle.tmp", run / ".config.json.99999999.x.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 4096)  # a kill during a checkpoint write
    assert train_main(["--resume", str(run), "--max-steps", "5"]) == 0
    assert _steps(run) == [1, 2, 3, 4, 5]  # no repeated steps, no cut line
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "last.pt", "metrics.jsonl"]


def test_failed_start_leaves_no_run_folder(faces, tmp_path, capsys):
    few = tmp_path / "few.txt"
    few.write_text("a.jpg\nb.jpg\n")
    run = tmp_path / "runs" / "new"
    assert train_main(["--config", _cfg(tmp_path, few), "--out", str(run)]) == 2
    assert "make no full batch" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # neither the run folder nor the parent the start created
    (tmp_path / "empty").mkdir()
    assert train_main(["--config", _cfg(tmp_path, tmp_path / "empty"), "--out", str(run)]) == 2
    assert "No images found" in capsys.readouterr().err and not run.exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    assert train_main(["--config", _cfg(tmp_path, few), "--out", str(existing)]) == 2
    assert (existing / "notes.txt").read_text() == "keep me"  # a folder that was there before is left alone


def _cfg(tmp_path: Path, data: Path) -> str:
    p = tmp_path / "cfg.json"
    p.write_text(tiny_config(data).to_json())
    return str(p)


def test_ctrl_c_outside_the_loop_is_one_line(monkeypatch, capsys):
    from hyperland.train import cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_train", interrupted)
    assert train_main(["--out", "x"]) == 130
    assert capsys.readouterr().err == ("hyperland-train: interrupted (Ctrl-C); files being written were discarded and "
                                       "the last checkpoint, if any, is intact.\n")
