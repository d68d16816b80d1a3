"""hyperland._io: atomic writes keep the old file on failure and give new files the umask's permissions."""

from __future__ import annotations

import os

import pytest

from hyperland._io import atomic_write, atomic_write_text


def test_atomic_write_keeps_old_content_on_error(tmp_path):
    target = atomic_write_text(tmp_path / "f.txt", "old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]  # no temporary file left behind


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode
