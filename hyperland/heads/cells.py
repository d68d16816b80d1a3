"""Per-cell landmark classifier and Gaussian shape prior, shared by the default head and the pixel baseline.

Every cell of a descriptor map is one sample: the cell nearest to labelled landmark k is class k + 1, every
other cell is background (class 0). A multinomial logistic regression on the standardised descriptors
(:func:`multinomial_logistic`: scikit-learn's objective, torch's L-BFGS) scores each cell; its log-probability
of class k + 1 is landmark k's score map. All landmark cells are kept and the background cells are sampled down
to ``max_rows`` and re-weighted by the inverse of their sampling rate, so the probabilities stay those of the
full grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..hypercolumn import grid_centers

MAX_ROWS = 60_000
PRIOR_STD_ONE_IMAGE = 0.3  # normalised units: the shape prior's spread when one labelled image cannot give it


@dataclass
class CellClassifier:
    """``matrix`` (D + 1, K + 1): logits of [background, landmark 1..K] = [descriptor, 1] @ matrix."""

    matrix: torch.Tensor
    C: float

    def log_probs(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) maps → (B, K, H*W) log-probability of each landmark at each cell."""
        x = maps.float().flatten(2).transpose(1, 2)  # (B, HW, D)
        logits = x @ self.matrix[:-1] + self.matrix[-1]
        return torch.log_softmax(logits, dim=-1)[..., 1:].transpose(1, 2)


def landmark_cells(targets: torch.Tensor, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) normalised targets → the flat cell index ``n · H·W + cell`` of every labelled landmark's
    nearest cell and its class ``k + 1``, ordered by cell, then class. Landmarks nearer than one cell to each
    other may share a cell: each keeps its own row (one cell, several classes), none overwrites another."""
    n, k, _ = targets.shape
    near = ((grid_centers(grid)[None, None] - torch.nan_to_num(targets)[:, :, None]) ** 2).sum(-1).argmin(-1)
    ok = torch.isfinite(targets).all(-1).numpy()  # (N, K)
    flat = (np.arange(n)[:, None] * (grid[0] * grid[1]) + near.numpy())[ok]
    classes = np.broadcast_to(np.arange(1, k + 1), (n, k))[ok]
    order = np.lexsort((classes, flat))
    return flat[order], classes[order]


def fit_cell_classifiers(maps: torch.Tensor, targets: torch.Tensor, cs: Sequence[float], *,
                         rng: np.random.Generator, max_rows: int = MAX_ROWS, index: np.ndarray | None = None,
                         init: CellClassifier | None = None) -> list[CellClassifier]:
    """One :class:`CellClassifier` per inverse regularisation in ``cs`` (fitted in that order, each warm-started
    from the previous) on (M, D, H, W) maps and (N, K, 2) normalised targets (NaN: missing) of the maps
    ``index`` (N,) (default all): only the sampled cells are read, the maps are not copied.

    ``init``: a classifier of the same K and D (e.g. fitted on a validation fold of the same images) that the
    first fit starts from instead of zeros. The objective is strictly convex, so only the path to its minimum
    changes (the result agrees to the solver's tolerance, which can still move a choice made on a handful of
    held-out images); measured on the 68-point head: about half the L-BFGS steps at a fold's first ``C``, few
    saved at ``C`` = 1."""
    grid = (int(maps.shape[-2]), int(maps.shape[-1]))
    k, d = targets.shape[1], maps.shape[1]
    hw = grid[0] * grid[1]
    pos, pos_classes = landmark_cells(targets, grid)
    free = np.ones(len(targets) * hw, bool)
    free[pos] = False
    neg = np.flatnonzero(free)  # background: the cells with no landmark
    take = min(len(neg), max(max_rows - len(pos), len(pos)))
    rows = np.concatenate([pos, np.sort(rng.choice(neg, take, replace=False))])
    classes = np.concatenate([pos_classes, np.zeros(take, np.int64)])
    weight = np.concatenate([np.ones(len(pos)), np.full(take, len(neg) / max(take, 1))])
    image = rows // hw if index is None else np.asarray(index)[rows // hw]
    x = maps.flatten(2)[torch.from_numpy(image), :, torch.from_numpy(rows % hw)].double()  # (R, D)
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    present = np.unique(classes)  # a landmark never labelled gets no column (and no probability anywhere)
    start = None
    if init is not None and tuple(init.matrix.shape) != (d + 1, k + 1):
        raise ValueError(f"fit_cell_classifiers: init has a {tuple(init.matrix.shape)} matrix; these maps and targets "
                         f"need ({d + 1}, {k + 1}) (D + 1, K + 1)")
    if init is not None:  # its logits, in these standardised units
        w0, b0 = init.matrix[:-1].double().T[present], init.matrix[-1].double()[present]  # (P, D), (P,)
        start = ((w0 * scale).float(), (b0 + w0 @ mean).float())
    fits = multinomial_logistic(((x - mean) / scale).float(), torch.from_numpy(np.searchsorted(present, classes)),
                                torch.from_numpy(weight / weight.mean()).float(), cs, init=start)
    out = []
    for c, (coef, icpt) in zip(cs, fits):
        w = torch.zeros(k + 1, d, dtype=torch.float64)
        b = torch.full((k + 1,), -1e4, dtype=torch.float64)
        w[present], b[present] = coef.double(), icpt.double()
        w_t = w / scale  # fold the standardisation into the weights
        b_t = b - w_t @ mean
        out.append(CellClassifier(torch.cat([w_t.T, b_t[None]]).float(), float(c)))
    return out


def multinomial_logistic(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, cs: Sequence[float], *,
                         max_iter: int = 200, tol: float = 1e-4,
                         init: tuple[torch.Tensor, torch.Tensor] | None = None
                         ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """L2-regularised multinomial logistic regression of (R, D) float rows on classes ``y`` (R,) in 0..P-1 with
    sample weights (R,): per ``C`` of ``cs``, warm-started in that order, the coefficients (P, D) and
    intercepts (P,) that minimise scikit-learn's ``LogisticRegression`` objective
    ``(sum_i w_i CE_i + |coef|^2 / (2 C)) / sum_i w_i`` (symmetric over the P classes, intercepts free).

    Solved with torch's L-BFGS (strong Wolfe line search; scikit-learn's lbfgs settings: 10 corrections, stop at
    a gradient entry below ``tol`` or after ``max_iter`` iterations) in float32: scikit-learn's own solver works
    in float64 on one core and took 4x longer on 60,000 cells × 69 classes (the 68-point head). ``init``
    (coefficients (P, D), intercepts (P,)): where the first ``C`` starts (default zeros)."""
    classes = int(y.max()) + 1
    params = torch.zeros(x.shape[1] + 1, classes, dtype=x.dtype)  # [coef.T; intercept]
    if init is not None:
        params[:-1], params[-1] = init[0].T.to(x.dtype), init[1].to(x.dtype)
    total = float(weight.sum())
    # Class-major layout, gradient by hand: autograd's x.T @ grad on row-major (R, D) rows was 5x slower than
    # this (D, R) @ (R, P) product, and a softmax over the class axis of (P, R) logits is 20x cheaper than over
    # the last axis of (R, P) (measured at R = 60,000, D = 128, P = 6 on 2 cores).
    # One exponential pass serves the loss and the gradient (logsumexp and softmax separately took 44 against
    # 33 ms an evaluation at P = 69, the 68-point head; equal at P = 6), and the true class's w_i is subtracted
    # at its row only, instead of a dense one-hot (P, R) target.
    xt = x.T.contiguous()  # (D, R)
    weight = weight.to(x.dtype)
    neg_w = -weight[None]  # (1, R)
    out = []
    for c in cs:
        opt = torch.optim.LBFGS([params], lr=1.0, max_iter=max_iter, history_size=10, tolerance_grad=tol,
                                tolerance_change=1e-9, line_search_fn="strong_wolfe")

        def objective(c: float = c) -> torch.Tensor:
            coef = params[:-1]
            logits = torch.addmm(params[-1][:, None], coef.T, xt)  # (P, R)
            top = logits.amax(0)
            e = torch.sub(logits, top).exp_()
            norm = e.sum(0)
            ce = weight * (top + norm.log() - logits.gather(0, y[None])[0])  # w_i CE_i per row, then the sum
            loss = (ce.sum() + coef.pow(2).sum() / (2 * c)) / total  # (float32: the sum first lost precision)
            resid = e.mul_(weight / norm).scatter_add_(0, y[None], neg_w)  # d(sum_i w_i CE_i) / d logits
            grad = torch.empty_like(params)
            torch.mm(xt, resid.T, out=grad[:-1])
            grad[:-1].add_(coef, alpha=1 / c)
            grad[-1] = resid.sum(1)
            params.grad = grad.div_(total)
            return loss

        opt.step(objective)
        fitted = params
        out.append((fitted[:-1].T.clone(), fitted[-1].clone()))
    return out


def point_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean errors (normalised units) of the (N, K, 2) predictions at the labelled (finite) targets."""
    ok = torch.isfinite(target).all(-1)
    return (pred - torch.nan_to_num(target)).norm(dim=-1)[ok]


def labelled_images(targets: torch.Tensor, groups: np.ndarray | None = None) -> torch.Tensor:
    """(K,) how many labelled images label each landmark of (N, K, 2) targets (NaN: missing); ``groups`` (N,) names
    each row's image (augmented copies share their original's, and count once)."""
    ok = torch.isfinite(targets).all(-1)  # (N, K)
    if groups is None:
        return ok.sum(0)
    return torch.tensor([len(np.unique(groups[ok[:, j].numpy()])) for j in range(ok.shape[1])])


def label_share(targets: torch.Tensor, groups: np.ndarray | None = None) -> torch.Tensor:
    """(K,) float: each landmark's labelled images over the best-labelled landmark's (1 everywhere with full
    labels; 0 for a landmark labelled nowhere)."""
    images = labelled_images(targets, groups).float()
    return images / images.max().clamp_min(1)


def shape_prior(targets: torch.Tensor, grid: tuple[int, int], *, groups: np.ndarray | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-landmark Gaussian over the labelled values of (N, K, 2) normalised targets (NaN: missing): mean
    (K, 2) and spread (K,) (RMS over x and y, at least one cell).

    A landmark labelled in fewer than two images gets the spread :data:`PRIOR_STD_ONE_IMAGE`; ``groups`` (N,)
    names the image each row comes from (augmented copies share their original's), so that the copies of one
    image do not count as several. A landmark labelled nowhere (possible in a held-out fold) sits at the frame
    centre with that spread."""
    ok = torch.isfinite(targets).all(-1)  # (N, K)
    mean = torch.nan_to_num(torch.nanmean(targets.float(), dim=0))
    count = ok.sum(0)
    var = torch.nanmean((targets.float() - mean) ** 2, dim=0).mean(-1) * count / (count - 1).clamp_min(1)
    images = labelled_images(targets, groups)
    cell = 2.0 / max(grid)
    std = torch.where(images >= 2, torch.nan_to_num(var).clamp_min(0).sqrt().clamp_min(cell),
                      torch.tensor(PRIOR_STD_ONE_IMAGE))
    return mean, std.float()


__all__ = ["MAX_ROWS", "PRIOR_STD_ONE_IMAGE", "CellClassifier", "fit_cell_classifiers", "label_share",
           "labelled_images", "landmark_cells", "multinomial_logistic", "point_errors", "shape_prior"]
