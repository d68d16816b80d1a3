"""The default head: a global ridge readout of the descriptor map, refined per landmark by a linear filter.

Coarse: scikit-learn ridge regression (RidgeCV, its efficient leave-one-out choice of alpha per target) from
the descriptor map average-pooled to ``readout_grid`` × ``readout_grid`` and flattened, to the 2K normalised
coordinates. Missing landmarks (NaN) are imputed with the mean of that coordinate for this fit.

Fine: for every landmark a linear filter scores each descriptor cell (ridge regression, in closed form, of a
Gaussian bump of one cell's width around the labelled point, on every cell of every labelled map). A new map's
landmark is the soft-argmax, in a window around its best cell, of ``scores / tau`` plus a Gaussian log-prior of
width ``prior_std`` centred on the coarse estimate. ``tau``, ``prior_std`` and whether to refine at all are
chosen on held-out labelled images (:func:`select`), never on test data; the share of the posterior inside the
window is the landmark's confidence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..hypercolumn import grid_centers
from .geometry import gaussian_log_prior, window_soft_argmax

ALPHAS = tuple(float(a) for a in np.logspace(-4, 2, 13))  # × mean squared row norm of the design matrix
TAUS = (0.01, 0.02, 0.05)
PRIOR_STDS = (0.05, 0.1, 0.2, 0.4)
DEFAULT_TAU, DEFAULT_PRIOR_STD = 0.02, 0.3  # fewer than two labelled images: nothing to validate on
FILTER_SIGMA = 1.0  # cells
WINDOW = 5  # cells


def readout_inputs(maps: torch.Tensor, grid: int) -> np.ndarray:
    """(N, D, H, W) → (N, D·grid²) float32: the map average-pooled to grid × grid, flattened."""
    return F.adaptive_avg_pool2d(maps.float(), grid).flatten(1).numpy()


@dataclass
class Readout:
    """Linear map (coef (2K, F), intercept (2K,)) from pooled descriptors to normalised coordinates."""

    coef: torch.Tensor
    intercept: torch.Tensor
    alpha: list[float]

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        out = torch.from_numpy(x).float() @ self.coef.T + self.intercept
        return out.view(len(x), -1, 2)


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


def fit_filters(maps: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.1) -> torch.Tensor:
    """(D + 1, K) linear filters (last row: bias) scoring each cell of (N, D, H, W) maps as a Gaussian bump
    around the (N, K, 2) normalised targets; images where a landmark is missing do not train its filter.
    ``alpha`` shrinks the filter weights, relative to the descriptors' mean per-channel second moment."""
    n, d, h, w = maps.shape
    k = targets.shape[1]
    cells = grid_centers((h, w))
    step = 2.0 / max(h, w)
    gram = torch.zeros(k, d + 1, d + 1, dtype=torch.float64)
    rhs = torch.zeros(k, d + 1, dtype=torch.float64)
    ok = torch.isfinite(targets).all(-1)  # (N, K)
    for i0 in range(0, n, 64):
        x = maps[i0:i0 + 64].float().flatten(2).transpose(1, 2)  # (b, HW, D)
        xa = torch.cat([x, torch.ones(*x.shape[:2], 1)], dim=-1).double()
        g = xa.transpose(1, 2) @ xa  # (b, D+1, D+1)
        t = torch.nan_to_num(targets[i0:i0 + 64].float())
        d2 = ((cells[None, :, None] - t[:, None]) ** 2).sum(-1) / step ** 2  # (b, HW, K) in cells²
        y = torch.exp(-d2 / (2 * FILTER_SIGMA ** 2)).double()
        m = ok[i0:i0 + 64].double()  # (b, K)
        gram += torch.einsum("bk,bij->kij", m, g)
        rhs += torch.einsum("bk,bij,bjk->ki", m, xa.transpose(1, 2), y)
    count = ok.sum(0).clamp_min(1).double() * h * w
    a = gram / count.view(k, 1, 1)
    b = rhs / count.view(k, 1)
    scale = a[:, :d, :d].diagonal(dim1=1, dim2=2).mean(-1)  # (K,) mean per-channel second moment
    reg = torch.eye(d + 1, dtype=torch.float64).expand(k, -1, -1) * (alpha * scale).view(k, 1, 1)
    reg = reg.clone()
    reg[:, d, d] = 0.0  # the bias is not shrunk
    sol = torch.linalg.solve(a + reg, b.unsqueeze(-1))
    return sol.squeeze(-1).T.float()  # (D + 1, K)


def filter_scores(filters: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, K, H*W) filter responses of (B, D, H, W) maps."""
    x = maps.float().flatten(2)  # (B, D, HW)
    return torch.einsum("dk,bdn->bkn", filters[:-1], x) + filters[-1].view(1, -1, 1)


def refine(scores: torch.Tensor, coarse: torch.Tensor, grid: tuple[int, int], *, tau: float, prior_std: float,
           window: int = WINDOW) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior soft-argmax of ``scores / tau`` + a Gaussian log-prior at ``coarse``: (points, confidence).

    The filters were fitted to a bump of height 1 at the landmark and 0 elsewhere, so the confidence is the
    best filter response within one cell of the returned point, clipped to [0, 1]: near 1 where the filter sees
    its landmark, near 0 where it does not (even when the prior pins the point down)."""
    logits = scores / tau + gaussian_log_prior(coarse, prior_std, grid)
    xy, _ = window_soft_argmax(logits, grid, window=window)
    cells = grid_centers(grid, device=scores.device)
    step = 2.0 / torch.tensor([grid[1], grid[0]], dtype=cells.dtype, device=cells.device)
    near = ((cells - xy.unsqueeze(-2)).abs() / step <= 1.0).all(-1)  # (B, K, HW)
    conf = scores.masked_fill(~near, float("-inf")).amax(-1)
    return xy, torch.nan_to_num(conf, neginf=0.0).clamp(0.0, 1.0)


@dataclass(frozen=True)
class Choice:
    refine: bool
    tau: float
    prior_std: float
    val_error: float | None  # mean normalised point error of the choice on held-out images (None: defaults)
    folds: int


def _errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ok = torch.isfinite(target).all(-1)
    return (pred - torch.nan_to_num(target)).norm(dim=-1)[ok]


def select(maps: torch.Tensor, pooled: np.ndarray, targets: torch.Tensor, groups: np.ndarray, *, filter_alpha: float, refine_mode: bool | str, rng: np.random.Generator, max_folds: int = 5,
           single_split_from: int = 50) -> Choice:
    """Choose (refine, tau, prior_std) by the mean normalised point error on held-out labelled images.

    Images (``groups``: augmented copies share their original's group and fold) are split into
    ``min(#groups, max_folds)`` folds, or one 20 % split from ``single_split_from`` groups on; with a single
    labelled image there is nothing to hold out and the defaults are used."""
    ids = np.unique(groups)
    if refine_mode is False:
        return Choice(False, DEFAULT_TAU, DEFAULT_PRIOR_STD, None, 0)
    if len(ids) < 2:
        return Choice(refine_mode is not False, DEFAULT_TAU, DEFAULT_PRIOR_STD, None, 0)
    perm = rng.permutation(ids)
    if len(ids) >= single_split_from:
        folds = [perm[: max(1, round(0.2 * len(ids)))]]
    else:
        folds = [perm[i::min(len(ids), max_folds)] for i in range(min(len(ids), max_folds))]
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    options = [(False, DEFAULT_TAU, DEFAULT_PRIOR_STD)] if refine_mode == "auto" else []
    options += [(True, t, s) for t in TAUS for s in PRIOR_STDS]
    errs: dict[tuple[bool, float, float], list[torch.Tensor]] = {o: [] for o in options}
    for held in folds:
        val = np.isin(groups, held) & _originals(groups)
        tr = ~np.isin(groups, held)
        readout = fit_readout(pooled[tr], targets[tr])
        coarse = readout(pooled[val])
        scores = filter_scores(fit_filters(maps[tr], targets[tr], alpha=filter_alpha), maps[val])
        for o in options:
            pred = refine(scores, coarse, grid, tau=o[1], prior_std=o[2])[0] if o[0] else coarse
            errs[o].append(_errors(pred, targets[val]))
    mean = {o: float(torch.cat(v).mean()) for o, v in errs.items()}
    best = min(options, key=lambda o: mean[o])
    return Choice(best[0], best[1], best[2], mean[best], len(folds))


def _originals(groups: np.ndarray) -> np.ndarray:
    """True for the first row of each group (the labelled image itself, not an augmented copy)."""
    first = np.zeros(len(groups), dtype=bool)
    _, idx = np.unique(groups, return_index=True)
    first[idx] = True
    return first


__all__ = ["Choice", "Readout", "filter_scores", "fit_filters", "fit_readout", "readout_inputs", "refine", "select"]
