"""Ridge regression with its exact leave-one-out choice of alpha (scikit-learn ``RidgeCV``'s), its input read in blocks.

scikit-learn's ``RidgeCV`` (generalised cross-validation, one alpha per target) casts the design matrix to float64
and centres a copy of it: for the ridge probe on all 8,000 ``lfwnet`` pool faces, (8000, 61440) float32 features,
that is two 3.9 GB copies on top of the 2 GB input. :func:`ridge_gcv` computes the same estimator from the
(N, N) Gram matrix of the centred rows, accumulated in float64 one block of rows at a time, so that the input is
never copied whole: the same alphas are chosen and the coefficients agree to float32 precision (tested against
``RidgeCV``). It is used where N <= F, where ``RidgeCV`` itself works on the Gram matrix; tall inputs use
:func:`ridge_gcv_primal`, the same estimator in covariance form, also block by block.

Algebra (``RidgeCV``'s, with unit sample weights): with the centred rows X and targets Y, K = X Xᵀ = Q diag(v) Qᵀ;
for each alpha, D = (v + alpha)⁻¹, dual coefficients C = Q D Qᵀ Y, leave-one-out residuals C / d with
d = diag(Q D Qᵀ) − (Q D Qᵀ 1) / N (the intercept is not penalised); coefficients Xᵀ C of the best alpha per
target (the first of equal scores, as ``RidgeCV``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .._rowfile import Rows

BLOCK = 256  # rows converted to float64 at a time (two blocks of 61,440 features: 250 MB)


def block(x: Rows, rows: np.ndarray, start: int) -> np.ndarray:
    """A float64 copy of the rows ``rows[start:start + BLOCK]`` of ``x``."""
    return x[rows[start:start + BLOCK]].astype(np.float64)


def blocks(x: Rows, rows: np.ndarray) -> Iterator[np.ndarray]:
    """:func:`block` after block of the rows ``rows`` of ``x``."""
    for start in range(0, len(rows), BLOCK):
        yield block(x, rows, start)


def centred(x: Rows, rows: np.ndarray, mean: np.ndarray, start: int) -> np.ndarray:
    """:func:`block` minus ``mean`` (in place: one copy)."""
    out = block(x, rows, start)
    out -= mean
    return out


def mean_square_norm(x: Rows, rows: np.ndarray) -> float:
    """The mean squared L2 norm of the rows ``rows`` of ``x``, in float64, block by block."""
    return float(sum(float(np.sum(b ** 2)) for b in blocks(x, rows)) / len(rows))


def ridge_gcv(x: Rows, y: np.ndarray, alphas: Sequence[float], *, rows: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, F) inputs (any float dtype; an array or a :class:`~hyperland._rowfile.RowFile`), of which the N rows
    ``rows`` (default all) are fitted, and (N, T) targets → coef (T, F), intercept (T,) and each target's alpha
    (T,), all float64; the alpha of each target minimises its exact leave-one-out squared error."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    n = len(rows)
    y = np.asarray(y, np.float64)
    mean = sum(b.sum(0) for b in blocks(x, rows)) / n
    gram = np.empty((n, n))
    for i in range(0, n, BLOCK):
        xi = centred(x, rows, mean, i)
        for j in range(0, i + 1, BLOCK):
            prod = xi @ (xi if j == i else centred(x, rows, mean, j)).T
            gram[i:i + BLOCK, j:j + BLOCK] = prod
            gram[j:j + BLOCK, i:i + BLOCK] = prod.T
    import scipy.linalg

    # the default driver (syevr) writes the eigenvectors into a second (N, N) array; syev would write them over
    # the input, but took over 5 minutes at N = 8,000 on 2 cores, where syevr takes about one. LAPACK reads
    # Fortran order: the symmetric Gram's transpose is that view, where the C-ordered array would be copied first
    eig, q = scipy.linalg.eigh(gram.T, overwrite_a=True)
    del gram
    y_mean = y.mean(0)
    qty, qt1 = q.T @ (y - y_mean), q.sum(0)
    d_inv = 1.0 / (eig[:, None] + np.asarray(alphas, np.float64)[None])  # (N, A)
    # diag(Q D Qᵀ) for every alpha, by blocks of rows of Q: Q² whole would be another (N, N) float64 array
    diags = np.concatenate([q[i:i + BLOCK] ** 2 @ d_inv for i in range(0, n, BLOCK)]) - (q @ (d_inv * qt1[:, None])) / n
    best = np.full(y.shape[1], -np.inf)
    dual, chosen = np.zeros_like(y), np.zeros(y.shape[1])
    for a, alpha in enumerate(alphas):
        c = q @ (d_inv[:, a, None] * qty)
        diag = diags[:, a]
        score = -np.mean((c / diag[:, None]) ** 2, axis=0)
        better = score > best
        best[better], dual[:, better], chosen[better] = score[better], c[:, better], alpha
    coef = np.zeros((y.shape[1], x.shape[1]))
    for i in range(0, n, BLOCK):
        coef += dual[i:i + BLOCK].T @ centred(x, rows, mean, i)
    return coef, y_mean - coef @ mean, chosen


def ridge_gcv_primal(x: Rows, y: np.ndarray, alphas: Sequence[float], *, rows: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`ridge_gcv` for tall inputs (more rows than features), in covariance form: the (F, F) covariance of
    the centred rows, ``C = V diag(s) Vᵀ``, accumulated in float64 block by block; for each alpha the hat
    diagonal is ``1/N + Σ_j P_ij² / (s_j + alpha)`` with ``P = X V`` (computed per block of rows, never whole) and
    the leave-one-out residual is the residual over ``1 - h_ii``, as ``RidgeCV``'s eigen-covariance mode (whose
    float64 copies of an (8,000, 4,096) input peak at about 1 GB)."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    n, f = len(rows), x.shape[1]
    y = np.asarray(y, np.float64)
    mean = sum(b.sum(0) for b in blocks(x, rows)) / n
    y_mean = y.mean(0)
    yc = y - y_mean
    cov, xty = np.zeros((f, f)), np.zeros((f, y.shape[1]))
    for i in range(0, n, BLOCK):
        b = centred(x, rows, mean, i)
        cov += b.T @ b
        xty += b.T @ yc[i:i + BLOCK]
    import scipy.linalg

    eig, v = scipy.linalg.eigh(cov.T, overwrite_a=True)  # Fortran order, as the Gram matrix above
    del cov
    z = v.T @ xty  # (F, T)
    d_inv = 1.0 / (eig[:, None] + np.asarray(alphas, np.float64)[None])  # (F, A)
    sq = np.zeros((len(alphas), y.shape[1]))
    for i in range(0, n, BLOCK):
        p = centred(x, rows, mean, i) @ v  # (B, F)
        hat = p ** 2 @ d_inv + 1.0 / n  # (B, A)
        for a in range(len(alphas)):
            resid = yc[i:i + BLOCK] - p @ (d_inv[:, a, None] * z)
            sq[a] += ((resid / (1.0 - hat[:, a, None])) ** 2).sum(0)
    best = np.argmax(-sq, axis=0)  # the first of equal scores, as RidgeCV
    coef = (v @ (d_inv[:, best] * z)).T  # (T, F)
    return coef, y_mean - coef @ mean, np.asarray(alphas, np.float64)[best]


__all__ = ["mean_square_norm", "ridge_gcv", "ridge_gcv_primal"]
