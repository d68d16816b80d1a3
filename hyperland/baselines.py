"""Baselines printed beside every evaluation: the mean shape, HOG → ridge and the hypercolumn ridge probe.

A head or feature that does not clearly beat these has not learned landmarks. All three see the image exactly
as the network does (resize to ``resize``, crop ``border`` → the input square) and predict normalised input
coordinates, mapped back to each image's pixels like the heads' output:

* mean shape: the labelled images' average normalised shape, placed in every test frame;
* HOG → ridge: scikit-image HOG of the grey input (8 px cells, 9 orientations, 2×2 blocks) → scikit-learn
  RidgeCV (:func:`hyperland.heads.ridge.fit_readout`, the same readout as the default head);
* ridge probe: the model's raw hypercolumn (L2 per layer) average-pooled to 8×8, flattened → the same RidgeCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .images import Images, as_list, load_image

if TYPE_CHECKING:
    from .model import HyperlandModel

BASELINES = ("mean shape", "HOG → ridge", "ridge probe")
HOG_CELL = 8


def network_inputs(model: HyperlandModel, images: Images) -> list[np.ndarray]:
    """Each image as the network sees it, before mean/std: (S, S) grey float arrays in [0, 1]."""
    out = []
    for img in as_list(images):
        x = model._resize_crop(load_image(img).unsqueeze(0))[0]  # (3, S, S)
        out.append((0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).cpu().numpy())
    return out


def hog_features(model: HyperlandModel, images: Images, *, cell: int = HOG_CELL) -> np.ndarray:
    """(N, F) float32 HOG descriptors of the network inputs (scikit-image)."""
    from skimage.feature import hog

    rows = [hog(g, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), block_norm="L2-Hys",
                feature_vector=True) for g in network_inputs(model, images)]
    return np.stack(rows).astype(np.float32)


def pooled_hypercolumn(model: HyperlandModel, images: Images, *, layers: Sequence[int] | None = None, grid: int = 8,
                       batch_size: int = 64, progress: bool | None = None) -> np.ndarray:
    """(N, C·grid²) float32: the raw hypercolumn average-pooled to grid × grid, flattened."""
    parts = [F.adaptive_avg_pool2d(m.float(), grid).flatten(1).cpu()
             for m in model.iter_extract(images, layers=layers, batch_size=batch_size, progress=progress)]
    return torch.cat(parts).numpy()


__all__ = ["BASELINES", "hog_features", "network_inputs", "pooled_hypercolumn"]
