"""Baselines printed beside every evaluation: the mean shape, HOG → ridge and the hypercolumn ridge probe.

A head or feature that does not clearly beat these has not learned landmarks. All three see the image exactly
as the network does (resize to ``resize``, crop ``border`` → the input square) and predict normalised input
coordinates, mapped back to each image's pixels like the heads' output:

* mean shape: the labelled images' average normalised shape, placed in every test frame;
* HOG → ridge: scikit-image HOG of the grey input (8 px cells, 9 orientations, 2×2 blocks) → scikit-learn
  RidgeCV (:func:`hyperland.heads.ridge.fit_readout`, the same readout as the default head);
* ridge probe: the model's raw hypercolumn (L2 per layer) average-pooled to 8×8, flattened → the same RidgeCV;
* pixel classifier: on the default head's descriptor maps, a per-cell scikit-learn logistic regression (K
  landmark classes + background; the cell holding each labelled point is that landmark's, every other cell is
  background), plus a Gaussian shape prior per landmark (the labelled points' mean and spread); the landmark is
  the argmax of log-probability + log-prior, then a soft-argmax in the 3 × 3 cells around it. Its inverse
  regularisation ``C`` is chosen on 20 % of the labelled images held out (from 5 images on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .heads.cells import CellClassifier, fit_cell_classifiers, point_errors, shape_prior
from .heads.geometry import gaussian_log_prior, window_soft_argmax
from .images import Images, as_list, load_image
from .preprocess import resize_crop

if TYPE_CHECKING:
    from .model import HyperlandModel

BASELINES = ("mean shape", "HOG → ridge", "ridge probe", "pixel classifier")
HOG_CELL = 8
PIXEL_CS = (0.01, 0.1, 1.0)  # logistic regression's inverse regularisation, chosen on held-out images
PIXEL_ROWS = 100_000  # training cells per fit: every landmark cell, background cells sampled (and re-weighted)
PIXEL_WINDOW = 3  # cells of the local soft-argmax around the argmax


def network_inputs(model: HyperlandModel, images: Images) -> list[np.ndarray]:
    """Each image as the network sees it, before mean/std: (S, S) grey float arrays in [0, 1]."""
    out = []
    for img in as_list(images):
        x = resize_crop(load_image(img).unsqueeze(0), model.config, device=model.device)[0]  # (3, S, S)
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


@dataclass
class PixelClassifier:
    """The per-cell classifier of :mod:`hyperland.heads.cells` + a Gaussian shape prior around the mean shape."""

    classifier: CellClassifier
    prior_mean: torch.Tensor  # (K, 2) normalised
    prior_std: torch.Tensor  # (K,)

    def __call__(self, maps: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """(B, D, H, W) maps → (B, K, 2) normalised landmarks."""
        grid = (int(maps.shape[-2]), int(maps.shape[-1]))
        prior = gaussian_log_prior(self.prior_mean, self.prior_std, grid)
        out = [window_soft_argmax(self.classifier.log_probs(maps[i:i + batch_size]) + prior, grid,
                                  window=PIXEL_WINDOW)[0] for i in range(0, len(maps), batch_size)]
        return torch.cat(out)


def fit_pixel_classifier(maps: torch.Tensor, targets: torch.Tensor, *, random_state: int = 0) -> PixelClassifier:
    """Fit the pixel-classifier baseline on (N, D, H, W) descriptor maps and (N, K, 2) normalised targets (NaN:
    missing). ``C`` is chosen from :data:`PIXEL_CS` by the mean point error on 20 % of the images held out
    (from 5 images on; below that ``C`` = 1)."""
    rng = np.random.default_rng(random_state)
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    n = len(maps)
    c_best = 1.0
    if n >= 5:
        perm = rng.permutation(n)
        held, kept = perm[: max(1, round(0.2 * n))], perm[max(1, round(0.2 * n)):]
        prior = shape_prior(targets[kept], grid)
        errors = {}
        for clf in fit_cell_classifiers(maps[kept], targets[kept], PIXEL_CS, rng=rng, max_rows=PIXEL_ROWS):
            errors[clf.C] = float(point_errors(PixelClassifier(clf, *prior)(maps[held]), targets[held]).mean())
        c_best = min(PIXEL_CS, key=lambda c: errors[c])
    clf = fit_cell_classifiers(maps, targets, [c_best], rng=rng, max_rows=PIXEL_ROWS)[0]
    return PixelClassifier(clf, *shape_prior(targets, grid))


__all__ = ["BASELINES", "PixelClassifier", "fit_pixel_classifier", "hog_features", "network_inputs",
           "pooled_hypercolumn"]
