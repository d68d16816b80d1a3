"""The example scripts run end to end (small settings)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(monkeypatch, capsys, script: str, *argv: str) -> str:
    monkeypatch.setattr(sys, "argv", [script, *argv])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    return capsys.readouterr().out


def test_quickstart(monkeypatch, capsys, tmp_path):
    out = _run(monkeypatch, capsys, "quickstart.py", "--augment", "1", "--out", str(tmp_path / "q.png"))
    assert "NME" in out and "on 20 faces" in out and (tmp_path / "q.png").is_file()


def test_fewshot_csv(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "fewshot_csv.py", "--shots", "5", "--steps", "5", "--method", "prototype")
    assert "fit on 5 images, scored on 20" in out and "mean shape" in out


def test_fewshot_csv_too_many_shots(monkeypatch, capsys):
    from hyperland.errors import DatasetError

    with pytest.raises(DatasetError, match="Asked for 50 labelled samples but the pool holds 20"):
        _run(monkeypatch, capsys, "fewshot_csv.py", "--shots", "50")


def test_timm_backbone(monkeypatch, capsys):
    out = _run(monkeypatch, capsys, "timm_backbone.py", "--n", "3")
    assert "timm:mobilenetv3_small_100" in out and "NME" in out and "on 3 faces" in out
