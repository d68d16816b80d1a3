"""What one few-shot run needs, read once: its labelled subsets, their images and one network pass over them.

A run fits every head and baseline on labelled subsets of the pool (``shots`` × ``seeds``, drawn by
:func:`draw_subsets`) and scores them on the test set, so only the union of those subsets and the test images
are ever looked at (the whole pool only when a shot count is "all"), plus, when a descriptor is a PCA of the
hypercolumn, the unlabelled pool images that PCA is fitted on (:func:`hyperland.features.projection_sample`).
:func:`prepare` loads those images and the labels once (the whole-pool :func:`mean_shape` reads the labels
only) and makes one :func:`hyperland.onepass.extract_once` pass for every layer setting of the run (``eval
--layers-sweep``); that module describes what the pass derives and why it equals separate extractions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from .features import projection_sample
from .onepass import MIN_PROJECTION_BATCH, Descriptor, Extracted, Setting, extract_once

if TYPE_CHECKING:
    from PIL import Image

    from .data import Sample
    from .model import HyperlandModel

logger = logging.getLogger(__name__)
Shots = int | Literal["all"]


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


def mean_shape(model: HyperlandModel, points: np.ndarray, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(K, 2) average landmark position of pixel ``points`` (N, K, 2) of images of ``sizes``, in normalised
    network-input coordinates (NaN-aware): the mean-shape baseline, fitted on any labelled set."""
    from .geometry import pixels_to_normalised
    from .heads.baselines import MeanShape

    norm = pixels_to_normalised(model, torch.from_numpy(np.asarray(points, np.float32)), sizes)
    return MeanShape().fit(None, norm).shape_


@dataclass
class Prepared:
    """A run's inputs, read once for all its settings. Pool-side rows of each :class:`Extracted` are the
    ``labelled`` pool positions (ascending), then one row per test image."""

    subsets: list[Subset]
    labelled: np.ndarray
    images: dict[int, Image.Image]  # pool images by position, those of ``images_for`` (few-shot augmentation)
    pool_points: np.ndarray  # (N_pool, K, 2) pixels: every pool label
    pool_normalised: torch.Tensor  # the same in normalised network-input coordinates
    test_points: np.ndarray  # (N_test, K, 2) pixels
    test_images: list[Image.Image] | None  # kept for heads that predict from images (framing="object")
    mean_shape: torch.Tensor  # (K, 2) normalised: the whole pool's
    extracted: list[Extracted]  # one per setting
    load_seconds: float
    extract_seconds: float

    def rows(self, subset: Subset) -> np.ndarray:
        """Rows of the extracted outputs that hold ``subset``'s images."""
        return np.searchsorted(self.labelled, subset.index)


def prepare(
    model: HyperlandModel,
    pool: Sequence[Sample],
    test: Sequence[Sample],
    *,
    subsets: Sequence[Subset],
    settings: Sequence[Setting],
    hog: bool = False,
    image_size: int = 136,
    n_components: int = 128,
    progress: bool | None = None,
    images_for: np.ndarray | None = None,
    keep_test_images: bool = False,
) -> Prepared:
    """Load the images the run uses (``image_size`` px) and every label once, and extract them in one pass.

    The PCA images are drawn as :func:`hyperland.features.fit_projection` (``random_state=0``) draws them from
    the whole pool, when any setting has a PCA descriptor. The images of the pool positions ``images_for``
    (default: every labelled one) are kept for the heads that read them (few-shot augmentation); the others are
    dropped once extracted; the test images too, unless ``keep_test_images``."""
    from .data import load_samples
    from .data.base import sample_points
    from .geometry import pixels_to_normalised

    labelled = labelled_union(subsets)
    pca_rng = np.random.default_rng(0)  # fit_projection(pool images, random_state=0): images, then cells
    pca = n_components and any(d.source == "pca" for s in settings for d in s.descriptors)
    pca_idx = projection_sample(len(pool), rng=pca_rng) if pca else labelled[:0]
    need = np.union1d(labelled, pca_idx)  # every pool image this run looks at, ascending
    t0 = time.perf_counter()
    need_imgs, _ = load_samples([pool[i] for i in need], size=image_size) if len(need) else ([], None)
    test_imgs, test_pts = load_samples(test, size=image_size)
    pool_pts = sample_points(pool, size=image_size)  # all labels (no image decoded): the whole-pool mean shape
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pos = {int(i): j for j, i in enumerate(need)}
    extracted = extract_once(model, [*need_imgs, *test_imgs], settings=settings, hog=hog,
                             keep=[pos[int(i)] for i in labelled] + list(range(len(need), len(need) + len(test_imgs))),
                             pca_on=[pos[int(i)] for i in pca_idx], pca_rng=pca_rng, n_components=n_components,
                             progress=progress)
    t_extract = time.perf_counter() - t0
    frames = [(image_size, image_size)] * len(pool)
    kept = labelled if images_for is None else images_for
    return Prepared(list(subsets), labelled, {int(i): need_imgs[pos[int(i)]] for i in kept}, pool_pts,
                    pixels_to_normalised(model, torch.from_numpy(pool_pts), frames), test_pts,
                    test_imgs if keep_test_images else None, mean_shape(model, pool_pts, frames), extracted, t_load,
                    t_extract)


__all__ = [
    "MIN_PROJECTION_BATCH",
    "Descriptor",
    "Extracted",
    "Prepared",
    "Setting",
    "Subset",
    "draw_subsets",
    "extract_once",
    "labelled_union",
    "mean_shape",
    "prepare",
]
