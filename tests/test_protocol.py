"""hyperland.protocol / run_protocol: one network pass over the images a run uses, with unchanged results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageOps

import hyperland
from hyperland.data import dataset_protocol, landmark_names, load_samples
from hyperland.data.base import Sample, sample_points
from hyperland.evaluate import run_protocol, run_sweep
from hyperland.features import encode, fit_projection
from hyperland.geometry import normalised_to_pixels, pixels_to_normalised
from hyperland.heads import LandmarkHead
from hyperland.heads.baselines import PixelClassifier, hog_features, pooled_hypercolumn
from hyperland.heads.ridge import fit_readout
from hyperland.metrics import nme
from hyperland.protocol import Descriptor, Setting, draw_subsets, extract_once

SIZE = 136
OPTS = {"n_augment": 1}  # few-shot augmentation stays on (it reads the labelled images), one copy to stay fast


@pytest.fixture(scope="module")
def split(mtfl_root: Path) -> tuple[list[Sample], list[Sample]]:
    _, (pool, test) = dataset_protocol("mtfl", mtfl_root, "mtfl-aflw")
    return pool, test


@pytest.fixture(scope="module")
def dense():
    return hyperland.load("mtfl-dense-r18")


def reference(model, pool, test, *, shots, seeds) -> dict[tuple[str, object, int], float]:
    """The protocol written out plainly: every pool and test image loaded and encoded per consumer, then each
    (seed, shots) subset drawn from a permutation of the pool and every method fitted on it."""
    pimgs, ppts = load_samples(pool, size=SIZE)
    timgs, tpts = load_samples(test, size=SIZE)
    proj = fit_projection(model, pimgs, n_components=128, random_state=0, progress=False)
    fp, ft = (encode(model, x, projection=proj, progress=False) for x in (pimgs, timgs))
    # the head averages each test face's reading with its mirror's (mirror_predict="auto")
    fm = encode(model, [ImageOps.mirror(im) for im in timgs], projection=proj, progress=False)
    # the protocol stores the pooled hypercolumn in float16, as the head descriptors
    xp, xt = (pooled_hypercolumn(model, x, progress=False).astype(np.float16) for x in (pimgs, timgs))
    hp, ht = hog_features(model, pimgs), hog_features(model, timgs)
    norm = pixels_to_normalised(model, torch.from_numpy(ppts), [(SIZE, SIZE)] * len(pool))

    def score(pred: torch.Tensor | np.ndarray) -> float:
        if isinstance(pred, torch.Tensor):
            pred = normalised_to_pixels(model, pred, [(SIZE, SIZE)] * len(test)).numpy()
        return 100.0 * float(nme(pred, tpts, eyes=(0, 1)))

    out = {}
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(pool))
        for n in shots:
            idx = np.arange(len(pool)) if n == "all" else order[:n]  # 'all' is fitted in pool order
            out["mean shape", n, seed] = score(torch.nanmean(norm[idx], dim=0).expand(len(test), -1, -1))
            out["HOG → ridge", n, seed] = score(fit_readout(hp[idx], norm[idx])(ht))
            out["ridge probe", n, seed] = score(fit_readout(xp[idx], norm[idx])(xt))
            out["pixel classifier", n, seed] = score(PixelClassifier(random_state=seed).fit(fp.maps[idx], norm[idx]).predict(ft.maps))
            head = LandmarkHead(5, val_fraction=0.1, random_state=seed, progress=False, **OPTS)
            head.fit(model, [pimgs[i] for i in idx], ppts[idx], features=fp[idx],
                     landmark_names=landmark_names(pool))  # MTFL's names: mirrored copies, as eval makes them
            out["ridge", n, seed] = score(head.predict(features=ft, mirror_features=fm))
    return out


def test_run_protocol_gives_the_reference_numbers(r18, split) -> None:
    """random-r18 (PCA descriptors fitted on the pool) on an 8-image pool and 16 test faces: every figure is
    exactly the plain protocol's, and the whole-pool mean shape too."""
    pool, test = split[0][:8], split[1][:16]
    shots, seeds = (3, "all"), 1
    run = run_protocol(r18, pool, test, shots=shots, seeds=seeds, head_options=OPTS, progress=False)
    got = {(r["method"], r["shots"], r["seed"]): r["nme"] for r in run["results"]}
    assert got == reference(r18, pool, test, shots=shots, seeds=seeds)
    ppts = load_samples(pool, size=SIZE)[1]
    ms = np.broadcast_to(np.nanmean(ppts, axis=0), (len(test), 5, 2))
    assert run["mean_shape_nme"] == pytest.approx(100 * nme(ms, load_samples(test, size=SIZE)[1]), abs=1e-5)
    assert run["timing"]["images_extracted"] == 8 + 16  # "all": the whole pool


def test_baselines_that_do_not_draw_are_fitted_once_per_labelled_set(r18, split) -> None:
    """'all' labels the same pool under every seed (in another order): the mean shape, HOG and the ridge probe are
    fitted once and their figure repeated (marked same_fit_as_seed), equal to a fit in that seed's own order; the
    pixel classifier, which draws its held-out images, and the head are fitted per seed."""
    pool, test = split[0][:8], split[1][:8]
    run = run_protocol(r18, pool, test, shots=("all",), seeds=2, head_options={"augment": False}, progress=False)
    rows = {(r["method"], r["seed"]): r for r in run["results"]}
    ref = reference(r18, pool, test, shots=("all",), seeds=2)
    for name in ("mean shape", "HOG → ridge", "ridge probe"):
        assert rows[name, 1]["same_fit_as_seed"] == 0 and rows[name, 1]["nme"] == rows[name, 0]["nme"]
        assert rows[name, 1]["nme"] == pytest.approx(ref[name, "all", 1], abs=1e-6)
    for name in ("pixel classifier", "ridge"):
        assert "same_fit_as_seed" not in rows[name, 1]
    assert rows["pixel classifier", 1]["nme"] == ref["pixel classifier", "all", 1]


def _count_batches(model, monkeypatch) -> list[int]:
    """The batch sizes that pass through ``model.forward_features`` from now on (filled as they pass)."""
    seen: list[int] = []
    forward = model.forward_features

    def counting(x, **kw):
        seen.append(int(x.shape[0]))
        return forward(x, **kw)

    monkeypatch.setattr(model, "forward_features", counting)
    return seen


def test_only_the_labelled_union_and_the_test_set_pass_through_the_network(dense, split, monkeypatch) -> None:
    """mtfl-dense-r18 (its own descriptor PCA, none fitted on pool images): a 200-image pool, 1 and 3 shots × 2
    seeds label at most 8 images; exactly those and the 16 test images are extracted, each once, for the head,
    the pixel classifier and the ridge probe together."""
    pool, test = split[0][:200], split[1][:16]
    union = set()
    for seed in range(2):
        union |= set(np.random.default_rng(seed).permutation(200)[:3].tolist())
    seen = _count_batches(dense, monkeypatch)
    run = run_protocol(dense, pool, test, shots=(1, 3), seeds=2, head_options={"augment": False, "mirror": False},
                       progress=False)  # (no warped or mirrored copies: they pass through the network too)
    assert sum(seen) == len(union) + 16 == run["timing"]["images_extracted"]
    assert len(seen) == 1  # one batch: union and test together
    assert {r["method"] for r in run["results"]} == {"mean shape", "HOG → ridge", "ridge probe", "pixel classifier",
                                                     "ridge"}


def test_a_layer_sweep_is_one_pass_with_each_settings_numbers(dense, split, monkeypatch) -> None:
    """mtfl-dense-r18, sweep [default (the model's PCA), 4 (PCA of layer 4)]: one network pass over a 6-image pool and
    4 test faces for both settings, and every figure equal to run_protocol's for each setting alone."""
    pool, test = split[0][:6], split[1][:4]
    kw = {"shots": (2, "all"), "seeds": 1, "head_options": {"augment": False, "mirror": False}, "progress": False}
    alone = [run_protocol(dense, pool, test, layers=layers, **kw) for layers in (None, (4,))]
    seen = _count_batches(dense, monkeypatch)
    runs = run_sweep(dense, pool, test, sweep=[None, (4,)], **kw)
    assert sum(seen) == 6 + 4 == runs[1]["timing"]["images_extracted"]
    assert [r["protocol"]["descriptors"] for r in runs] == [["model_pca"], ["pca"]]
    for run, ref in zip(runs, alone):
        assert [{k: v for k, v in r.items() if k != "fit_seconds"} for r in run["results"]] == \
               [{k: v for k, v in r.items() if k != "fit_seconds"} for r in ref["results"]]
        assert (run["protocol"], run["mean_shape_nme"], run["confidence"]) == \
               (ref["protocol"], ref["mean_shape_nme"], ref["confidence"])


def test_draw_subsets_keeps_the_seeded_nested_draws() -> None:
    subs = draw_subsets(10, shots=(1, 4, "all", 20), seeds=2)  # 20 > pool: skipped
    assert [(s.shots, s.seed) for s in subs] == [(1, 0), (4, 0), ("all", 0), (1, 1), (4, 1), ("all", 1)]
    order = np.random.default_rng(1).permutation(10)
    assert subs[4].index.tolist() == order[:4].tolist() and subs[5].index.tolist() == order.tolist()


def test_extract_once_matches_encode_and_the_probe_per_consumer(dense, split) -> None:
    """Learned descriptors of a few kept images (a batch below 16, padded for the projection) equal encode()'s
    on a 20-image batch; the pooled hypercolumn and HOG equal the baselines' own functions."""
    imgs = load_samples(split[0][:20], size=SIZE)[0]
    keep = [3, 7, 19]
    [ex] = extract_once(dense, imgs, settings=[Setting(descriptors=(Descriptor("learned", 1), Descriptor("learned", 2)),
                                                        probe=True)], hog=True, keep=keep, progress=False)
    assert ex.n_network == 3
    for pool in (1, 2):
        ref = encode(dense, imgs, learned=True, pool=pool, progress=False)
        got = ex.descriptors[Descriptor("learned", pool)]
        assert got.maps.dtype == torch.float16 and torch.equal(got.maps, ref.maps[keep])
        assert (got.layers, got.learned, got.grid) == (ref.layers, True, ref.grid)
    sub = [imgs[i] for i in keep]
    assert ex.probe is not None and ex.probe.dtype == np.float16
    probe = ex.probe[np.arange(len(ex.probe))]
    np.testing.assert_array_equal(probe, pooled_hypercolumn(dense, sub, progress=False).astype(np.float16))
    np.testing.assert_array_equal(ex.hog, hog_features(dense, sub))


def test_sample_points_equal_the_loaded_points(split) -> None:
    """With a crop box (the pool) and without one (the AFLW test faces: only the header is read)."""
    for samples in (split[0][:5], split[1][:5]):
        np.testing.assert_array_equal(sample_points(samples, size=SIZE), load_samples(samples, size=SIZE)[1])
        np.testing.assert_array_equal(sample_points(samples), load_samples(samples)[1])


def test_a_framed_head_is_fitted_and_scored_from_images_as_in_python(dense, split) -> None:
    """framing="object" in eval: fitted on the labelled images and predicted on the test images (not on
    features), the same figure as the Python fit on the same faces."""
    pool, test = split[0][:6], split[1][:4]
    opts = {"framing": "object", "n_augment": 1}
    run = run_protocol(dense, pool, test, shots=(4,), seeds=1, baselines=(), head_options=opts,
                       confidence=False, progress=False)
    [rec] = run["results"]
    imgs, pts = load_samples(pool, size=SIZE)
    timgs, tpts = load_samples(test, size=SIZE)
    idx = np.random.default_rng(0).permutation(len(pool))[:4]
    head = LandmarkHead(5, random_state=0, progress=False, val_fraction=0.1, **opts)
    pred = head.fit(dense, [imgs[i] for i in idx], pts[idx]).predict(timgs)
    assert rec["nme"] == pytest.approx(100 * nme(pred, tpts), abs=1e-6)
