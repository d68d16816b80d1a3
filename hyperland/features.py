"""Precomputed, compact hypercolumns for landmark heads: a PCA :class:`Projection` and :class:`Features`.

A ResNet hypercolumn has 960 (R18) to 3,840 (R50) channels on a 24×24 grid at 96 px: 2–9 MB per image in
float32, so 10,000 training images would need 22–88 GB. :func:`encode` instead streams extraction batch by
batch, projects every descriptor onto the top principal components of the pool (a :class:`Projection`
fitted by :func:`fit_projection` on a random subset of descriptors) and stores the result in float16:
128 components × 24 × 24 × 2 bytes = 147 KB per image, 1.5 GB for 10,000 images. The projection is linear,
so a linear head on projected features is a linear head on the hypercolumn restricted to its principal
subspace; it is saved with the head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidOptionError
from .images import Images, as_list, image_size

if TYPE_CHECKING:
    from .model import HyperlandModel

Size = tuple[int, int]
Index = int | slice | Sequence[int] | np.ndarray
STORE_DTYPE = torch.float16  # encode()'s default precision of the stored maps (what a head's predict reads)


@dataclass(frozen=True)
class Projection:
    """Centre and project hypercolumn descriptors: ``(x - mean) @ components.T`` → (..., D)."""

    mean: torch.Tensor  # (C,) float32
    components: torch.Tensor  # (D, C) float32, orthonormal rows
    explained: float = 1.0  # fraction of the sampled variance the D components keep

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.components.shape[1])

    @property
    def key(self) -> str:
        """Short content hash: features and heads must agree on it."""
        h = hashlib.sha256(self.components.detach().cpu().float().numpy().tobytes())
        h.update(self.mean.detach().cpu().float().numpy().tobytes())
        return h.hexdigest()[:12]

    def apply(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, D, H, W) in float32."""
        comp = self.components.to(maps.device)
        mean = self.mean.to(maps.device)
        x = maps.float() - mean.view(1, -1, 1, 1)
        return torch.matmul(comp, x.flatten(2)).unflatten(2, x.shape[2:])  # 1.6x einsum's speed, same values


def projection_sample(n_images: int, *, max_images: int = 256, rng: np.random.Generator) -> np.ndarray:
    """The positions (ascending) of the images :func:`fit_projection` reads: all ``n_images``, or ``max_images``
    of them drawn by ``rng`` (which then goes on to draw the grid cells)."""
    if n_images > max_images:
        return np.asarray(sorted(rng.choice(n_images, max_images, replace=False)), dtype=np.int64)
    return np.arange(n_images, dtype=np.int64)


def projection_rows(maps: torch.Tensor, *, per_image: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """``per_image`` random descriptors (rows of C) of each (C, H, W) map of a (b, C, H, W) batch, in order."""
    flat = maps.float().flatten(2).transpose(1, 2)  # (b, HW, C)
    take = min(per_image, flat.shape[1])
    return [f[torch.from_numpy(rng.choice(f.shape[0], take, replace=False))] for f in flat]


def pca_projection(rows: Sequence[torch.Tensor], *, n_components: int) -> Projection:
    """The top ``n_components`` principal components of the stacked descriptor ``rows`` (float64 PCA)."""
    x = torch.cat(list(rows)).double()
    mean = x.mean(0)
    x -= mean
    cov = x.T @ x / max(1, x.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    d = min(n_components, x.shape[1])
    explained = float(evals[:d].sum() / evals.sum().clamp_min(1e-30))
    return Projection(mean=mean.float(), components=evecs[:, :d].T.contiguous().float(), explained=explained)


def fit_projection(
    model: HyperlandModel,
    images: Images,
    *,
    n_components: int = 128,
    layers: Sequence[int] | None = None,
    max_images: int = 256,
    per_image: int = 96,
    random_state: int | None = 0,
    progress: bool | None = None,
) -> Projection:
    """PCA of hypercolumn descriptors at ``per_image`` random grid cells of up to ``max_images`` images
    (:func:`projection_sample`, :func:`projection_rows`, :func:`pca_projection`)."""
    items = as_list(images)
    rng = np.random.default_rng(random_state)
    items = [items[i] for i in projection_sample(len(items), max_images=max_images, rng=rng)]
    rows: list[torch.Tensor] = []
    for maps in model.iter_extract(items, layers=layers, progress=progress, batch_size=64):
        rows += projection_rows(maps, per_image=per_image, rng=rng)
    return pca_projection(rows, n_components=n_components)


@dataclass
class Features:
    """Per-image feature maps of one model: ``maps`` (N, D, H, W), each image's original (H, W) in ``sizes``.

    ``maps`` are projected by ``projection`` when it is set (else the raw hypercolumn). Index with a list of
    positions (``features[[0, 5, 7]]``) to reuse one extraction across shots, seeds and heads.
    """

    maps: torch.Tensor
    sizes: list[Size]
    fingerprint: str
    layers: tuple[int, ...]
    input_size: int
    projection: Projection | None = None
    learned: bool = False  # maps are the model's learned projection (extract(projected=True))

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    def __getitem__(self, index: Index) -> Features:
        if isinstance(index, int):
            index = [index]
        if isinstance(index, slice):
            idx = list(range(len(self)))[index]
        else:
            idx = [int(i) for i in np.asarray(index).reshape(-1)]
        run = bool(idx) and idx == list(range(idx[0], idx[0] + len(idx)))  # consecutive: a view, not a copy
        maps = self.maps[idx[0]:idx[0] + len(idx)] if run else self.maps[idx]
        return Features(maps, [self.sizes[i] for i in idx], self.fingerprint, self.layers, self.input_size,
                        self.projection, self.learned)

    @property
    def channels(self) -> int:
        return int(self.maps.shape[1])

    @property
    def grid(self) -> Size:
        return int(self.maps.shape[-2]), int(self.maps.shape[-1])

    @staticmethod
    def concat(parts: Sequence[Features]) -> Features:
        first = parts[0]
        return Features(torch.cat([p.maps for p in parts]), [s for p in parts for s in p.sizes], first.fingerprint,
                        first.layers, first.input_size, first.projection, first.learned)


def encode_batch(model: HyperlandModel, x: torch.Tensor, *, layers: Sequence[int] | None = None,
                 projection: Projection | None = None, pool: int = 1, size: Size | None = None,
                 learned: bool = False) -> torch.Tensor:
    """Descriptor maps of one preprocessed batch (:meth:`HyperlandModel.prepare`), as :func:`encode` computes them
    before storing them in its ``dtype``; pure tensor ops, also run by a head's ONNX graph."""
    maps = model.hypercolumn(x, layers=None if learned else layers, size=size, projected=learned)
    return descriptor_maps(maps, projection=projection, pool=pool)


def descriptor_maps(maps: torch.Tensor, *, projection: Projection | None = None, pool: int = 1) -> torch.Tensor:
    """One batch of hypercolumns (b, C, H, W) as :func:`encode` stores it, before the cast: projected by
    ``projection`` (when given) and average-pooled by ``pool`` (ceil mode)."""
    part = projection.apply(maps) if projection is not None else maps
    return F.avg_pool2d(part.float(), pool, ceil_mode=True) if pool > 1 else part


def encode(
    model: HyperlandModel,
    images: Images,
    *,
    layers: Sequence[int] | None = None,
    projection: Projection | None = None,
    pool: int = 1,
    size: Size | None = None,
    dtype: torch.dtype = STORE_DTYPE,
    batch_size: int = 64,
    progress: bool | None = None,
    learned: bool = False,
) -> Features:
    """Extract every image once on the ``size`` grid (default: the finest selected layer's; e.g. (48, 48) at
    96 px upsamples every layer), project (when ``projection`` is given, or by the model's learned projection
    with ``learned=True``) and average-pool the grid by ``pool`` while streaming, and store in ``dtype``."""
    if learned and projection is not None:
        raise InvalidOptionError("encode: projection= (PCA) and learned=True were both given; pass one of them.")
    if learned:
        layers = model.projection_layers
    items = as_list(images)
    sizes = [image_size(im) for im in items]
    out: torch.Tensor | None = None
    for pos, x in model.preprocessed_batches(items, batch_size=batch_size, progress=progress):
        part = encode_batch(model, x, layers=layers, projection=projection, pool=pool, size=size, learned=learned)
        if out is None:  # stored on the CPU, where the heads run, whatever the model's device
            out = torch.empty((len(items), *part.shape[1:]), dtype=dtype)
        out[pos:pos + part.shape[0]] = part.to("cpu", dtype)
    assert out is not None
    used = tuple(layers) if layers is not None else model.layers
    return Features(out, sizes, model.fingerprint, tuple(int(i) for i in used), model.config.input_size, projection,
                    learned)


__all__ = ["STORE_DTYPE", "Features", "Projection", "descriptor_maps", "encode", "encode_batch",
           "fit_projection", "pca_projection", "projection_rows", "projection_sample"]
