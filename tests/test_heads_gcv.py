"""The kernel-form ridge (heads/gcv.py) against scikit-learn's RidgeCV on wide inputs."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from hyperland.heads import gcv


@pytest.mark.parametrize(("n", "f"), [(40, 300), (700, 1500)])
def test_same_alphas_and_coefficients_as_ridgecv(n: int, f: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcv, "BLOCK", 128)  # several blocks, a ragged last one
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, f)) + 3 * rng.standard_normal((1, f))).astype(np.float32)  # offset: centring
    y = x.astype(np.float64) @ (0.05 * rng.standard_normal((f, 6))) + 2 * rng.standard_normal((n, 6)) + 1.0
    y[:, 5] = rng.standard_normal(n)  # a target with no signal: the largest alpha
    scale = float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1)))
    alphas = [a * scale for a in np.logspace(-4, 2, 13)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x, y)
    coef, intercept, alpha = gcv.ridge_gcv(x, y, alphas)
    np.testing.assert_array_equal(alpha, ref.alpha_)
    assert alpha[5] == alphas[-1] and len(set(alpha)) > 1
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-5, atol=1e-6 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-5, atol=1e-5)


def _peak(fn: Any) -> int:
    """Peak bytes traced while ``fn()`` runs (tracemalloc sees numpy's buffers and the arrays f2py hands LAPACK)."""
    import tracemalloc

    import scipy.linalg  # noqa: F401  (imported before tracing: its module objects are not the solver's memory)

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("solver", "n", "f", "side"),
                         [("ridge_gcv", 700, 1500, 700), ("ridge_gcv_primal", 3000, 600, 600)])
def test_memory_is_one_square_matrix_and_its_eigenvectors(solver: str, n: int, f: int, side: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak allocation of each form: its (side, side) matrix — the kernel form's (N, N) Gram matrix, the covariance
    form's (F, F) covariance — and its eigenvectors, plus blocks of rows and per-alpha vectors (together under
    1.5 MB here); no third square array: not Q², not a float64 copy of the input, and not the copy LAPACK's
    Fortran-order interface makes of a C-ordered matrix (12.8 and 9.2 MB here with it)."""
    monkeypatch.setattr(gcv, "BLOCK", 128)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, f)).astype(np.float16 if solver == "ridge_gcv" else np.float32)
    y = rng.standard_normal((n, 4))
    peak = _peak(lambda: getattr(gcv, solver)(x, y, list(np.logspace(-2, 3, 13))))
    budget = 2 * side * side * 8 + 1_500_000
    assert peak < budget, f"peak {peak / 1e6:.1f} MB, budget {budget / 1e6:.1f} MB"


def test_tall_inputs_same_alphas_and_coefficients_as_ridgecv(monkeypatch: pytest.MonkeyPatch) -> None:
    """ridge_gcv_primal (covariance form, rows in blocks) on more rows than features, a subset of rows."""
    monkeypatch.setattr(gcv, "BLOCK", 128)
    rng = np.random.default_rng(2)
    n, f = 900, 120
    x = (rng.standard_normal((n, f)) + 3 * rng.standard_normal((1, f))).astype(np.float32)
    y = x.astype(np.float64) @ (0.1 * rng.standard_normal((f, 6))) + 2 * rng.standard_normal((n, 6)) + 1.0
    y[:, 5] = rng.standard_normal(n)  # no signal: a larger alpha than the others
    rows = np.sort(rng.choice(n, 700, replace=False))
    scale = float(np.mean(np.sum(x[rows].astype(np.float64) ** 2, axis=1)))
    alphas = [a * scale for a in np.logspace(-4, 2, 13)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = RidgeCV(alphas=alphas, alpha_per_target=True).fit(x[rows], y[rows])
    coef, intercept, alpha = gcv.ridge_gcv_primal(x, y[rows], alphas, rows=rows)
    np.testing.assert_array_equal(alpha, ref.alpha_)
    assert len(set(alpha)) > 1
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-5, atol=1e-6 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-5, atol=1e-5)
