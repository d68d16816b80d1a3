"""match() keypoint transfer and evaluate.run_protocol on a few real AFLW faces."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hyperland
from hyperland import InvalidKeypointsError
from hyperland.data import load_samples, read_mtfl
from hyperland.evaluate import run_protocol, summarize
from hyperland.metrics import nme


@pytest.fixture(scope="module")
def samples(mtfl_root):
    return read_mtfl(mtfl_root, "testing")[:14]


def test_match_to_itself_and_to_a_resized_copy(r18, samples) -> None:
    imgs, pts = load_samples(samples[:1])
    src = pts[0].copy()
    src[4] = np.nan
    out = hyperland.match(r18, imgs[0], src, [imgs[0], imgs[0].resize((300, 300))])
    assert out.shape == (2, 5, 2) and np.isnan(out[:, 4]).all()
    # the grid cell is 150/24 = 6.25 px: the argmax cell + local soft-argmax stays within about one cell
    assert np.linalg.norm(out[0, :4] - pts[0, :4], axis=-1).max() < 7.0
    assert np.linalg.norm(out[1, :4] - ((pts[0, :4] + 0.5) * 2 - 0.5), axis=-1).max() < 14.0
    single = hyperland.match(r18, imgs[0], src, imgs[0])
    np.testing.assert_allclose(single, out[0], atol=1e-4)
    with pytest.raises(InvalidKeypointsError, match="Every source point is NaN"):
        hyperland.match(r18, imgs[0], np.full((5, 2), np.nan), imgs[0])


def test_run_protocol_structure_and_mean_shape(r18, samples) -> None:
    pool, test = samples[:10], samples[10:]
    r = run_protocol(r18, pool, test, shots=(2, "all"), seeds=2, methods=("regressor", "prototype"),
                     n_components=16, head_options={"steps": 5, "n_augment": 1}, progress=False)
    json.dumps(r)  # JSON-serialisable
    heads = [x for x in r["results"] if not x.get("baseline")]
    assert len(heads) == 2 * 2 * 2 and len(r["results"]) == 2 * 2 * 6  # + mean shape, HOG, ridge probe, pixel clf.
    assert {(s["method"], s["shots"], s["n"]) for s in r["summary"] if not s.get("baseline")} == {
        (m, s, 2) for m in ("regressor", "prototype") for s in (2, "all")}
    assert {c["method"] for c in r["confidence"]} == {"prototype"}  # the regressor has no confidence
    assert all(x["n_images"] == (10 if x["shots"] == "all" else 2) for x in r["results"])
    # mean shape by hand: every face is 150 px resized to 136, so it is the plain mean of the pool points
    _, ppts = load_samples(pool, size=136)
    _, tpts = load_samples(test, size=136)
    ms = np.broadcast_to(ppts.mean(0), tpts.shape)
    assert r["mean_shape_nme"] == pytest.approx(100 * nme(ms, tpts), rel=1e-4)
    assert all(np.isfinite(x["nme"]) for x in r["results"])


def test_summarize_by_hand() -> None:
    res = [{"method": "a", "shots": 1, "nme": 10.0}, {"method": "a", "shots": 1, "nme": 14.0}]
    assert summarize(res) == [{"method": "a", "shots": 1, "mean": 12.0, "std": 2.0, "n": 2}]
