"""MTFL reader and protocols on the real release in ../shared/data/mtfl."""

from __future__ import annotations

import numpy as np
import pytest

from hyperland.data import dataset_protocol, load_samples, mtfl_protocol, read_mtfl
from hyperland.data.mtfl import AFLW_POOL, LFWNET_TEST
from hyperland.errors import DatasetError


def test_read_mtfl_testing_real(mtfl_root):
    s = read_mtfl(mtfl_root, "testing")
    assert len(s) == 2995
    first = s[0]
    assert first.image.name == "0001-image20056.jpg" and first.image.is_file()
    # line 1: x = 56.607985 101.326679 79.548094 43.831216 93.196007, y = 43.250454 ... (1-based)
    np.testing.assert_allclose(first.points[:, 0], np.array([56.607985, 101.326679, 79.548094, 43.831216,
                                                             93.196007]) - 1, rtol=0, atol=1e-4)
    np.testing.assert_allclose(first.points[0, 1], 43.250454 - 1, atol=1e-4)
    assert first.meta["gender"] == 1 and first.meta["pose"] == 3 and first.meta["line"] == 1
    assert all(x.visible.all() for x in s)


def test_mtfl_protocol_sizes_and_disjointness(mtfl_root):
    pool, test = mtfl_protocol(mtfl_root, "aflw")
    assert len(pool) == AFLW_POOL and len(test) == 2995 - AFLW_POOL
    assert not {p.image for p in pool} & {t.image for t in test}
    assert all(t.box is None for t in test)  # test framing never uses labels
    spec, (pool, test) = dataset_protocol("mtfl", mtfl_root, "mtfl-aflw")
    assert spec.eyes == (0, 1) and spec.metric == "nme"
    assert len(pool) == 10000 and len(test) == 2995
    assert all(p.box is not None for p in pool[:50]) and all(t.box is None for t in test)
    _, pts = load_samples(pool[:4], size=150)
    # the label-derived training crop puts the 5-point centroid at (0.49, 0.49) of the frame, like AFLW
    np.testing.assert_allclose(pts.mean(axis=1) / 150, 0.49, atol=0.02)
    pool, test = mtfl_protocol(mtfl_root, "lfwnet")
    assert len(test) == LFWNET_TEST and len(pool) == 10000 - LFWNET_TEST
    val_pool, val_test = mtfl_protocol(mtfl_root, "aflw-val")  # the aflw pool's halves, no aflw test face
    aflw_pool, aflw_test = mtfl_protocol(mtfl_root, "aflw")
    assert [s.image for s in val_pool + val_test] == [s.image for s in aflw_pool]
    assert len(val_pool) == len(val_test) == AFLW_POOL // 2
    lfw_pool, lfw_test = mtfl_protocol(mtfl_root, "lfwnet-val")  # the lfwnet pool, its last 2,000 held out
    assert [s.image for s in lfw_pool + lfw_test] == [s.image for s in pool]
    assert len(lfw_test) == LFWNET_TEST


def _copy_lines(mtfl_root, tmp_path, lines):
    (tmp_path / "testing.txt").write_bytes(b"".join(lines))
    (tmp_path / "AFLW").symlink_to(mtfl_root / "AFLW")


def test_mtfl_malformed_and_missing(mtfl_root, tmp_path):
    raw = (mtfl_root / "testing.txt").read_bytes().splitlines(keepends=True)[:3]
    _copy_lines(mtfl_root, tmp_path, [raw[0], raw[1].replace(b" 1 2 4", b" 1 2"), raw[2]])
    with pytest.raises(DatasetError, match=r"testing.txt:2: expected 15 fields"):
        read_mtfl(tmp_path, "testing")
    (tmp_path / "testing.txt").write_bytes(raw[0] + raw[1].replace(b"0002-image04733", b"9999-nothere"))
    with pytest.raises(DatasetError, match=r"testing.txt:2: image .*9999-nothere.jpg' is missing"):
        read_mtfl(tmp_path, "testing")
    (tmp_path / "testing.txt").write_bytes(raw[0].replace(b"56.607985", b"56.6x"))
    with pytest.raises(DatasetError, match=r"testing.txt:1: non-numeric"):
        read_mtfl(tmp_path, "testing")
    (tmp_path / "testing.txt").write_bytes(b"\r\n")
    with pytest.raises(DatasetError, match="lists no faces"):
        read_mtfl(tmp_path, "testing")
    # a point outside the 150 x 150 frame: off by default (none in the release), error on request
    (tmp_path / "testing.txt").write_bytes(raw[0].replace(b"56.607985", b"260.0"))
    assert len(read_mtfl(tmp_path, "testing")) == 1
    with pytest.raises(DatasetError, match="outside their image"):
        read_mtfl(tmp_path, "testing", outside="error")
