"""A large (rows, features) array kept in an unnamed temporary file and read back a block of rows at a time.

The ridge probe's input is the widest thing an evaluation stores: 61,440 float16 values per image, 1.2 GB for the
10,000 ``lfwnet`` images, and its solver reads it a block of rows at a time (:mod:`hyperland.heads.gcv`). Kept
in a file written and read with plain ``write`` / ``readinto`` (not a memory map), it sits in the operating
system's page cache, which the system can drop and re-read from disk, instead of in the process's own memory
beside everything else an evaluation holds. The file has no name (``tempfile.TemporaryFile``): nothing is left
behind, whatever ends the process. It is created in ``tempfile.gettempdir()`` (``TMPDIR``); where that is a RAM
file system (tmpfs), set ``TMPDIR`` to a disk folder to get the saving.

numpy's ``memmap`` is not used: pages of a mapped file count in the process's resident memory once read, so it
would save nothing while the solver reads every row.
"""

from __future__ import annotations

import errno
import tempfile
from typing import Any, overload

import numpy as np

from .errors import OutputError


class RowFile:
    """``(N, F)`` values of one dtype in a temporary file. ``x[index]`` (a 1-d integer array) reads those rows
    into a new array; ``x[start:stop]`` is a view of consecutive rows (the same file); ``write(rows, values)``
    stores rows. ``shape``, ``dtype`` and ``len()`` as numpy's. ``close()`` (or ``with``) deletes the file now;
    otherwise it goes with the last view."""

    def __init__(self, shape: tuple[int, int], dtype: np.dtype | type, *, _file: Any = None, _start: int = 0,
                 _total: int | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.shape = (int(shape[0]), int(shape[1]))
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._start = _start
        self._total = self.nbytes if _total is None else _total  # the whole file's size, views included
        if _file is None:
            try:
                _file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115  (closed by close() or the last view)
                _file.truncate(self._total)
            except OSError as e:
                raise self._error(e) from e
        self._file: Any = _file  # an unbuffered binary file: write / readinto at seek positions

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self._row_bytes

    def close(self) -> None:
        """Delete the file (every view of it too)."""
        self._file.close()

    def __enter__(self) -> RowFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, key: Any) -> np.ndarray:
        rows = np.asarray(key)
        if rows.ndim != 1 or not (rows.dtype.kind in "iu" or rows.size == 0):
            raise TypeError(f"RowFile rows are a 1-d array of integers, not {rows.dtype} of shape {rows.shape} "
                            "(a boolean mask: np.flatnonzero(mask))")
        rows = rows.astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} rows")
        return rows

    @staticmethod
    def _runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
        """(first position in ``rows``, past-the-end position, first row) of each run of consecutive rows."""
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks]).astype(int)
        ends = np.concatenate([breaks, [len(rows)]]).astype(int)
        return [(int(a), int(b), int(rows[a])) for a, b in zip(starts, ends) if b > a]

    def write(self, rows: np.ndarray | list[int], values: np.ndarray) -> None:
        """Store ``values`` (len(rows), F) at ``rows`` (cast to this file's dtype)."""
        index = self._rows(rows)
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape != (len(index), self.shape[1]):
            raise ValueError(f"values of shape {values.shape} for {len(index)} rows of {self.shape[1]} features")
        try:
            for a, b, row in self._runs(index):
                self._file.seek((self._start + row) * self._row_bytes)
                buf = values[a:b].data.cast("B")
                while len(buf):  # a raw write may take fewer bytes than given
                    done = self._file.write(buf)
                    if not done:
                        raise OSError(errno.ENOSPC, "the temporary file took no more bytes")
                    buf = buf[done:]
        except OSError as e:
            raise self._error(e) from e

    def _error(self, e: OSError) -> OutputError:
        return OutputError(f"Could not write a {self._total / 1e6:,.0f} MB temporary file of features in "
                           f"{tempfile.gettempdir()} ({e.strerror or e}). Free space there, or set the TMPDIR "
                           f"environment variable to a folder on a disk with that much room.")

    @overload
    def __getitem__(self, key: slice) -> RowFile: ...
    @overload
    def __getitem__(self, key: np.ndarray | list[int]) -> np.ndarray: ...

    def __getitem__(self, key: slice | np.ndarray | list[int]) -> RowFile | np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("RowFile slices take consecutive rows (step 1); index with an array instead")
            return RowFile((max(stop - start, 0), self.shape[1]), self.dtype, _file=self._file,
                           _start=self._start + start, _total=self._total)
        rows = self._rows(key)
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        for a, b, row in self._runs(rows):
            self._file.seek((self._start + row) * self._row_bytes)
            buf, done = out[a:b].data.cast("B"), 0
            while done < len(buf):  # a raw read may return fewer bytes than asked
                got = self._file.readinto(buf[done:])
                if not got:
                    raise OSError(f"temporary row file ended early (row {row}, {done} of {len(buf)} bytes)")
                done += got
        return out


Rows = np.ndarray | RowFile  # what a block-wise solver reads rows of (hyperland.heads.gcv)

__all__ = ["RowFile", "Rows"]
