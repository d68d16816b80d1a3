"""What one few-shot run needs, read once: the labelled subsets it draws and one network pass over their union.

A run fits every head and baseline on labelled subsets of the pool (``shots`` × ``seeds``, drawn by
:func:`draw_subsets`) and scores them on the test set, so only the union of those subsets and the test images
are ever looked at (the whole pool only when a shot count is "all"), plus, when a descriptor is a PCA of the
hypercolumn, the unlabelled pool images that PCA is fitted on (:func:`hyperland.features.projection_sample`).

:func:`extract_once` sends each of those images through the network once and derives from that one pass
everything the run's consumers read, each stored as compactly as it is used:

* head descriptors (:class:`Descriptor`: the learned projection, or the PCA / raw hypercolumn, average-pooled
  by the head's ``pool``), float16 maps as :func:`hyperland.features.encode` stores them;
* the ridge probe's input: the raw hypercolumn average-pooled to 8 × 8 and flattened, float32 (not the maps);
* HOG of the network input (no network), float32.

The PCA images come first, in the order :func:`hyperland.features.fit_projection` reads them, with the same
random draws, so the projection is the one ``fit_projection`` fits on the whole pool; the raw maps of images
that are also labelled wait (float32) until it is fitted. Every output is identical to extracting each
consumer separately: hypercolumns do not depend on how images are batched, and the learned 1 × 1 projection
runs on at least :data:`MIN_PROJECTION_BATCH` images (zero-padded), because on one CPU thread PyTorch takes a
differently-rounding convolution kernel below that batch size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from .features import Features, Projection, descriptor_maps, pca_projection, projection_rows
from .hypercolumn import stack_layers
from .images import image_size

if TYPE_CHECKING:
    from PIL import Image

    from .model import HyperlandModel

logger = logging.getLogger(__name__)
Shots = int | Literal["all"]
MIN_PROJECTION_BATCH = 16
PROBE_GRID = 8  # the ridge probe's pooled grid (hyperland.heads.baselines.pooled_hypercolumn)


@dataclass(frozen=True)
class Subset:
    """One labelled subset of the pool: the first ``shots`` of seed ``seed``'s permutation (all for "all")."""

    shots: Shots
    seed: int
    index: np.ndarray  # positions in the pool


def draw_subsets(n_pool: int, *, shots: Sequence[Shots], seeds: int) -> list[Subset]:
    """Every (seed, shots) subset in run order; subsets of one seed are nested. Shot counts above the pool
    are skipped with a warning."""
    out = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(n_pool)
        for n in shots:
            if n != "all" and int(n) > n_pool:
                logger.warning("shots=%s exceeds the pool (%d images); skipped.", n, n_pool)
                continue
            out.append(Subset("all" if n == "all" else int(n), seed, order if n == "all" else order[: int(n)]))
    return out


def labelled_union(subsets: Sequence[Subset]) -> np.ndarray:
    """Ascending pool positions that any subset labels."""
    return np.unique(np.concatenate([s.index for s in subsets])) if subsets else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Descriptor:
    """The descriptor maps a head reads: the model's learned projection or the (PCA of the) hypercolumn,
    average-pooled by ``pool``."""

    learned: bool
    pool: int


@dataclass
class Extracted:
    """Outputs of :func:`extract_once`, one row per kept image, in the order of ``keep``."""

    descriptors: dict[Descriptor, Features]
    probe: np.ndarray | None = None  # (N, C·8·8) float32
    hog: np.ndarray | None = None  # (N, F) float32
    projection: Projection | None = None
    n_network: int = 0  # images sent through the network (kept + PCA-only)
    layers: tuple[int, ...] = field(default_factory=tuple)


def _project(model: HyperlandModel, hyper: torch.Tensor) -> torch.Tensor:
    """The learned projection of a batch, computed as for a batch of at least MIN_PROJECTION_BATCH images."""
    n = int(hyper.shape[0])
    if n >= MIN_PROJECTION_BATCH:
        return model.project(hyper)
    pad = hyper.new_zeros((MIN_PROJECTION_BATCH - n, *hyper.shape[1:]))
    return model.project(torch.cat([hyper, pad]))[:n]


def _stack(feats: dict[int, torch.Tensor], layers: Sequence[int]) -> torch.Tensor:
    maps = [feats[i] for i in layers]
    grid = (max(f.shape[-2] for f in maps), max(f.shape[-1] for f in maps))
    return stack_layers(maps, size=(int(grid[0]), int(grid[1])), normalize="l2")


class _Store:
    """Rows of each output, allocated on the first batch."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrays: dict[object, torch.Tensor] = {}

    def put(self, key: object, rows: list[int], values: torch.Tensor, dtype: torch.dtype) -> None:
        if key not in self.arrays:
            self.arrays[key] = torch.empty((self.n, *values.shape[1:]), dtype=dtype)
        self.arrays[key][rows] = values.to(dtype)


def extract_once(
    model: HyperlandModel,
    images: Sequence[Image.Image],
    *,
    descriptors: Sequence[Descriptor],
    layers: Sequence[int] | None = None,
    probe: bool = False,
    hog: bool = False,
    keep: Sequence[int] | None = None,
    pca_on: Sequence[int] | np.ndarray = (),
    pca_rng: np.random.Generator | None = None,
    n_components: int = 128,
    per_image: int = 96,
    batch_size: int = 64,
    progress: bool | None = None,
) -> Extracted:
    """One network pass over ``images`` for every consumer; outputs for the positions ``keep`` (default all).

    Non-learned descriptors are projected onto the top ``n_components`` principal components of
    ``per_image`` random cells of each image at positions ``pca_on`` (drawn by ``pca_rng``, as
    :func:`hyperland.features.fit_projection` does); ``n_components=0`` keeps the raw hypercolumn.
    """
    from .heads.baselines import hog_features
    from .heads.ridge import readout_inputs
    from .model import _progress

    keep = list(range(len(images))) if keep is None else [int(p) for p in keep]
    row_of = {p: r for r, p in enumerate(keep)}
    descriptors = list(dict.fromkeys(descriptors))
    raw_layers = tuple(model.layers if layers is None else (int(i) for i in layers))
    model.num_channels(raw_layers)  # an InvalidLayerError before any image
    learned_layers = tuple(model.projection_layers or ()) if any(d.learned for d in descriptors) else ()
    use_pca = bool(n_components) and any(not d.learned for d in descriptors)
    use_raw = probe or any(not d.learned for d in descriptors)
    pca_first = [int(p) for p in pca_on] if use_pca else []
    if use_pca and not pca_first:
        raise ValueError("extract_once: a PCA descriptor needs pca_on= (the images the PCA is fitted on).")
    rng = pca_rng if pca_rng is not None else np.random.default_rng(0)
    in_pca = set(pca_first)
    rest = [p for p in keep if p not in in_pca]
    chunks = [pca_first[i:i + batch_size] for i in range(0, len(pca_first), batch_size)]
    chunks += [rest[i:i + batch_size] for i in range(0, len(rest), batch_size)]
    n_pca_chunks = -(-len(pca_first) // batch_size)
    union = tuple(dict.fromkeys((*(raw_layers if use_raw else ()), *learned_layers)))
    store = _Store(len(keep))
    rows_pca: list[torch.Tensor] = []
    waiting: list[tuple[int, torch.Tensor]] = []  # (row, raw maps) of kept PCA images, until the PCA is fitted
    proj: Projection | None = None
    with _progress(len(pca_first) + len(rest), enabled=progress, desc="extract") as bar, torch.no_grad():
        for c, chunk in enumerate(chunks):
            if use_pca and c == n_pca_chunks:
                proj = pca_projection(rows_pca, n_components=n_components)
            sel = [j for j, p in enumerate(chunk) if p in row_of]
            rows = [row_of[chunk[j]] for j in sel]
            out = model.forward_features(model.preprocess([images[p] for p in chunk]), layers=union)
            feats = dict(zip(union, out))
            raw = _stack(feats, raw_layers) if use_raw else None
            if use_pca and proj is None:
                rows_pca += projection_rows(raw, per_image=per_image, rng=rng)  # type: ignore[arg-type]
            bar.update(len(chunk))
            if not sel:
                continue
            if raw is not None:
                raw = raw[sel]
                if probe:
                    store.put("probe", rows, readout_inputs(raw, PROBE_GRID), torch.float32)
            learned = _project(model, _stack({i: feats[i][sel] for i in learned_layers}, learned_layers)) \
                if learned_layers else None
            for d in descriptors:
                if d.learned:
                    store.put(d, rows, descriptor_maps(learned, pool=d.pool), torch.float16)  # type: ignore[arg-type]
                elif proj is not None or not use_pca:
                    store.put(d, rows, descriptor_maps(raw, projection=proj, pool=d.pool), torch.float16)  # type: ignore[arg-type]
            if use_pca and proj is None:
                waiting += list(zip(rows, raw))  # type: ignore[arg-type]
            if hog:
                store.put("hog", rows, torch.from_numpy(hog_features(model, [images[chunk[j]] for j in sel])),
                          torch.float32)
        if use_pca and proj is None:
            proj = pca_projection(rows_pca, n_components=n_components)
        for i in range(0, len(waiting), batch_size):
            part = waiting[i:i + batch_size]
            maps = torch.stack([m for _, m in part])
            for d in descriptors:
                if not d.learned:
                    store.put(d, [r for r, _ in part], descriptor_maps(maps, projection=proj, pool=d.pool),
                              torch.float16)
    waiting.clear()
    sizes = [image_size(images[p]) for p in keep]
    feats_out = {d: Features(store.arrays[d], sizes, model.fingerprint, learned_layers if d.learned else raw_layers,
                             model.config.input_size, None if d.learned else proj, d.learned)
                 for d in descriptors if d in store.arrays}
    probe_x = store.arrays["probe"].numpy() if "probe" in store.arrays else None
    hog_x = store.arrays["hog"].numpy() if "hog" in store.arrays else None
    n = len(pca_first) + len(rest)
    logger.info("extracted %d images once (%d kept, %d for the PCA only)", n, len(keep), n - len(keep))
    return Extracted(feats_out, probe_x, hog_x, proj, n, raw_layers)


__all__ = [
    "MIN_PROJECTION_BATCH",
    "Descriptor",
    "Extracted",
    "Subset",
    "draw_subsets",
    "extract_once",
    "labelled_union",
]
