"""The one atomic writer of hyperland: model directories, saved heads, training checkpoints, extracted features
and every file the CLI writes. A temporary file beside the target (``.NAME.PID.XXXX.tmp``), fsync, rename over
the target, fsync the folder; the result has the usual permissions of a new file (0666 minus the umask).

Write failures become an :class:`~hyperland.errors.OutputError` that names the file and, for ENOSPC / EDQUOT,
says the disk is full; the old file is then unchanged and the temporary file is gone. A temporary file left by a
killed process (SIGKILL, a power cut: its PID no longer runs) is removed the next time anything is written in
that folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_error(path: str | os.PathLike, exc: OSError) -> OutputError:
    """The OutputError for a failed write of ``path``: disk full, or what the OS said."""
    if exc.errno in _FULL:
        return OutputError(f"Cannot write '{path}': the disk is full ({exc.strerror or exc}). Free some space or "
                           "write to another disk; an earlier file of that name, if any, is unchanged.")
    return OutputError(f"Cannot write '{path}' ({exc.strerror or exc}). Check that its folder exists and is "
                       "writable, or choose another output path.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def remove_stale_temps(path: str | os.PathLike, *, any_pid: bool = False) -> list[Path]:
    """Remove ``.NAME.PID.*.tmp`` files beside ``path`` whose writer process is gone (killed mid-write).
    ``any_pid``: every such file but this process's (the caller knows no other writer runs: a resumed run)."""
    p = Path(path)
    removed: list[Path] = []
    if not p.parent.is_dir():
        return removed
    for tmp in p.parent.glob(f".{p.name}.*.tmp"):
        pid = tmp.name[len(p.name) + 2:].split(".", 1)[0]
        if (any_pid and pid != str(os.getpid())) or (pid.isdigit() and int(pid) != os.getpid()
                                                      and not _alive(int(pid))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def remove_dead_writers_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove every ``.NAME.PID.XXXX.tmp`` in ``folder`` whose writer process is gone, whatever NAME: a killed
    ``extract --out a.safetensors`` leaves nothing behind once anything is written in that folder again."""
    removed: list[Path] = []
    d = Path(folder)
    if not d.is_dir():
        return removed
    for tmp in d.glob(".*.tmp"):
        parts = tmp.name[1:].rsplit(".", 3)  # NAME, PID, XXXX (mkstemp: no dots), "tmp"
        if len(parts) == 4 and parts[1].isdigit() and int(parts[1]) != os.getpid() and not _alive(int(parts[1])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


class AtomicFile:
    """A temporary file beside ``path`` that :meth:`commit` renames over it and :meth:`abort` removes (making one
    first removes the temporary files of dead writers in that folder).
    For writers that stream (extract); :func:`atomic_write` covers the rest."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_dead_writers_temps(self.path.parent)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp",
                                       dir=self.path.parent)
        except OSError as exc:
            raise output_error(self.path, exc) from exc
        self.tmp = Path(tmp)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            self.abort()
            raise output_error(self.path, exc) from exc

    def commit(self) -> Path:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise output_error(self.path, exc) from exc
        _fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        if not self.file.closed:
            with contextlib.suppress(OSError):  # a close that flushes onto a full disk
                self.file.close()
        self.tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.
    On any error the temporary file is removed and ``path`` keeps its old content; an OSError of the write
    (disk full, ...) is raised as an OutputError naming ``path``."""
    f = AtomicFile(path)
    try:
        write(f.file)
    except OSError as exc:
        f.abort()
        raise output_error(f.path, exc) from exc
    except BaseException:
        f.abort()
        raise
    return f.commit()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | os.PathLike, *, flag: str, folder: bool = False) -> Path:
    """Fail before any heavy work when an output cannot be written (nothing is created): the folder
    (``folder=True``: ``path`` itself, else its parent) must exist and be writable, or its nearest existing
    ancestor must be a writable folder. ``flag`` names the option in the error (``--out``)."""
    p = Path(path)
    d = p if folder else p.parent
    if folder and p.exists() and not p.is_dir():
        raise OutputError(f"{flag} {p}: this is a file; expected a folder (it is created when missing).")
    if not folder and p.is_dir():
        raise OutputError(f"{flag} {p}: this is a folder; expected a file path such as {p / 'out'}.")
    probe = d.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag} {p}: '{probe}' is a file, so the folder '{d}' cannot be created. Choose another "
                          f"location for {flag}.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {p}: the folder '{probe}' is not writable (permissions or a read-only disk). "
                          f"Choose a writable location for {flag}.")
    return p


__all__ = ["AtomicFile", "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_writable",
           "output_error", "remove_dead_writers_temps", "remove_stale_temps"]
