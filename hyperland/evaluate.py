"""The few-shot protocol: labelled subsets × seeds × head methods on one extraction, beside the baselines.

Only the images a run uses are read (:mod:`hyperland.protocol`): the union of its labelled subsets (the whole
pool only for "all"), the test set and, for a PCA descriptor, the unlabelled pool images the PCA is fitted on
(as :func:`hyperland.features.fit_projection` would pick them from the whole pool). Each goes through the network
once for every head descriptor and baseline; the whole-pool mean shape reads the labels only. Each
(shots, seed, method) fit then indexes those features. Subsets are nested per seed (the first ``n`` of one
permutation of the pool), so more shots only add images. Validation splits, when a head carves one, come from
the labelled subset — never the test set. The baselines of :mod:`hyperland.heads.baselines` (mean shape, HOG → ridge,
hypercolumn ridge probe, per-cell logistic classifier + shape prior) are fitted on the same subsets and reported as methods of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .data import Sample, load_samples
from .data.base import landmark_count, sample_points
from .errors import InvalidOptionError
from .features import projection_sample
from .geometry import normalised_to_pixels, pixels_to_normalised
from .heads import LandmarkHead
from .heads.baselines import BASELINES, MeanShape
from .heads.methods import reads
from .metrics import nme, pck
from .protocol import Descriptor, draw_subsets, extract_once, labelled_union

if TYPE_CHECKING:
    from .model import HyperlandModel

logger = logging.getLogger(__name__)
Shots = int | Literal["all"]


def _score(pred: np.ndarray, gt: np.ndarray, metric: str, eyes: tuple[int, int], alpha: float) -> float:
    if metric == "pck":
        return 100.0 * pck(pred, gt, alpha=alpha, ref="interocular", eyes=eyes)
    return 100.0 * float(nme(pred, gt, eyes=eyes))


def mean_shape(model: HyperlandModel, points: np.ndarray, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(K, 2) average landmark position in normalised network-input coordinates (NaN-aware)."""
    norm = pixels_to_normalised(model, torch.from_numpy(np.asarray(points, np.float32)), sizes)
    return MeanShape().fit(None, norm).shape_


def run_protocol(
    model: HyperlandModel,
    pool: list[Sample],
    test: list[Sample],
    *,
    shots: Sequence[Shots] = (1, 5, 10, 20, 50, 100, "all"),
    seeds: int = 3,
    methods: Sequence[str] = ("ridge",),
    baselines: Sequence[str] = tuple(BASELINES),
    layers: Sequence[int] | None = None,
    val_fraction: float = 0.1,
    metric: Literal["nme", "pck"] = "nme",
    alpha: float = 0.1,
    eyes: tuple[int, int] = (0, 1),
    image_size: int = 136,
    n_components: int = 128,
    head_options: dict[str, Any] | None = None,
    confidence: bool = True,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Fit every (method, shots, seed) head and baseline on the pool, score it on the test set.

    Returns a JSON-serialisable dict with per-fit ``results``, a ``summary`` (mean/std over seeds), the
    ``mean_shape`` score and, for heads with a confidence, how well it ranks the test errors (``confidence``).
    """
    if metric not in ("nme", "pck"):
        raise ValueError(f"metric={metric!r}. Expected 'nme' or 'pck'.")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"baselines {unknown}: expected a subset of {list(BASELINES)}.")
    opts = dict(head_options or {})
    k = landmark_count([*pool, *test])
    unread = sorted(set(opts) - set().union(*(reads(m) for m in methods)))
    if unread:
        raise InvalidOptionError(f"head_options {unread}: none of the methods {list(methods)} reads them.")
    templates = {m: LandmarkHead(k, method=m, layers=layers, progress=progress,  # type: ignore[arg-type]
                                 **{n: v for n, v in {"val_fraction": val_fraction, **opts}.items() if n in reads(m)})
                 for m in methods}  # each method gets the options it reads
    pixel = LandmarkHead(k, layers=layers)  # the pixel-classifier baseline reads the default head's descriptors
    pixel_key = Descriptor(pixel.uses_learned(model), pixel.pool_)
    inputs_read = {BASELINES[b].reads for b in baselines}  # what the baselines read besides the labels
    keys = [Descriptor(h.uses_learned(model), h.pool_)
            for h in [*templates.values(), *([pixel] if "descriptors" in inputs_read else [])]]
    subsets = draw_subsets(len(pool), shots=shots, seeds=seeds)
    labelled = labelled_union(subsets)
    pca_rng = np.random.default_rng(0)  # fit_projection(pool images, random_state=0): images, then cells
    pca_idx = (projection_sample(len(pool), rng=pca_rng) if n_components and any(not d.learned for d in keys)
               else labelled[:0])
    need = np.union1d(labelled, pca_idx)  # every pool image this run looks at, ascending
    t0 = time.perf_counter()
    need_imgs, _ = load_samples([pool[i] for i in need], size=image_size) if len(need) else ([], None)
    test_imgs, test_pts = load_samples(test, size=image_size)
    pool_pts = sample_points(pool, size=image_size)  # all labels (no image decoded): the whole-pool mean shape
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pos = {int(i): j for j, i in enumerate(need)}
    n_lab = len(labelled)
    ex = extract_once(model, [*need_imgs, *test_imgs], descriptors=keys, layers=layers,
                      probe="probe" in inputs_read, hog="hog" in inputs_read,
                      keep=[pos[int(i)] for i in labelled] + list(range(len(need), len(need) + len(test_imgs))),
                      pca_on=[pos[int(i)] for i in pca_idx], pca_rng=pca_rng, n_components=n_components,
                      progress=progress)
    t_extract = time.perf_counter() - t0
    row = np.full(len(pool), -1, dtype=np.int64)  # pool position -> row of the extracted outputs
    row[labelled] = np.arange(n_lab)
    imgs = {int(i): need_imgs[pos[int(i)]] for i in labelled}  # for the heads' few-shot augmentation
    del need_imgs, test_imgs
    feats = {d: (f, replace(f, maps=f.maps[n_lab:], sizes=f.sizes[n_lab:])) for d, f in ex.descriptors.items()}
    # each baseline's input by what it reads, as (labelled rows, test rows); the mean shape reads the row counts
    base_x: dict[str | None, tuple[Any, Any]] = {None: (np.empty((n_lab, 0)), np.empty((len(test), 0)))}
    base_x.update({kind: (x, x[n_lab:]) for kind, x in (("hog", ex.hog), ("probe", ex.probe)) if x is not None})
    if "descriptors" in inputs_read:
        base_x["descriptors"] = (feats[pixel_key][0].maps, feats[pixel_key][1].maps)
    proj = ex.projection
    sizes_pool = [(image_size, image_size)] * len(pool)
    sizes_test = [(image_size, image_size)] * len(test)
    pool_norm = pixels_to_normalised(model, torch.from_numpy(pool_pts), sizes_pool)

    ms = mean_shape(model, pool_pts, sizes_pool).expand(len(test), -1, -1)
    baseline = _score(normalised_to_pixels(model, ms, sizes_test).numpy(), test_pts, metric, eyes, alpha)

    results: list[dict[str, Any]] = []
    conf_rows: list[dict[str, Any]] = []
    for sub in subsets:
        idx, rows, n = sub.index, row[sub.index], sub.shots
        rec0 = {"shots": n, "n_images": len(idx), "seed": sub.seed}
        for name in baselines:
            t1 = time.perf_counter()
            est = BASELINES[name](random_state=sub.seed)
            x_pool, x_test = base_x[est.reads]
            norm = est.fit(x_pool[rows], pool_norm[idx]).predict(x_test)
            value = _score(normalised_to_pixels(model, norm, sizes_test).numpy(), test_pts, metric, eyes, alpha)
            results.append({**rec0, "method": est.display, "baseline": True, metric: value,
                            "fit_seconds": round(time.perf_counter() - t1, 3)})
        for method, template in templates.items():
            head = LandmarkHead(**{**template.get_params(), "random_state": sub.seed})
            pool_f, test_f = feats[Descriptor(head.uses_learned(model), head.pool_)]
            t1 = time.perf_counter()
            head.fit(model, [imgs[int(i)] for i in idx], pool_pts[idx], features=pool_f[rows])
            fit_s = time.perf_counter() - t1
            has_conf = confidence and method != "regressor"
            out = head.predict(features=test_f, return_confidence=has_conf)
            pred, conf = out if has_conf else (out, None)
            value = _score(pred, test_pts, metric, eyes, alpha)  # type: ignore[arg-type]
            rec = {**rec0, "method": method, metric: value, "fit_seconds": round(fit_s, 3)}
            if getattr(head, "selection_", None) is not None:
                rec["selection"] = head.selection_
            results.append(rec)
            if conf is not None:
                conf_rows.append({**rec0, "method": method, **confidence_report(pred, conf, test_pts, eyes)})  # type: ignore[arg-type]
            logger.info("%s shots=%s seed=%d: %s=%.2f (%.1f s)", method, n, sub.seed, metric, value, fit_s)
    return {
        "model": model.name,
        "fingerprint": model.fingerprint,
        "protocol": {"pool": len(pool), "test": len(test), "shots": [s for s in shots], "seeds": seeds,
                     "methods": list(methods), "baselines": [BASELINES[b].display for b in baselines],
                     "layers": None if layers is None else list(layers), "metric": metric,
                     "alpha": alpha if metric == "pck" else None, "eyes": list(eyes), "image_size": image_size,
                     "n_components": n_components, "explained_variance": None if proj is None else proj.explained,
                     "descriptors": sorted({"learned" if key.learned else "pca" for key in feats}),
                     "val_fraction": val_fraction, "landmarks": k, "head_options": opts},
        "results": results,
        "summary": summarize(results, metric),
        "confidence": summarize_confidence(conf_rows),
        f"mean_shape_{metric}": baseline,
        "timing": {"load_seconds": round(t_load, 2), "extract_seconds": round(t_extract, 2),
                   "fit_seconds": round(sum(r["fit_seconds"] for r in results), 2),
                   "images_extracted": ex.n_network},
    }


def confidence_report(pred: np.ndarray, conf: np.ndarray, gt: np.ndarray, eyes: tuple[int, int]) -> dict[str, float]:
    """How well per-landmark confidences rank the actual errors: Spearman correlation of confidence with the
    normalised point error (negative = more confident points err less), and the NME of the most / least
    confident half of the points (percent)."""
    from scipy.stats import spearmanr

    io = np.linalg.norm(gt[:, eyes[0]] - gt[:, eyes[1]], axis=-1, keepdims=True)  # (N, 1)
    err = (np.linalg.norm(pred - gt, axis=-1) / io).ravel()
    c = np.asarray(conf, dtype=np.float64).ravel()
    ok = np.isfinite(err) & np.isfinite(c)
    err, c = err[ok], c[ok]
    order = np.argsort(-c, kind="stable")
    half = len(order) // 2
    rho = spearmanr(c, err).statistic if len(c) > 2 else float("nan")
    return {"spearman": float(rho), "nme_confident_half": 100.0 * float(err[order[:half]].mean()),
            "nme_other_half": 100.0 * float(err[order[half:]].mean()), "nme_all": 100.0 * float(err.mean())}


def summarize_confidence(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean over seeds of :func:`confidence_report` per (method, shots)."""
    keys: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        keys.setdefault((r["method"], r["shots"]), []).append(r)
    fields = ("spearman", "nme_confident_half", "nme_other_half", "nme_all")
    return [{"method": m, "shots": s, **{f: float(np.mean([r[f] for r in v])) for f in fields}}
            for (m, s), v in keys.items()]


def summarize(results: list[dict[str, Any]], metric: str = "nme") -> list[dict[str, Any]]:
    """Mean and standard deviation (ddof=0) over seeds for every (method, shots)."""
    keys: dict[tuple[str, Any], list[float]] = {}
    for r in results:
        keys.setdefault((r["method"], r["shots"]), []).append(float(r[metric]))
    base = {r["method"] for r in results if r.get("baseline")}
    return [{"method": m, "shots": s, "mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v),
             **({"baseline": True} if m in base else {})} for (m, s), v in keys.items()]


__all__ = ["confidence_report", "mean_shape", "run_protocol", "summarize", "summarize_confidence"]
