"""RowFile (hyperland/_rowfile.py): rows written in any order read back exactly, by index arrays and views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from hyperland._rowfile import RowFile


def test_rows_written_in_any_order_read_back_exactly() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((50, 7)).astype(np.float16)
    x = RowFile((50, 7), np.float16)  # deleted when collected (eval closes its own)
    order = rng.permutation(50)
    for i in range(0, 50, 8):  # batches of scattered rows, as extraction writes them
        rows = order[i:i + 8]
        x.write(rows, ref[rows].astype(np.float32))  # cast to the file's dtype
    assert (x.shape, x.dtype, len(x), x.nbytes) == ((50, 7), np.float16, 50, 50 * 7 * 2)
    np.testing.assert_array_equal(x[np.arange(50)], ref)
    idx = np.array([3, 4, 5, 40, 2, 2, 49, 0])  # runs, a step back, a repeat, both ends
    np.testing.assert_array_equal(x[idx], ref[idx])
    assert x[np.zeros(0, np.int64)].shape == (0, 7)


def test_a_slice_is_a_view_of_the_same_file() -> None:
    ref = np.arange(60, dtype=np.float32).reshape(20, 3)
    x = RowFile((20, 3), np.float32)
    x.write(list(range(20)), ref)
    tail = x[12:]
    assert isinstance(tail, RowFile) and tail.shape == (8, 3)
    np.testing.assert_array_equal(tail[np.array([0, 7])], ref[[12, 19]])
    np.testing.assert_array_equal(tail[2:4][np.arange(2)], ref[14:16])
    tail.write([1], np.full((1, 3), -1.0, np.float32))  # the view writes into the shared file
    np.testing.assert_array_equal(x[np.array([13])], [[-1.0, -1.0, -1.0]])


def test_out_of_range_rows_and_wrong_shapes_are_refused() -> None:
    x = RowFile((4, 2), np.float32)
    with pytest.raises(IndexError):
        x[np.array([4])]
    with pytest.raises(IndexError):
        x[np.array([-1])]
    with pytest.raises(IndexError):
        x[::2]
    with pytest.raises(ValueError, match="values of shape"):
        x.write([0, 1], np.zeros((2, 3), np.float32))


def _file_writes(monkeypatch: pytest.MonkeyPatch, write: Callable[[Any, memoryview], int]) -> None:
    """New RowFiles get a real temporary file whose ``write(data)`` is ``write(real_file, data)``."""
    import tempfile

    real = tempfile.TemporaryFile

    class Patched:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

        def write(self, data: memoryview) -> int:
            return write(self.f, data)

    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **kw: Patched(real(**kw)))


def test_a_full_disk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while writing (the file is sparse until written) names the size, the folder and TMPDIR."""
    import errno

    from hyperland.errors import OutputError

    def full(f: Any, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    _file_writes(monkeypatch, full)
    with RowFile((1000, 500), np.float16) as x, \
            pytest.raises(OutputError, match=r"1 MB temporary file .*No space left on device.*TMPDIR"):
        x.write([0], np.zeros((1, 500), np.float16))


def test_short_raw_writes_are_completed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw write may take fewer bytes than given (near a full disk, or above 2 GiB in one call): the rest is
    written, and every row reads back."""
    _file_writes(monkeypatch, lambda f, data: int(f.write(data[: max(1, len(data) // 3)])))
    ref = np.random.default_rng(3).standard_normal((9, 5)).astype(np.float32)
    with RowFile((9, 5), np.float32) as x:
        x.write(np.arange(9), ref)
        np.testing.assert_array_equal(x[np.arange(9)], ref)


def test_only_integer_rows_are_accepted() -> None:
    """A boolean mask would otherwise read rows 0 and 1; floats and 2-d keys are refused too."""
    with RowFile((5, 2), np.float32) as x:
        for key in (np.array([False, True, False, False, True]), np.array([1.0, 2.0]), np.zeros((2, 1), int)):
            with pytest.raises(TypeError, match="1-d array of integers"):
                x[key]
        with pytest.raises(TypeError):
            x.write(np.array([True]), np.zeros((1, 2), np.float32))
        assert x[[]].shape == (0, 2)
    assert x._file.closed
