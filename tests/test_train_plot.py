"""hyperland-train plot: training and probe curves from a hand-written metrics.jsonl (with a resumed, repeated step)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hyperland.errors import CheckpointError, MissingDependencyError
from hyperland.train import plot
from hyperland.train.cli import main
from hyperland.train.trainer import METRICS_FILE

RECORDS = [
    {"step": 1, "epoch": 0, "loss": 5.0, "moco_loss": 5.0, "acc": 0.1, "lr": 0.03, "images_per_s": 100.0},
    {"step": 2, "epoch": 1, "loss": 4.0, "moco_loss": 4.0, "acc": 0.2, "lr": 0.03, "images_per_s": 110.0},
    {"step": 2, "epoch": 1, "probe": {"head_nme": 20.0, "ridge_probe_nme": 22.0, "mean_shape_nme": 30.0,
                                      "retrieval_top1": 0.3, "retrieval_n": 10}},
    {"step": 3, "epoch": 1, "loss": 9.0, "moco_loss": 9.0, "acc": 0.0, "lr": 0.02, "images_per_s": 50.0},
    # the run was killed after step 3's line and resumed from the step-2 checkpoint: step 3 is logged again
    {"step": 3, "epoch": 1, "loss": 3.5, "moco_loss": 3.5, "acc": 0.3, "lr": 0.02, "images_per_s": 120.0},
    {"step": 4, "epoch": 2, "loss": 3.0, "moco_loss": 3.0, "acc": 0.4, "lr": 0.01, "images_per_s": 120.0},
    {"step": 4, "epoch": 2, "probe": {"head_nme": 15.0, "ridge_probe_nme": 18.0, "mean_shape_nme": 30.0,
                                      "retrieval_top1": 0.6, "retrieval_n": 10}},
]


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in RECORDS) + '{"step": 5, "loss"'  # a line cut by a kill
    (run / plot.METRICS_FILE).write_text(text, encoding="utf-8")
    return run


def _line(fig, title: str, label: str):
    ax = next(a for a in fig.axes if a.get_title() == title)
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line


def test_read_metrics_keeps_the_last_record_of_each_step(tmp_path: Path) -> None:
    train, probe = plot.read_metrics(_run(tmp_path))
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert [r["loss"] for r in train] == [5.0, 4.0, 3.5, 3.0]
    assert [(p["epoch"], p["head_nme"]) for p in probe] == [(1, 20.0), (2, 15.0)]
    assert plot.METRICS_FILE == METRICS_FILE


def test_plot_draws_each_step_once(tmp_path: Path) -> None:
    fig = plot.plot_run(_run(tmp_path))
    loss = _line(fig, "training losses", "loss")
    assert list(loss.get_xdata()) == [1, 2, 3, 4] and list(loss.get_ydata()) == [5.0, 4.0, 3.5, 3.0]
    assert list(_line(fig, "training top-1 (queue / dense)", "acc").get_ydata()) == [0.1, 0.2, 0.3, 0.4]
    nme = "probe: landmark NME % (lower is better)"
    head = _line(fig, nme, plot.NMES["head_nme"])
    assert list(head.get_xdata()) == [1, 2] and list(head.get_ydata()) == [20.0, 15.0]
    assert _line(fig, nme, "mean shape").get_linestyle() == "--"
    assert _line(fig, nme, plot.NMES["ridge_probe_nme"]).get_linestyle() == "-"
    retrieval = _line(fig, "probe: held-out views (fixed, no queue)", plot.MATCHING["retrieval_top1"])
    assert list(retrieval.get_ydata()) == [0.3, 0.6]


def test_cli_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    out = tmp_path / "curves.png"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert main(["plot", str(run)]) == 0 and (run / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(run.glob(".*.tmp"))


def test_missing_run_or_matplotlib_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckpointError, match="no metrics.jsonl"):
        plot.read_metrics(tmp_path)
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    run = _run(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if matplotlib were missing
    with pytest.raises(MissingDependencyError, match=r'pip install "hyperland\[viz\]"'):
        plot.plot_run(run)
    assert main(["plot", str(run)]) == 2
    assert 'pip install "hyperland[viz]"' in capsys.readouterr().err
    assert not (run / "metrics.png").exists()
