"""The default head: a global ridge readout of the descriptor map, refined per landmark by a cell classifier.

Coarse: scikit-learn ridge regression (RidgeCV, its efficient leave-one-out choice of alpha per target) from
the descriptor map average-pooled to ``readout_grid`` × ``readout_grid`` and flattened, to the 2K normalised
coordinates. Missing landmarks (NaN) are imputed with the mean of that coordinate for this fit.

Fine: a multinomial logistic regression scores every descriptor cell as landmark k or background
(:mod:`.cells`). A new map's landmark is the soft-argmax, in the 3 × 3 cells around its best cell, of
``log p(k | cell) / tau`` plus a Gaussian log-prior centred on the coarse estimate or on the labelled mean shape.
The classifier's ``C``, the prior's centre and width, ``tau`` and whether to refine at all are chosen on
held-out labelled images (:func:`select`), never on test data; the classifier's probability at the returned
point is the landmark's confidence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..hypercolumn import grid_centers
from .cells import CellClassifier, fit_cell_classifiers, point_errors, shape_prior
from .geometry import gaussian_log_prior, window_soft_argmax

ALPHAS = tuple(float(a) for a in np.logspace(-4, 2, 13))  # × mean squared row norm of the design matrix
CS = (0.01, 0.1, 1.0)  # the cell classifier's inverse regularisation (on standardised descriptors)
TAUS = (0.5, 1.0, 2.0)  # temperature of the log-probabilities
PRIOR_STDS = (0.05, 0.1, 0.2, 0.4)  # prior width around the coarse estimate, normalised units
SHAPE_FACTORS = (0.5, 1.0, 2.0)  # prior width around the mean shape, × the labelled spread
DEFAULT_TAU, DEFAULT_PRIOR_STD, DEFAULT_C = 2.0, 0.3, 0.01  # one labelled image: nothing to validate on (these
# were chosen on a validation split of the aflw pool: 1-shot fits on its first 500 faces, scored on the other 500)
WINDOW = 3  # cells of the soft-argmax around the posterior's best cell


def readout_inputs(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, D, H, W) → (N, D·grid²) float32: the map average-pooled to grid × grid, flattened."""
    return F.adaptive_avg_pool2d(maps.float(), grid).flatten(1)


@dataclass
class Readout:
    """Linear map (coef (2K, F), intercept (2K,)) from pooled descriptors to normalised coordinates."""

    coef: torch.Tensor
    intercept: torch.Tensor
    alpha: list[float]

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        out = torch.as_tensor(x).float() @ self.coef.T + self.intercept
        return out.unflatten(-1, (-1, 2))


def fit_readout(x: np.ndarray, targets: torch.Tensor) -> Readout:
    """RidgeCV on (N, F) inputs and (N, K, 2) normalised targets (NaN imputed by the column mean)."""
    from sklearn.linear_model import RidgeCV

    y = targets.reshape(len(targets), -1).double().numpy()
    col = np.nanmean(y, axis=0)
    y = np.where(np.isnan(y), col, y)
    if len(x) < 2:  # one image: its shape is the estimate
        return Readout(torch.zeros(y.shape[1], x.shape[1]), torch.from_numpy(y.mean(0)).float(), [])
    scale = float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-conditioned solves at the smallest alphas are expected
        r = RidgeCV(alphas=[a * scale for a in ALPHAS], alpha_per_target=True).fit(x, y)
    alpha = np.atleast_1d(r.alpha_).tolist()
    return Readout(torch.from_numpy(np.asarray(r.coef_)).float(), torch.from_numpy(np.asarray(r.intercept_)).float(),
                   [a / scale for a in alpha])


def refine(log_probs: torch.Tensor, coarse: torch.Tensor, shape: tuple[torch.Tensor, torch.Tensor],
           grid: tuple[int, int], choice: Choice) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior soft-argmax of ``log_probs / tau`` + a Gaussian log-prior: (points (B, K, 2), confidence (B, K)).

    The prior is centred on the ``coarse`` readout (width ``prior_std``) or on the labelled mean shape (width
    ``prior_std`` × its per-landmark spread). The confidence is the classifier's probability of the landmark
    at the best cell within one cell of the returned point: near 1 where it sees its landmark, near 0 where it
    does not (even when the prior pins the point down)."""
    if choice.centre == "coarse":
        prior = gaussian_log_prior(coarse, choice.prior_std, grid)
    else:
        prior = gaussian_log_prior(shape[0], choice.prior_std * shape[1], grid)
    xy, _ = window_soft_argmax(log_probs / choice.tau + prior, grid, window=WINDOW)
    cells = grid_centers(grid, device=log_probs.device)
    step = 2.0 / torch.tensor([grid[1], grid[0]], dtype=cells.dtype, device=cells.device)
    near = ((cells - xy.unsqueeze(-2)).abs() / step <= 1.0).all(-1)  # (B, K, HW)
    conf = log_probs.masked_fill(~near, float("-inf")).amax(-1).exp()
    return xy, conf.clamp(0.0, 1.0)


@dataclass(frozen=True)
class Choice:
    refine: bool
    centre: str  # "coarse": the prior sits on the readout's estimate; "shape": on the labelled mean shape
    tau: float
    prior_std: float  # normalised units ("coarse") or a factor of the labelled spread ("shape")
    C: float  # the cell classifier's inverse regularisation
    val_error: float | None  # mean normalised point error of the choice on held-out images (None: defaults)
    folds: int

    def as_dict(self) -> dict[str, Any]:
        return {"refine": self.refine, "centre": self.centre, "tau": self.tau, "prior_std": self.prior_std,
                "C": self.C, "val_error": self.val_error, "folds": self.folds}

    @classmethod
    def from_dict(cls, sel: dict[str, Any]) -> Choice:
        """The decoding recorded in ``head.selection_`` / head.json (its extra keys are ignored)."""
        return cls(bool(sel["refine"]), str(sel["centre"]), float(sel["tau"]), float(sel["prior_std"]),
                   float(sel["C"]), sel.get("val_error"), int(sel.get("folds", 0)))


DEFAULT_CHOICE = Choice(True, "coarse", DEFAULT_TAU, DEFAULT_PRIOR_STD, DEFAULT_C, None, 0)


def predict(readout: Readout, classifier: CellClassifier, shape: tuple[torch.Tensor, torch.Tensor], choice: Choice,
            maps: torch.Tensor, *, readout_grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D, H, W) maps → (normalised points (B, K, 2), confidence (B, K)) of a fitted ridge head: torch only
    (``LandmarkHead.predict`` runs it batch by batch, and its ONNX graph runs it as is)."""
    coarse = readout(readout_inputs(maps, readout_grid))
    xy, conf = refine(classifier.log_probs(maps), coarse, shape, (int(maps.shape[-2]), int(maps.shape[-1])), choice)
    return (xy if choice.refine else coarse), conf


def select(maps: torch.Tensor, pooled: np.ndarray, targets: torch.Tensor, groups: np.ndarray, *,
           refine_mode: bool | str, rng: np.random.Generator, max_folds: int = 5, single_split_from: int = 50
           ) -> Choice:
    """Choose the classifier's ``C`` and the decoding (refine or not, prior centre and width, tau) by the mean
    normalised point error on held-out labelled images.

    Images (``groups``: augmented copies share their original's group and fold) are split into
    ``min(#groups, max_folds)`` folds, or one 20 % split from ``single_split_from`` groups on; with a single
    labelled image there is nothing to hold out and :data:`DEFAULT_CHOICE` is used."""
    ids = np.unique(groups)
    if refine_mode is False:
        return replace(DEFAULT_CHOICE, refine=False)
    if len(ids) < 2:
        return DEFAULT_CHOICE
    perm = rng.permutation(ids)
    if len(ids) >= single_split_from:
        folds = [perm[: max(1, round(0.2 * len(ids)))]]
    else:
        folds = [perm[i::min(len(ids), max_folds)] for i in range(min(len(ids), max_folds))]
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    decodings = [("coarse", t, s) for t in TAUS for s in PRIOR_STDS] + [("shape", t, f) for t in TAUS
                                                                        for f in SHAPE_FACTORS]
    options = [Choice(True, c, t, s, cc, None, len(folds)) for cc in CS for c, t, s in decodings]
    if refine_mode == "auto":
        options.append(replace(DEFAULT_CHOICE, refine=False, folds=len(folds)))
    errs: dict[Choice, list[torch.Tensor]] = {o: [] for o in options}
    for held in folds:
        val = np.isin(groups, held) & _originals(groups)
        tr = ~np.isin(groups, held)
        coarse = fit_readout(pooled[tr], targets[tr])(pooled[val])
        shape = shape_prior(targets[tr], grid)
        log_probs = {clf.C: clf.log_probs(maps[val]) for clf in fit_cell_classifiers(maps[tr], targets[tr], CS, rng=rng)}
        for o in options:
            pred = refine(log_probs[o.C], coarse, shape, grid, o)[0] if o.refine else coarse
            errs[o].append(point_errors(pred, targets[val]))
    mean = {o: float(torch.cat(v).mean()) for o, v in errs.items()}
    best = min(options, key=lambda o: mean[o])
    return replace(best, val_error=mean[best])


def _originals(groups: np.ndarray) -> np.ndarray:
    """True for the first row of each group (the labelled image itself, not an augmented copy)."""
    first = np.zeros(len(groups), dtype=bool)
    _, idx = np.unique(groups, return_index=True)
    first[idx] = True
    return first


__all__ = ["DEFAULT_CHOICE", "Choice", "Readout", "fit_readout", "predict", "readout_inputs", "refine", "select"]
