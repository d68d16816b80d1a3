"""Baselines printed beside every evaluation, as small estimators (scikit-learn's ``dummy.py``): a head or feature
that does not clearly beat these has not learned landmarks.

Each is selected by an identifier (:data:`BASELINES`) and shown by its ``display`` name in the tables. All see
the image exactly as the network does (resize to ``resize``, crop ``border`` → the input square):
``fit(x, targets)`` on (N, K, 2) normalised input coordinates (NaN: missing) and ``predict(x)`` → (M, K, 2)
normalised, mapped back to each image's pixels like the heads' output. ``reads`` names the input ``x``:

* ``mean_shape`` ("mean shape", reads nothing but the count of ``x``): the labelled images' average normalised
  shape, placed in every test frame;
* ``hog_ridge`` ("HOG → ridge", reads :func:`hog_features`): scikit-image HOG of the grey input (8 px cells, 9
  orientations, 2×2 blocks) → scikit-learn RidgeCV (:func:`hyperland.heads.ridge.fit_readout`, the same readout
  as the default head);
* ``ridge_probe`` ("ridge probe", reads :func:`pooled_hypercolumn`): the model's raw hypercolumn (L2 per layer)
  average-pooled to 8×8, flattened → the same RidgeCV;
* ``pixel_classifier`` ("pixel classifier", reads the default head's descriptor maps): a per-cell scikit-learn
  logistic regression (K landmark classes + background; the cell holding each labelled point is that landmark's,
  every other cell is background), plus a Gaussian shape prior per landmark (the labelled points' mean and
  spread); the landmark is the argmax of log-probability + log-prior, then a soft-argmax in the 3 × 3 cells
  around it. Its inverse regularisation ``C`` is chosen on 20 % of the labelled images held out (from 5 on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import gaussian_log_prior, window_soft_argmax
from ..images import Images, as_list, load_image
from ..preprocess import resize_crop
from .cells import CellClassifier, fit_cell_classifiers, point_errors, shape_prior
from .ridge import Readout, fit_readout

if TYPE_CHECKING:
    from .._rowfile import Rows
    from ..model import HyperlandModel

HOG_CELL = 8
PIXEL_CS = (0.01, 0.1, 1.0)  # logistic regression's inverse regularisation, chosen on held-out images
PIXEL_ROWS = 100_000  # training cells per fit: every landmark cell, background cells sampled (and re-weighted)
PIXEL_WINDOW = 3  # cells of the local soft-argmax around the argmax
PREDICT_ROWS = 1024  # rows of a ridge baseline's input read at a time to predict


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


class Baseline:
    """What every baseline has: ``display`` (its name in the tables), ``reads`` (the input ``x`` it reads: "hog",
    "probe", "descriptors", or None for no input but the count of its rows), ``draws`` (whether its fit draws
    with ``random_state``: one that does not is the same estimator on the same labelled set in any order) and
    ``random_state``. ``fit(x, targets, rows=...)`` fits on the rows ``rows`` of ``x`` (default all), in the order
    of ``targets``, without copying a large ``x`` where the estimator can avoid it."""

    display: ClassVar[str]
    reads: ClassVar[str | None]
    draws: ClassVar[bool] = False

    def __init__(self, *, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, x: Any, targets: torch.Tensor, *, rows: np.ndarray | None = None) -> Baseline:
        raise NotImplementedError

    def predict(self, x: Any) -> torch.Tensor:
        raise NotImplementedError


class MeanShape(Baseline):
    """The labelled images' average shape (NaN-aware), whatever the input: scikit-learn's
    ``DummyRegressor(strategy="mean")`` for landmarks."""

    display: ClassVar[str] = "mean shape"
    reads: ClassVar[str | None] = None

    def fit(self, x: Any, targets: torch.Tensor, *, rows: np.ndarray | None = None) -> MeanShape:
        """``x`` is not read; ``targets`` (N, K, 2) normalised, NaN: missing → ``shape_`` (K, 2)."""
        self.shape_ = torch.nanmean(targets, dim=0)
        return self

    def predict(self, x: Any) -> torch.Tensor:
        """(len(x), K, 2): the mean shape for every row of ``x``."""
        return self.shape_.expand(len(x), -1, -1)


class HogRidge(Baseline):
    """RidgeCV from :func:`hog_features` (N, F) to the normalised coordinates (:func:`.ridge.fit_readout`)."""

    display: ClassVar[str] = "HOG → ridge"
    reads: ClassVar[str | None] = "hog"

    def fit(self, x: Rows, targets: torch.Tensor, *, rows: np.ndarray | None = None) -> HogRidge:
        self.readout_: Readout = fit_readout(x, targets, rows=rows)
        return self

    def predict(self, x: Rows) -> torch.Tensor:
        """(M, K, 2) from ``x`` (M, F), read :data:`PREDICT_ROWS` rows at a time."""
        parts = [self.readout_(x[np.arange(i, min(i + PREDICT_ROWS, len(x)))])
                 for i in range(0, len(x), PREDICT_ROWS)]
        return torch.cat(parts) if parts else self.readout_(np.zeros((0, x.shape[1]), np.float32))


class RidgeProbe(HogRidge):
    """RidgeCV from :func:`pooled_hypercolumn` (N, C·8·8) to the normalised coordinates; the protocol stores its
    input as float16 in a temporary file (:class:`hyperland._rowfile.RowFile`), which the solver reads by
    blocks of rows."""

    display: ClassVar[str] = "ridge probe"
    reads: ClassVar[str | None] = "probe"


class PixelClassifier(Baseline):
    """The per-cell classifier of :mod:`hyperland.heads.cells` + a Gaussian shape prior around the mean shape, on
    (N, D, H, W) descriptor maps. ``C`` is chosen from :data:`PIXEL_CS` by the mean point error on 20 % of the
    images held out (from 5 images on; below that ``C`` = 1), drawn with ``random_state``."""

    display: ClassVar[str] = "pixel classifier"
    reads: ClassVar[str | None] = "descriptors"
    draws: ClassVar[bool] = True

    def fit(self, maps: torch.Tensor, targets: torch.Tensor, *, rows: np.ndarray | None = None) -> PixelClassifier:
        index = np.arange(len(maps)) if rows is None else np.asarray(rows)  # the maps are read, never copied whole
        rng = np.random.default_rng(self.random_state)
        grid = (int(maps.shape[-2]), int(maps.shape[-1]))
        n = len(index)
        c_best = 1.0
        if n >= 5:
            perm = rng.permutation(n)
            held, kept = perm[: max(1, round(0.2 * n))], perm[max(1, round(0.2 * n)):]
            prior = shape_prior(targets[kept], grid)
            errors = {}
            for clf in fit_cell_classifiers(maps, targets[kept], PIXEL_CS, rng=rng, max_rows=PIXEL_ROWS,
                                            index=index[kept]):
                errors[clf.C] = float(point_errors(_locate(clf, prior, maps[index[held]]), targets[held]).mean())
            c_best = min(PIXEL_CS, key=lambda c: errors[c])
        self.classifier_ = fit_cell_classifiers(maps, targets, [c_best], rng=rng, max_rows=PIXEL_ROWS,
                                                index=index)[0]
        self.prior_mean_, self.prior_std_ = shape_prior(targets, grid)  # (K, 2) normalised, (K,)
        return self

    def predict(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) maps → (B, K, 2) normalised landmarks."""
        return _locate(self.classifier_, (self.prior_mean_, self.prior_std_), maps)


def _locate(classifier: CellClassifier, prior: tuple[torch.Tensor, torch.Tensor], maps: torch.Tensor, *,
            batch_size: int = 256) -> torch.Tensor:
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    log_prior = gaussian_log_prior(prior[0], prior[1], grid)
    out = [window_soft_argmax(classifier.log_probs(maps[i:i + batch_size]) + log_prior, grid,
                              window=PIXEL_WINDOW)[0] for i in range(0, len(maps), batch_size)]
    return torch.cat(out)


BASELINES: dict[str, type[Baseline]] = {  # identifier → estimator, in the order the tables show them
    "mean_shape": MeanShape, "hog_ridge": HogRidge, "ridge_probe": RidgeProbe, "pixel_classifier": PixelClassifier,
}


__all__ = ["BASELINES", "Baseline", "HogRidge", "MeanShape", "PixelClassifier", "RidgeProbe", "hog_features",
           "network_inputs", "pooled_hypercolumn"]
