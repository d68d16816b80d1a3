"""The kernel-form ridge (heads/gcv.py) against scikit-learn's RidgeCV on wide inputs."""

from __future__ import annotations

import warnings

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


def test_memory_is_one_gram_matrix_and_two_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak allocation of ridge_gcv (tracemalloc sees numpy's and LAPACK's buffers): the (N, N) Gram matrix and its
    eigenvectors, two float64 blocks of rows and (N, alphas) vectors; no third (N, N) array (Q²) and no float64
    copy of the input."""
    import tracemalloc

    monkeypatch.setattr(gcv, "BLOCK", 128)
    n, f = 700, 1500
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, f)).astype(np.float16)
    y = rng.standard_normal((n, 4))
    alphas = list(np.logspace(-2, 3, 13))
    tracemalloc.start()
    try:
        gcv.ridge_gcv(x, y, alphas)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    budget = 2 * n * n * 8 + 2 * 128 * f * 8 + 4 * n * len(alphas) * 8 + f * 4 * 8 * 2
    budget += 2_000_000  # slack: LAPACK workspace
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
