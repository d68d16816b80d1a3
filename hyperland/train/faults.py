"""What a training run does about faults: a stop signal (preemption's SIGTERM, Ctrl-C) finishes the current
step and writes a checkpoint; resuming removes temporary files that a kill left mid-write and cuts
``metrics.jsonl`` back to the checkpoint's step, so that no line is repeated; a start that fails removes the
run folder it had just made."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from .._io import atomic_write_text, remove_stale_temps

logger = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Set by SIGTERM / SIGINT while training: the loop checkpoints after the current step and returns. A second
    signal interrupts at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        logger.warning("%s received: stopping after this step with a checkpoint (send it again to stop now).",
                       signal.Signals(signum).name)

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def clean_for_resume(run_dir: Path, step: int, *, metrics_name: str, names: tuple[str, ...]) -> None:
    """Remove temporary files of ``names`` left by a killed writer; keep only ``metrics.jsonl`` lines of steps
    up to ``step`` (the checkpoint's), which the resumed run logs again after it."""
    for name in names:
        for tmp in remove_stale_temps(run_dir / name, any_pid=True):
            logger.info("Removed %s, left by a run killed while writing it.", tmp)
    metrics = run_dir / metrics_name
    if not metrics.is_file():
        return
    kept, dropped = [], 0
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            keep = int(json.loads(line).get("step", 0)) <= step
        except (ValueError, AttributeError, TypeError):
            keep = False  # a line cut short by the kill
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_text(metrics, "".join(line + "\n" for line in kept))
        logger.info("metrics.jsonl: dropped %d line(s) after step %d (the checkpoint).", dropped, step)


def remove_new_run_dir(run_dir: Path, *, keep: set[str], up_to: Path) -> None:
    """After a failed start: remove ``run_dir`` when it holds nothing but files in ``keep`` (what the start
    itself wrote), then its empty parents up to ``up_to`` (the outermost folder the start created)."""
    if not (run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= keep):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    d = run_dir
    while d != up_to and up_to in d.parents:
        d = d.parent
        try:
            d.rmdir()  # only when empty
        except OSError:
            return


__all__ = ["StopRequest", "clean_for_resume", "remove_new_run_dir"]
