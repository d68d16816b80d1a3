"""One PNG of a training run from ``RUN_DIR/metrics.jsonl`` (``hyperland-train plot RUN_DIR``).

Per optimiser step: losses (``loss``, ``moco_loss``, ``dense_loss``), training accuracies (``acc``,
``dense_acc``), learning rate and images/s. Per epoch, from the probe records: landmark NMEs (the
mean shape dashed), held-out retrieval top-1 and dense matching. A resumed run may log a step again: the last
record of each step counts (probe records and training records separately).

Needs matplotlib (``pip install "hyperland[viz]"``); no pyplot, so no GUI backend is involved.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_bytes
from ..errors import CheckpointError, optional_import

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"  # the trainer's file name (trainer.METRICS_FILE; not imported: no torch here)
PLOT_FILE = "metrics.png"
LOSSES = ("loss", "moco_loss", "dense_loss")
ACCURACIES = ("acc", "dense_acc")
# probe NME keys → legend label; "nme" is the prototype head of runs logged before the ridge probe
NMES = {"head_nme": "default head (ridge)", "ridge_probe_nme": "ridge probe (pooled hypercolumn)",
        "nme": "prototype head (older runs)"}
MATCHING = {"retrieval_top1": "instance retrieval top-1", "dense_match": "dense matching (±1 cell)"}


def read_metrics(run_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training records, probe records) of ``run_dir``, each sorted by step with the last record of a step
    kept; a probe record is its ``probe`` dict plus ``step`` and ``epoch``. Unreadable lines are skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise CheckpointError(f"'{run_dir}' has no {METRICS_FILE}. Pass the directory of a hyperland-train run "
                              "(the --out of the training command).")
    train: dict[int, dict[str, Any]] = {}
    probe: dict[int, dict[str, Any]] = {}
    bad = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            step = int(rec["step"])
        except (ValueError, KeyError, TypeError):
            bad += int(bool(line.strip()))
            continue
        if isinstance(rec.get("probe"), dict):
            probe[step] = {**rec["probe"], "step": step, "epoch": rec.get("epoch")}
        else:
            train[step] = rec
    if bad:
        logger.warning("%s: skipped %d unreadable line(s).", path, bad)
    return [train[s] for s in sorted(train)], [probe[s] for s in sorted(probe)]


def _figure_class() -> Any:
    figure = optional_import("matplotlib.figure", needed_for="Plotting a run", name="matplotlib", extra="viz",
                             package="matplotlib")
    return figure.Figure


def _series(records: list[dict[str, Any]], key: str, x: str) -> tuple[list[float], list[float]]:
    pts = [(float(r[x]), float(r[key])) for r in records
           if isinstance(r.get(key), (int, float)) and isinstance(r.get(x), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _panel(ax: Axes, records: list[dict[str, Any]], keys: dict[str, str], *, x: str, title: str,
           dashed: dict[str, str] | None = None, unit_range: bool = False) -> None:
    drawn = 0
    for group, style in ((keys, "-"), (dashed or {}, "--")):
        for key, label in group.items():
            xs, ys = _series(records, key, x)
            if xs:
                ax.plot(xs, ys, linestyle=style, marker="o" if x == "epoch" else None, markersize=3, label=label,
                        color="k" if style == "--" else None)
                drawn += 1
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(x, fontsize=8)
    ax.tick_params(labelsize=7)
    if not drawn:
        what = "no probe records (--probe-every, --val-count)" if x == "epoch" else "not logged"
        ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="grey")
        return
    if unit_range:
        ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_run(run_dir: str | os.PathLike) -> Figure:
    """A matplotlib Figure of the run's training curves (per step) and probe curves (per epoch)."""
    train, probe = read_metrics(run_dir)
    fig = _figure_class()(figsize=(12, 7), dpi=100, layout="constrained")
    axes = fig.subplots(2, 3)
    _panel(axes[0, 0], train, {k: k for k in LOSSES}, x="step", title="training losses")
    _panel(axes[0, 1], train, {k: k for k in ACCURACIES}, x="step", title="training top-1 (queue / dense)")
    _panel(axes[0, 2], train, {"lr": "lr"}, x="step", title="learning rate")
    _panel(axes[1, 0], train, {"images_per_s": "images/s"}, x="step", title="throughput")
    _panel(axes[1, 1], probe, NMES, x="epoch", title="probe: landmark NME % (lower is better)",
           dashed={"mean_shape_nme": "mean shape"})
    _panel(axes[1, 2], probe, MATCHING, x="epoch", title="probe: held-out views (fixed, no queue)",
           unit_range=True)
    fig.suptitle(f"{Path(run_dir).resolve().name}: {len(train)} log steps, {len(probe)} probes", fontsize=10)
    return fig


def save_plot(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write :func:`plot_run` as a PNG (default ``RUN_DIR/metrics.png``) through the atomic writer."""
    fig = plot_run(run_dir)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(Path(out) if out is not None else Path(run_dir) / PLOT_FILE, buf.getvalue())


__all__ = ["PLOT_FILE", "plot_run", "read_metrics", "save_plot"]
