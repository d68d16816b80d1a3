"""Few-shot warped copies of the labelled images, encoded once for a fit.

Each image's copies are drawn from its own generator, seeded by the fit's seed and the image's content (pixels
and points), so the same labelled image gets the same copies in every fit with that seed, whatever else is in
the set and in whatever order. That makes their encoding shareable: a :class:`WarpCache` passed to
``LandmarkHead.fit(warp_cache=)`` keeps the encoded copies of every image it has seen, and a later fit that
warps the same image the same way (same seed, warp options and encoding) reads them instead of warping and
encoding again. ``hyperland eval`` passes one per seed: its subsets of one seed are nested, so each labelled
image is warped and encoded once per seed instead of once per shot count. A fit's result is the same with or
without a cache (tested).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..images import ImageLike, load_image

Key = tuple[Any, ...]


def image_seed(seed: int, image: torch.Tensor, points: np.ndarray) -> int:
    """The generator seed of one labelled image's copies: a digest of the fit's ``seed``, the image's pixels and
    its points (63 bits)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.int64(seed).tobytes())
    h.update(np.ascontiguousarray(image.numpy(), np.float32).tobytes())
    h.update(np.ascontiguousarray(points, np.float32).tobytes())
    return int.from_bytes(h.digest(), "little") & (2**63 - 1)


def _warp_one(x: torch.Tensor, pts: np.ndarray, *, n: int, tps: float, rotation: float, scale: tuple[float, float],
              translate: float, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    from ..augment import warp

    p = torch.from_numpy(np.asarray(pts, np.float32)).unsqueeze(0).expand(n, -1, -1).contiguous()
    wi, wp = warp(x.unsqueeze(0).expand(n, -1, -1, -1), p, tps=tps, rotation=rotation, scale=scale,
                  translate=translate, generator=torch.Generator().manual_seed(seed))
    return wi.clamp(0, 1), wp.numpy().astype(np.float32)  # type: ignore[union-attr]


class WarpCache:
    """Encoded warped copies by (image and points, seed, warp options, encoding): share one across fits of the
    same seed that label overlapping images (``LandmarkHead.fit(warp_cache=)``). A fit with another seed, other
    warp options or another encoding never reads another's copies. Holds them until :meth:`clear`."""

    def __init__(self) -> None:
        self._items: dict[Key, tuple[torch.Tensor, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def warped(self, images: Sequence[ImageLike], points: np.ndarray, *, encode: Callable[[list[torch.Tensor]],
               torch.Tensor], encoding: Key, n: int, tps: float, rotation: float, scale: tuple[float, float],
               translate: float, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        """(maps (N·n, D, H, W), points (N·n, K, 2)) of the ``n`` TPS/affine-warped copies of every image,
        image-major, with its points moved consistently (NaN stays NaN): the copies this cache holds are read,
        the others warped (each image from its own generator: :func:`image_seed`), encoded in one call of
        ``encode`` and kept."""
        options = (n, float(tps), float(rotation), tuple(float(s) for s in scale), float(translate), encoding)
        keys: list[Key] = []
        todo: dict[Key, tuple[torch.Tensor, np.ndarray, int]] = {}
        for img, pts in zip(images, points):
            x = load_image(img)
            s = image_seed(seed, x, pts)
            keys.append((s, *options))
            if keys[-1] not in self._items:
                todo[keys[-1]] = (x, pts, s)
        if todo:
            warped = [_warp_one(x, pts, n=n, tps=tps, rotation=rotation, scale=scale, translate=translate, seed=s)
                      for x, pts, s in todo.values()]
            maps = encode([im for wi, _ in warped for im in wi.unbind(0)])
            for j, (key, (_, wp)) in enumerate(zip(todo, warped)):
                self._items[key] = (maps[j * n:(j + 1) * n], wp)
        got = [self._items[k] for k in keys]
        return torch.cat([m for m, _ in got]), np.concatenate([p for _, p in got])


__all__ = ["WarpCache", "image_seed"]
