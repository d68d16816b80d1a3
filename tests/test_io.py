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


# ---------------------------------------------------------------- disk full, stale temps, early checks (issue 12.3)
def test_disk_full_is_an_output_error_naming_the_file(tmp_path):
    import errno

    from hyperland.errors import HyperlandError, OutputError

    target = atomic_write_text(tmp_path / "f.json", '{"ok": 1}')

    def full(f):
        f.write(b'{"trunc')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"Cannot write '.*f\.json': the disk is full") as info:
        atomic_write(target, full)
    assert isinstance(info.value, HyperlandError) and isinstance(info.value, OSError)
    assert target.read_text() == '{"ok": 1}' and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    from hyperland._io import AtomicFile, remove_stale_temps

    dead = tmp_path / ".feats.safetensors.99999999.x1y2.tmp"  # above any pid_max: that writer is gone
    mine = tmp_path / f".feats.safetensors.{os.getpid()}.abcd.tmp"
    other = tmp_path / ".other.bin.99999999.x1y2.tmp"
    for p in (dead, mine, other):
        p.write_bytes(b"x" * 100)
    assert remove_stale_temps(tmp_path / "feats.safetensors") == [dead]
    assert not dead.exists() and mine.exists() and other.exists()
    big = tmp_path / ".feats2.safetensors.99999999.a_b1.tmp"  # a killed extract with another --out
    big.write_bytes(b"x")
    f = AtomicFile(tmp_path / "new.bin")  # any new write in the folder removes dead writers' temps
    assert not other.exists() and not big.exists() and mine.exists()
    assert f.tmp.name.startswith(f".new.bin.{os.getpid()}.")
    f.abort()
    assert not f.tmp.exists()


def test_check_writable_refuses_before_anything_is_created(tmp_path):
    from hyperland._io import check_writable
    from hyperland.errors import OutputError

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"--out .*a-file/sub: '.*a-file' is a file"):
        check_writable(blocker / "sub", flag="--out", folder=True)
    with pytest.raises(OutputError, match="--out .*: this is a file; expected a folder"):
        check_writable(blocker, flag="--out", folder=True)
    with pytest.raises(OutputError, match="this is a folder; expected a file path"):
        check_writable(tmp_path, flag="--out")
    assert check_writable(tmp_path / "new" / "deeper", flag="--out", folder=True) == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()
