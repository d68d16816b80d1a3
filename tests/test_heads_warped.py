"""Few-shot warped copies (heads.warped): each image's copies depend on the seed and the image only, and a shared
WarpCache changes what is computed, never the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hyperland.data import load_samples
from hyperland.data.mtfl import read_mtfl
from hyperland.heads import LandmarkHead
from hyperland.heads.warped import WarpCache

WARP = {"n": 3, "tps": 0.05, "rotation": 10.0, "scale": (0.9, 1.1), "translate": 0.05}


@pytest.fixture(scope="module")
def faces(mtfl_root: Path):
    """8 real AFLW faces (150 px) to fit on, 4 to predict."""
    return load_samples(read_mtfl(mtfl_root, "testing")[:12])


class Counting:
    """encode= for WarpCache.warped: the images themselves as maps, counting how many it was given."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, images: list[torch.Tensor]) -> torch.Tensor:
        self.seen += len(images)
        return torch.stack(images)


def test_an_image_gets_the_same_copies_whatever_else_is_in_the_set(faces) -> None:
    imgs, pts = faces
    alone, p_alone = WarpCache().warped(imgs[2:3], pts[2:3], encode=Counting(), encoding=(), seed=7, **WARP)
    mixed, p_mixed = WarpCache().warped([imgs[5], imgs[2], imgs[0]], pts[[5, 2, 0]], encode=Counting(), encoding=(),
                                        seed=7, **WARP)
    assert mixed.shape[0] == 9 and torch.equal(mixed[3:6], alone) and np.array_equal(p_mixed[3:6], p_alone)
    assert not torch.equal(mixed[0:3], mixed[3:6])  # another image, other copies
    other, _ = WarpCache().warped(imgs[2:3], pts[2:3], encode=Counting(), encoding=(), seed=8, **WARP)
    assert not torch.equal(other, alone)  # another seed, other copies
    assert [not torch.equal(alone[i], alone[j]) for i, j in ((0, 1), (1, 2))] == [True, True]


def test_the_cache_encodes_each_image_once_per_seed_options_and_encoding(faces) -> None:
    imgs, pts = faces
    cache, enc = WarpCache(), Counting()
    first, _ = cache.warped(imgs[:2], pts[:2], encode=enc, encoding=("a",), seed=0, **WARP)
    assert enc.seen == 6 and len(cache) == 2
    again, _ = cache.warped(imgs[:4], pts[:4], encode=enc, encoding=("a",), seed=0, **WARP)
    assert enc.seen == 6 + 6 and torch.equal(again[:6], first)  # only images 2 and 3 were new
    cache.warped(imgs[:1], pts[:1], encode=enc, encoding=("b",), seed=0, **WARP)  # another encoding: a miss
    cache.warped(imgs[:1], pts[:1], encode=enc, encoding=("a",), seed=1, **WARP)  # another seed: a miss
    cache.warped(imgs[:1], pts[:1], encode=enc, encoding=("a",), seed=0, **{**WARP, "tps": 0.1})  # other warps
    assert enc.seen == 12 + 9 and len(cache) == 7
    moved = pts[:1].copy()
    moved[0, 0, 0] += 1.0  # the same pixels with another label: other copies
    cache.warped(imgs[:1], moved, encode=enc, encoding=("a",), seed=0, **WARP)
    assert enc.seen == 24
    cache.clear()
    assert len(cache) == 0


def test_nested_fits_sharing_a_cache_equal_fits_without(r18, faces) -> None:
    """As hyperland eval fits: the originals' features (one PCA) extracted once, the images passed for the warps."""
    imgs, pts = faces
    feats = LandmarkHead(5, progress=False).encode_for(r18, imgs[:8])
    cache = WarpCache()
    for n in (4, 8):  # hyperland eval's nested subsets of one seed
        shared = LandmarkHead(5, random_state=3, progress=False).fit(r18, imgs[:n], pts[:n], features=feats[:n],
                                                                     warp_cache=cache)
        alone = LandmarkHead(5, random_state=3, progress=False).fit(r18, imgs[:n], pts[:n], features=feats[:n])
        a, ca = shared.predict(imgs[8:], return_confidence=True)
        b, cb = alone.predict(imgs[8:], return_confidence=True)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ca, cb)
        assert shared.selection_ == alone.selection_
    assert len(cache) == 8  # each image warped and encoded once
    other = LandmarkHead(5, random_state=3, progress=False).fit(r18, imgs[:4], pts[:4], warp_cache=cache)
    assert other.projection_.key != shared.projection_.key and len(cache) == 12  # its own PCA: its own copies
