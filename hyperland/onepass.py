"""One network pass that serves every consumer of every layer setting of a few-shot run (:func:`extract_once`,
called by :func:`hyperland.protocol.prepare`).

:func:`extract_once` sends each of those images through the network once, for the union of the layers every
:class:`Setting` reads, and derives from that one pass everything each setting's consumers read, each stored as
compactly as it is used:

* head descriptors (:class:`Descriptor`: the learned projection, or the PCA / raw hypercolumn of the setting's
  layers, average-pooled by the head's ``pool``), float16 maps as :func:`hyperland.features.encode` stores them;
* the ridge probe's input: the setting's raw hypercolumn average-pooled to 8 × 8 and flattened, float16, in a
  temporary file (:class:`hyperland._rowfile.RowFile`: 1.2 GB for lfwnet's 10,000 images, read back by blocks);
* HOG of the network input (no network, shared by every setting), float32.

The PCA images come first, in the order :func:`hyperland.features.fit_projection` reads them, and each setting
draws its cells from its own copy of the same random generator, so each setting's projection is the one
``fit_projection`` fits on the whole pool for its layers; the raw maps of images that are also labelled wait
(float32) until it is fitted. Every output is identical to extracting each setting and consumer separately:
hypercolumns do not depend on how images are batched, and the learned 1 × 1 projection runs on at least
:data:`MIN_PROJECTION_BATCH` images (zero-padded), because on one CPU thread PyTorch takes a
differently-rounding convolution kernel below that batch size.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._rowfile import RowFile
from .errors import InvalidOptionError
from .features import Features, Projection, descriptor_maps, pca_projection, projection_rows
from .hypercolumn import stack_layers
from .images import image_size as size_of

if TYPE_CHECKING:
    from PIL import Image

    from .model import HyperlandModel

logger = logging.getLogger(__name__)
MIN_PROJECTION_BATCH = 16
PROBE_GRID = 8  # the ridge probe's pooled grid (hyperland.heads.baselines.pooled_hypercolumn)


@dataclass(frozen=True)
class Descriptor:
    """The descriptor maps a head reads (:meth:`~hyperland.heads.LandmarkHead.descriptor_source`): the model's
    descriptor PCA (``"model_pca"``), its learned projection (``"learned"``) or the PCA of the setting's hypercolumn
    fitted in the pass (``"pca"``), average-pooled by ``pool``."""

    source: str
    pool: int

    @property
    def learned(self) -> bool:
        return self.source == "learned"


@dataclass(frozen=True)
class Setting:
    """What one layer setting reads from the pass: its heads' descriptors and, with ``probe``, the ridge probe's
    input, both of the hypercolumn of ``layers`` (None: the model's; learned descriptors read the projection's)."""

    layers: tuple[int, ...] | None = None
    descriptors: tuple[Descriptor, ...] = ()
    probe: bool = False


@dataclass
class Extracted:
    """One setting's outputs of :func:`extract_once`, one row per kept image, in the order of ``keep``."""

    descriptors: dict[Descriptor, Features]
    probe: RowFile | None  # (N, C·8·8) float16 (as the head descriptors: rel. L2 error 2e-4), in a temporary file
    hog: np.ndarray | None  # (N, F) float32, shared by every setting
    projection: Projection | None
    n_network: int  # images sent through the network (kept + PCA-only), once for every setting
    layers: tuple[int, ...]


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
        self.arrays[key][rows] = values.to("cpu", dtype)  # from the model's device: the run's store is in memory


class _Consumer:
    """One setting during the pass: its raw hypercolumn's PCA rows until its PCA is fitted, then its outputs."""

    def __init__(self, model: HyperlandModel, setting: Setting, *, n_keep: int, n_components: int,
                 rng: np.random.Generator) -> None:
        self.layers = tuple(model.layers if setting.layers is None else (int(i) for i in setting.layers))
        model.num_channels(self.layers)  # an InvalidLayerError before any image
        self.descriptors = list(dict.fromkeys(setting.descriptors))
        self.probe = setting.probe
        self.n_components = n_components
        self.use_pca = bool(n_components) and any(d.source == "pca" for d in self.descriptors)
        self.use_raw = self.probe or any(d.source == "pca" for d in self.descriptors)
        self.model_pca, self.pca_layers = model.pca, tuple(model.pca_layers or ())
        self.rng = copy.deepcopy(rng)  # the cells a run of this setting alone would draw
        self.rows_pca: list[torch.Tensor] = []
        self.waiting: list[tuple[int, torch.Tensor]] = []  # (row, raw maps) of kept PCA images, until the PCA
        self.proj: Projection | None = None
        self.store = _Store(n_keep)
        self.probe_rows: RowFile | None = None

    def fit_pca(self) -> None:
        if self.use_pca and self.proj is None:
            self.proj = pca_projection(self.rows_pca, n_components=self.n_components)
            self.rows_pca = []

    def take(self, feats: dict[int, torch.Tensor], sel: list[int], rows: list[int], learned: torch.Tensor | None,
             *, pca_chunk: bool, per_image: int) -> None:
        """One batch: ``feats`` of every image of the chunk; ``sel`` the kept ones, stored at ``rows``."""
        sample = pca_chunk and self.use_pca
        if not (sel or sample):
            return
        raw = _stack(feats, self.layers) if self.use_raw else None
        if sample:
            self.rows_pca += projection_rows(raw, per_image=per_image, rng=self.rng)  # type: ignore[arg-type]
        if not sel:
            return
        if raw is not None:
            raw = raw[sel]
            if self.probe:
                from .heads.ridge import readout_inputs

                x = readout_inputs(raw, PROBE_GRID).to("cpu", torch.float16).numpy()
                if self.probe_rows is None:
                    self.probe_rows = RowFile((self.store.n, x.shape[1]), np.float16)
                self.probe_rows.write(rows, x)
        shipped = None  # the hypercolumn of the model PCA's layers: the raw maps already stacked when they are those
        if any(d.source == "model_pca" for d in self.descriptors):
            shipped = raw if raw is not None and self.layers == self.pca_layers else \
                _stack({i: feats[i][sel] for i in self.pca_layers}, self.pca_layers)
        for d in self.descriptors:
            if d.learned:
                self.store.put(d, rows, descriptor_maps(learned, pool=d.pool), torch.float16)  # type: ignore[arg-type]
            elif d.source == "model_pca":
                self.store.put(d, rows, descriptor_maps(shipped, projection=self.model_pca, pool=d.pool),  # type: ignore[arg-type]
                               torch.float16)
            elif self.proj is not None or not self.use_pca:
                self.store.put(d, rows, descriptor_maps(raw, projection=self.proj, pool=d.pool), torch.float16)  # type: ignore[arg-type]
        if self.use_pca and self.proj is None:
            self.waiting += list(zip(rows, raw))  # type: ignore[arg-type]

    def finish(self, batch_size: int) -> None:
        """Fit the PCA if every chunk was a PCA chunk, then project the kept PCA images that waited for it."""
        self.fit_pca()
        for i in range(0, len(self.waiting), batch_size):
            part = self.waiting[i:i + batch_size]
            maps = torch.stack([m for _, m in part])
            for d in self.descriptors:
                if d.source == "pca":
                    self.store.put(d, [r for r, _ in part], descriptor_maps(maps, projection=self.proj, pool=d.pool),
                                   torch.float16)
        self.waiting.clear()


def extract_once(
    model: HyperlandModel,
    images: Sequence[Image.Image],
    *,
    settings: Sequence[Setting],
    hog: bool = False,
    keep: Sequence[int] | None = None,
    pca_on: Sequence[int] | np.ndarray = (),
    pca_rng: np.random.Generator | None = None,
    n_components: int = 128,
    per_image: int = 96,
    batch_size: int = 64,
    progress: bool | None = None,
) -> list[Extracted]:
    """One network pass over ``images`` for every consumer of every setting; outputs, one :class:`Extracted`
    per setting, for the positions ``keep`` (default all).

    Non-learned descriptors are projected onto the top ``n_components`` principal components of
    ``per_image`` random cells of each image at positions ``pca_on`` (drawn by a copy of ``pca_rng`` per
    setting, as :func:`hyperland.features.fit_projection` does); ``n_components=0`` keeps the raw hypercolumn.
    """
    from ._progress import progress_bar as _progress
    from .heads.baselines import hog_features

    keep = list(range(len(images))) if keep is None else [int(p) for p in keep]
    row_of = {p: r for r, p in enumerate(keep)}
    rng = pca_rng if pca_rng is not None else np.random.default_rng(0)
    users = [_Consumer(model, s, n_keep=len(keep), n_components=n_components, rng=rng) for s in settings]
    learned_layers = tuple(model.projection_layers or ()) if any(d.learned for u in users for d in u.descriptors) \
        else ()
    pca_first = [int(p) for p in pca_on] if any(u.use_pca for u in users) else []
    if any(u.use_pca for u in users) and not pca_first:
        raise InvalidOptionError("extract_once: a PCA descriptor (n_components > 0) needs pca_on=, the indices of the "
                                 "images the PCA is fitted on. Pass pca_on=, or n_components=0 for raw descriptors.")
    in_pca = set(pca_first)
    rest = [p for p in keep if p not in in_pca]
    chunks = [pca_first[i:i + batch_size] for i in range(0, len(pca_first), batch_size)]
    chunks += [rest[i:i + batch_size] for i in range(0, len(rest), batch_size)]
    n_pca_chunks = -(-len(pca_first) // batch_size)
    shipped = tuple(model.pca_layers or ()) if any(d.source == "model_pca" for u in users for d in u.descriptors) \
        else ()
    union = tuple(dict.fromkeys((*(i for u in users if u.use_raw for i in u.layers), *learned_layers, *shipped)))
    shared = _Store(len(keep))
    with _progress(len(pca_first) + len(rest), enabled=progress, desc="extract") as bar, torch.no_grad():
        for c, chunk in enumerate(chunks):
            if c == n_pca_chunks:
                for u in users:
                    u.fit_pca()
            sel = [j for j, p in enumerate(chunk) if p in row_of]
            rows = [row_of[chunk[j]] for j in sel]
            out = model.forward_features(model.preprocess([images[p] for p in chunk]), layers=union)
            feats = dict(zip(union, out))
            learned = _project(model, _stack({i: feats[i][sel] for i in learned_layers}, learned_layers)) \
                if learned_layers and sel else None
            for u in users:
                u.take(feats, sel, rows, learned, pca_chunk=c < n_pca_chunks, per_image=per_image)
            bar.update(len(chunk))
            if hog and sel:
                shared.put("hog", rows, torch.from_numpy(hog_features(model, [images[chunk[j]] for j in sel])),
                           torch.float32)
        for u in users:
            u.finish(batch_size)
    sizes = [size_of(images[p]) for p in keep]
    hog_x = shared.arrays["hog"].numpy() if "hog" in shared.arrays else None
    n = len(pca_first) + len(rest)
    logger.info("extracted %d images once for %d setting(s) (%d kept, %d for the PCA only)", n, len(users),
                len(keep), n - len(keep))
    out_list = []
    for u in users:
        arrays = u.store.arrays
        layers_of = {"learned": learned_layers, "model_pca": shipped}
        proj_of = {"learned": None, "model_pca": model.pca}
        feats_out = {d: Features(arrays[d], sizes, model.fingerprint, layers_of.get(d.source, u.layers),
                                 model.config.input_size, proj_of.get(d.source, u.proj), d.learned)
                     for d in u.descriptors if d in arrays}
        out_list.append(Extracted(feats_out, u.probe_rows, hog_x, u.proj, n, u.layers))
    return out_list


__all__ = ["MIN_PROJECTION_BATCH", "Descriptor", "Extracted", "Setting", "extract_once"]
