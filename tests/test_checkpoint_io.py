"""Checkpoints on a full disk: a clear OutputError naming the file, never torch's cryptic RuntimeError
(issue 12, item 5)."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from hyperland.errors import OutputError
from hyperland.train.checkpoint import _PythonWriter, load_checkpoint, save_checkpoint


def test_torch_save_on_a_full_device_keeps_the_enospc():
    f = open("/dev/full", "wb")  # noqa: SIM115 - buffered like the atomic writer's file; its close fails too
    w = _PythonWriter(f)
    with pytest.raises(RuntimeError, match="unexpected pos"):  # what torch raises on a full disk ...
        torch.save({"w": torch.zeros(100_000)}, w)
    assert w.error is not None and w.error.errno == errno.ENOSPC  # ... after the OSError it swallowed
    with pytest.raises(OSError):
        f.close()


def test_checkpoint_write_on_a_full_device_is_an_output_error(tmp_path, monkeypatch):
    import hyperland._io as io_mod

    real = io_mod.os.fdopen
    monkeypatch.setattr(io_mod.os, "fdopen", lambda fd, mode: (os.close(fd), real(os.open("/dev/full", os.O_WRONLY), mode))[1])
    with pytest.raises(OutputError, match=r"Cannot write '.*last\.pt': the disk is full"):
        save_checkpoint(tmp_path / "last.pt", {"w": torch.zeros(100_000)})
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1})
    import hyperland._io as io_mod

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full)
    with pytest.raises(OutputError, match=r"Cannot write '.*last\.pt': the disk is full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(10)})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
