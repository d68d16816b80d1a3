"""heads.cells.multinomial_logistic solves scikit-learn's LogisticRegression objective (weighted, L2, multinomial)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from hyperland.heads.cells import multinomial_logistic


@pytest.mark.parametrize("classes", [2, 5])
def test_matches_scikit_learn(classes: int) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(classes, 6)) * 1.5
    y = rng.integers(0, classes, 600)
    x = centres[y] + rng.normal(size=(600, 6))
    w = rng.uniform(0.5, 2.0, 600)
    cs = [0.01, 1.0]
    ours = multinomial_logistic(torch.from_numpy(x).float(), torch.from_numpy(y), torch.from_numpy(w).float(), cs,
                                tol=1e-6)
    for c, (coef, icpt) in zip(cs, ours):
        ref = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(x, y, sample_weight=w)
        ref_coef, ref_icpt = ref.coef_, ref.intercept_
        if classes == 2:  # scikit-learn's binary form: one row, against which the symmetric pair is (-r/2, r/2)
            # the symmetric 2-class objective penalises |r/2|^2 twice: scikit-learn's binary fit at 2C
            ref = LogisticRegression(C=2 * c, tol=1e-10, max_iter=5000).fit(x, y, sample_weight=w)
            ref_coef = np.concatenate([-ref.coef_, ref.coef_]) / 2
            ref_icpt = np.concatenate([-ref.intercept_, ref.intercept_]) / 2
        # intercepts are free: compare the logit differences (invariant to a shift shared by all classes)
        icpt_ours = icpt.double().numpy()
        np.testing.assert_allclose(coef.double().numpy(), ref_coef, atol=2e-3, rtol=1e-2)
        np.testing.assert_allclose(icpt_ours - icpt_ours.mean(), ref_icpt - ref_icpt.mean(), atol=2e-3, rtol=1e-2)


def test_float64_rows_with_float32_weights() -> None:
    """The weights take the rows' dtype: float64 rows with float32 weights fit to the same answer as float32."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(3, 4))[y] + rng.normal(size=(300, 4))
    w = torch.from_numpy(rng.uniform(0.5, 2.0, 300)).float()
    (c64, _), = multinomial_logistic(torch.from_numpy(x), torch.from_numpy(y), w, [1.0], tol=1e-7)
    (c32, _), = multinomial_logistic(torch.from_numpy(x).float(), torch.from_numpy(y), w, [1.0], tol=1e-7)
    assert c64.dtype == torch.float64
    np.testing.assert_allclose(c64.numpy(), c32.double().numpy(), atol=1e-3)


def test_warm_start_reaches_the_same_minimum() -> None:
    """``init``: the same strictly convex objective from another starting point gives the same coefficients."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 500)
    x = torch.from_numpy(rng.normal(size=(4, 5))[y] + rng.normal(size=(500, 5))).float()
    w = torch.ones(500)
    (cold, cold_b), = multinomial_logistic(x, torch.from_numpy(y), w, [0.5], tol=1e-6)
    start = (torch.from_numpy(rng.normal(size=(4, 5))).float(), torch.from_numpy(rng.normal(size=4)).float())
    (warm, warm_b), = multinomial_logistic(x, torch.from_numpy(y), w, [0.5], tol=1e-6, init=start)
    np.testing.assert_allclose(warm.numpy(), cold.numpy(), atol=2e-3)
    np.testing.assert_allclose((warm_b - warm_b.mean()).numpy(), (cold_b - cold_b.mean()).numpy(), atol=2e-3)


def test_cell_classifier_init_is_read_in_its_own_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """fit_cell_classifiers(init=) re-expresses a classifier (raw descriptor units, standardisation folded in)
    in the new fit's standardised units: a solver that returns its starting point gives back the same logits,
    also on other images (another standardisation)."""
    from hyperland.heads import cells

    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(6, 3, 5, 5, generator=gen) * 2 + 1
    targets = torch.rand(6, 2, 2, generator=gen) * 1.6 - 0.8
    (first,) = cells.fit_cell_classifiers(maps, targets, [1.0], rng=np.random.default_rng(0))
    monkeypatch.setattr(cells, "multinomial_logistic", lambda x, y, w, cs, init=None: [init] * len(cs))
    (again,) = cells.fit_cell_classifiers(maps[2:], targets[2:], [1.0], rng=np.random.default_rng(1), init=first)
    lp, lp2 = first.log_probs(maps), again.log_probs(maps)
    np.testing.assert_allclose(lp2.numpy(), lp.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match=r"init has a \(4, 3\) matrix; these maps and targets need \(4, 4\)"):
        cells.fit_cell_classifiers(maps, torch.rand(6, 3, 2, generator=gen) - 0.5, [1.0],
                                   rng=np.random.default_rng(0), init=first)  # K = 3 against init's 2
