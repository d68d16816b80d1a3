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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .heads.geometry import gaussian_log_prior, window_soft_argmax
from .hypercolumn import grid_centers
from .images import Images, as_list, load_image

if TYPE_CHECKING:
    from .model import HyperlandModel

BASELINES = ("mean shape", "HOG → ridge", "ridge probe", "pixel classifier")
HOG_CELL = 8
PIXEL_CS = (0.01, 0.1, 1.0)  # logistic regression's inverse regularisation, chosen on held-out images
PIXEL_ROWS = 100_000  # training cells per fit: every landmark cell, background cells sampled (and re-weighted)
PIXEL_WINDOW = 3  # cells of the local soft-argmax around the argmax
PRIOR_STD_ONE_IMAGE = 0.3  # normalised units: the shape prior's spread when one labelled image cannot give it


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


@dataclass
class PixelClassifier:
    """Per-cell logistic regression (class 0: background, k + 1: landmark k) + a Gaussian shape prior."""

    weight: torch.Tensor  # (K + 1, D) on standardised descriptors
    bias: torch.Tensor  # (K + 1,)
    mean: torch.Tensor  # (D,) descriptor standardisation
    scale: torch.Tensor  # (D,)
    prior_mean: torch.Tensor  # (K, 2) normalised
    prior_std: torch.Tensor  # (K,)
    C: float

    def log_probs(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) maps → (B, K, H*W) log-probability of each landmark at each cell."""
        x = (maps.float().flatten(2).transpose(1, 2) - self.mean) / self.scale  # (B, HW, D)
        return torch.log_softmax(x @ self.weight.T + self.bias, dim=-1)[..., 1:].transpose(1, 2)

    def __call__(self, maps: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """(B, D, H, W) maps → (B, K, 2) normalised landmarks."""
        grid = (int(maps.shape[-2]), int(maps.shape[-1]))
        prior = gaussian_log_prior(self.prior_mean, self.prior_std, grid)
        out = [window_soft_argmax(self.log_probs(maps[i:i + batch_size]) + prior, grid, window=PIXEL_WINDOW)[0]
               for i in range(0, len(maps), batch_size)]
        return torch.cat(out)


def _cell_labels(targets: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(N, K, 2) normalised targets → (N, H*W) class per cell: k + 1 at landmark k's nearest cell, else 0."""
    n, k, _ = targets.shape
    cells = grid_centers(grid)
    labels = torch.zeros(n, grid[0] * grid[1], dtype=torch.long)
    for j in range(k):
        ok = torch.isfinite(targets[:, j]).all(-1)
        near = ((cells[None] - torch.nan_to_num(targets[:, j])[:, None]) ** 2).sum(-1).argmin(-1)  # (N,)
        labels[ok.nonzero().squeeze(1), near[ok]] = j + 1
    return labels


def _fit_logistic(maps: torch.Tensor, targets: torch.Tensor, c: float, rng: np.random.Generator) -> PixelClassifier:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    k = targets.shape[1]
    labels = _cell_labels(targets, grid).ravel().numpy()
    pos = np.flatnonzero(labels > 0)
    neg = np.flatnonzero(labels == 0)
    take = min(len(neg), max(PIXEL_ROWS - len(pos), len(pos)))
    neg_take = np.sort(rng.choice(neg, take, replace=False))
    rows = np.concatenate([pos, neg_take])
    weight = np.concatenate([np.ones(len(pos)), np.full(take, len(neg) / max(take, 1))])
    x_all = maps.float().flatten(2).transpose(1, 2).reshape(-1, maps.shape[1])  # (N*HW, D)
    x = x_all[torch.from_numpy(rows)].double()
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    x = ((x - mean) / scale).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr = LogisticRegression(C=c, max_iter=300).fit(x, labels[rows], sample_weight=weight / weight.mean())
    w = np.zeros((k + 1, x.shape[1]))
    b = np.full(k + 1, -1e4)  # a landmark never labelled (missing everywhere) gets no probability
    w[lr.classes_] = lr.coef_ if len(lr.classes_) > 2 else np.concatenate([-lr.coef_, lr.coef_]) / 2
    b[lr.classes_] = lr.intercept_ if len(lr.classes_) > 2 else np.concatenate([-lr.intercept_, lr.intercept_]) / 2
    pmean = torch.nanmean(targets.float(), dim=0)  # (K, 2)
    count = torch.isfinite(targets).all(-1).sum(0)  # (K,)
    var = torch.nanmean((targets.float() - pmean) ** 2, dim=0).mean(-1) * count / (count - 1).clamp_min(1)
    cell = 2.0 / max(grid)
    std = torch.where(count >= 2, var.clamp_min(0).sqrt().clamp_min(cell), torch.tensor(PRIOR_STD_ONE_IMAGE))
    return PixelClassifier(torch.from_numpy(w).float(), torch.from_numpy(b).float(), mean.float(),
                           scale.float(), pmean, std.float(), c)


def fit_pixel_classifier(maps: torch.Tensor, targets: torch.Tensor, *, random_state: int = 0) -> PixelClassifier:
    """Fit the pixel-classifier baseline on (N, D, H, W) descriptor maps and (N, K, 2) normalised targets (NaN:
    missing). ``C`` is chosen from :data:`PIXEL_CS` by the mean point error on 20 % of the images held out
    (from 5 images on; below that ``C`` = 1)."""
    rng = np.random.default_rng(random_state)
    n = len(maps)
    c_best = 1.0
    if n >= 5:
        perm = rng.permutation(n)
        held, kept = perm[: max(1, round(0.2 * n))], perm[max(1, round(0.2 * n)):]
        t_held = targets[held]
        ok = torch.isfinite(t_held).all(-1)
        errors = {}
        for c in PIXEL_CS:
            pred = _fit_logistic(maps[kept], targets[kept], c, rng)(maps[held])
            errors[c] = float((pred - torch.nan_to_num(t_held)).norm(dim=-1)[ok].mean())
        c_best = min(PIXEL_CS, key=lambda c: errors[c])
    return _fit_logistic(maps, targets, c_best, rng)


__all__ = ["BASELINES", "PixelClassifier", "fit_pixel_classifier", "hog_features", "network_inputs",
           "pooled_hypercolumn"]
