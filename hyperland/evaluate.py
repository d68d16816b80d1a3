"""The few-shot protocol: labelled subsets × seeds × head methods, beside the baselines, for one or several layer
settings (:func:`run_sweep`: ``eval --layers-sweep``).

:func:`hyperland.protocol.prepare` reads what a run uses once: the images of the union of its labelled subsets
(the whole pool only for "all"), the test set and, for a PCA descriptor, the unlabelled pool images the PCA is
fitted on; every label (the whole-pool mean shape reads the labels only); and one network pass that serves every
head descriptor and baseline of every layer setting. Each (shots, seed, method) fit then indexes those features.
Subsets are nested per seed (the first ``n`` of one permutation of the pool), so more shots only add images.
Validation splits, when a head carves one, come from the labelled subset — never the test set. The baselines of
:mod:`hyperland.heads.baselines` (mean shape, HOG → ridge, hypercolumn ridge probe, per-cell logistic classifier +
shape prior) are fitted on the same subsets and reported as methods of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .data import Sample
from .data.base import landmark_count, landmark_names
from .errors import InvalidOptionError
from .features import Features
from .geometry import normalised_to_pixels
from .heads import LandmarkHead
from .heads.baselines import BASELINES
from .heads.methods import reads
from .heads.warped import WarpCache
from .metrics import nme, pck
from .protocol import Descriptor, Extracted, Prepared, Setting, Subset, draw_subsets, prepare

if TYPE_CHECKING:
    from .model import HyperlandModel

logger = logging.getLogger(__name__)
Shots = int | Literal["all"]


def _score(pred: np.ndarray, gt: np.ndarray, metric: str, eyes: tuple[int, int], alpha: float) -> float:
    if metric == "pck":
        return 100.0 * pck(pred, gt, alpha=alpha, ref="interocular", eyes=eyes)
    return 100.0 * float(nme(pred, gt, eyes=eyes))


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
    return run_sweep(model, pool, test, sweep=[layers], shots=shots, seeds=seeds, methods=methods,
                     baselines=baselines, val_fraction=val_fraction, metric=metric, alpha=alpha, eyes=eyes,
                     image_size=image_size, n_components=n_components, head_options=head_options,
                     confidence=confidence, progress=progress)[0]


def run_sweep(
    model: HyperlandModel,
    pool: list[Sample],
    test: list[Sample],
    *,
    sweep: Sequence[Sequence[int] | None] = (None,),
    subsets: Sequence[Subset] | None = None,
    shots: Sequence[Shots] = (1, 5, 10, 20, 50, 100, "all"),
    seeds: int = 3,
    methods: Sequence[str] = ("ridge",),
    baselines: Sequence[str] = tuple(BASELINES),
    val_fraction: float = 0.1,
    metric: Literal["nme", "pck"] = "nme",
    alpha: float = 0.1,
    eyes: tuple[int, int] = (0, 1),
    image_size: int = 136,
    n_components: int = 128,
    head_options: dict[str, Any] | None = None,
    confidence: bool = True,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """:func:`run_protocol` for each layer setting of ``sweep`` (None: the model's layers), one dict each, on one
    load and one network pass (:func:`hyperland.protocol.prepare`). ``subsets`` replaces the ``shots`` ×
    ``seeds`` draws of :func:`hyperland.protocol.draw_subsets` by given labelled subsets."""
    if metric not in ("nme", "pck"):
        raise InvalidOptionError(f"metric={metric!r}. Expected 'nme' or 'pck'.")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise InvalidOptionError(f"baselines={unknown}: unknown baselines. Expected a subset of {list(BASELINES)}.")
    opts = dict(head_options or {})
    k = landmark_count([*pool, *test])
    names = landmark_names(pool)  # what the heads are told (their mirror="auto" pairs left and right by name)
    unread = sorted(set(opts) - set().union(*(reads(m) for m in methods)))
    if unread:
        raise InvalidOptionError(f"head_options {unread}: none of the methods {list(methods)} reads them.")
    setups = [_Setup.make(model, k, layers, methods=methods, baselines=baselines, progress=progress,
                          options={"val_fraction": val_fraction, **opts}) for layers in sweep]
    subsets = draw_subsets(len(pool), shots=shots, seeds=seeds) if subsets is None else subsets
    heads = [t for s in setups for t in s.templates.values()]  # pool images are kept for the fits that read them
    read = [s.index for s in subsets if any(h.reads_images(len(s.index), landmark_names=names) for h in heads)]
    data = prepare(model, pool, test, settings=[s.setting for s in setups], hog="hog_ridge" in baselines,
                   subsets=subsets, image_size=image_size, n_components=n_components, progress=progress,
                   images_for=np.unique(np.concatenate(read)) if read else np.zeros(0, np.int64),
                   keep_test_images=any(h.framing != "none" or h.mirrors_at_predict(names) for h in heads))
    sizes_test = [(image_size, image_size)] * len(test)
    ms = data.mean_shape.expand(len(test), -1, -1)
    baseline = _score(normalised_to_pixels(model, ms, sizes_test).numpy(), data.test_points, metric, eyes, alpha)
    runs = []
    for layers, setup, ex in zip(sweep, setups, data.extracted):
        results, conf_rows = _fit_setting(model, data, ex, setup, baselines=baselines, metric=metric, eyes=eyes,
                                          alpha=alpha, confidence=confidence, image_size=image_size, names=names)
        if ex.probe is not None:  # its temporary file (1.2 GB for lfwnet) is deleted now, not when collected
            ex.probe.close()
        runs.append({
            "model": model.name,
            "fingerprint": model.fingerprint,
            "protocol": {"pool": len(pool), "test": len(test), "shots": list(shots), "seeds": seeds,
                         "methods": list(methods), "baselines": [BASELINES[b].display for b in baselines],
                         "layers": None if layers is None else list(layers), "metric": metric,
                         "alpha": alpha if metric == "pck" else None, "eyes": list(eyes), "image_size": image_size,
                         "n_components": n_components,
                         "explained_variance": None if ex.projection is None else ex.projection.explained,
                         "descriptors": sorted({key.source for key in ex.descriptors}),
                         "val_fraction": val_fraction, "landmarks": k, "head_options": opts},
            "results": results,
            "summary": summarize(results, metric),
            "confidence": summarize_confidence(conf_rows),
            f"mean_shape_{metric}": baseline,
            "timing": {"load_seconds": round(data.load_seconds, 2), "extract_seconds": round(data.extract_seconds, 2),
                       "fit_seconds": round(sum(r["fit_seconds"] for r in results), 2),
                       "images_extracted": ex.n_network},
        })
    return runs


@dataclass(frozen=True)
class _Setup:
    """One layer setting: its head templates (each method with the options it reads) and what it extracts."""

    templates: dict[str, LandmarkHead]
    pixel_key: Descriptor  # the pixel-classifier baseline reads the default head's descriptors
    setting: Setting

    @classmethod
    def make(cls, model: HyperlandModel, k: int, layers: Sequence[int] | None, *, methods: Sequence[str],
             baselines: Sequence[str], options: dict[str, Any], progress: bool | None) -> _Setup:
        templates = {m: LandmarkHead(k, method=m, layers=layers, progress=progress,  # type: ignore[arg-type]
                                     **{n: v for n, v in options.items() if n in reads(m)}) for m in methods}
        pixel = LandmarkHead(k, layers=layers)
        keys = [Descriptor(h.descriptor_source(model), h.pool_)
                for h in [*templates.values(), *([pixel] if "pixel_classifier" in baselines else [])]]
        return cls(templates, Descriptor(pixel.descriptor_source(model), pixel.pool_),
                   Setting(None if layers is None else tuple(layers), tuple(keys), "ridge_probe" in baselines))


def _fit_setting(model: HyperlandModel, data: Prepared, ex: Extracted, setup: _Setup, *, baselines: Sequence[str],
                 metric: str, eyes: tuple[int, int], alpha: float, confidence: bool, image_size: int,
                 names: list[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every subset's baselines and heads on one setting's features: (results, confidence rows)."""
    n_lab, test_pts = len(data.labelled), data.test_points
    feats = {d: (f, replace(f, maps=f.maps[n_lab:], sizes=f.sizes[n_lab:])) for d, f in ex.descriptors.items()}
    # each baseline's input by what it reads, as (labelled rows, test rows); the mean shape reads the row counts
    base_x: dict[str | None, tuple[Any, Any]] = {None: (np.empty((n_lab, 0)), np.empty((len(test_pts), 0)))}
    base_x.update({kind: (x, x[n_lab:]) for kind, x in (("hog", ex.hog), ("probe", ex.probe)) if x is not None})
    if setup.pixel_key in feats:
        base_x["descriptors"] = (feats[setup.pixel_key][0].maps, feats[setup.pixel_key][1].maps)
    pool_pts, pool_norm = data.pool_points, data.pool_normalised
    frame = (image_size, image_size)  # every pool and test image is loaded at image_size px
    sizes_test = [frame] * len(test_pts)
    results: list[dict[str, Any]] = []
    conf_rows: list[dict[str, Any]] = []
    caches: dict[str, WarpCache] = {}  # per method: the few-shot warped copies of one seed's (nested) subsets
    cache_seed = None
    mirrored: dict[Descriptor, Features] = {}  # the flipped test images' features, as test_f's
    fitted: dict[tuple[str, frozenset[int]], tuple[float, int]] = {}  # the 'all' subsets of every seed are one set
    for sub in data.subsets:
        # 'all' in pool order: the same set under every seed, whose stored rows are then read in place (a view)
        # instead of gathered into a copy (0.6 GB of descriptors for the 8,000 lfwnet faces)
        sub = replace(sub, index=np.sort(sub.index)) if sub.shots == "all" else sub
        idx, rows, n = sub.index, data.rows(sub), sub.shots
        if sub.seed != cache_seed:
            caches, cache_seed = {}, sub.seed
        rec0: dict[str, Any] = {"shots": n, "n_images": len(idx), "seed": sub.seed}
        for name in baselines:
            t1 = time.perf_counter()
            est = BASELINES[name](random_state=sub.seed)
            same = (name, frozenset(idx.tolist()))  # a baseline that does not draw: one fit per labelled set
            if est.draws or same not in fitted:
                x_pool, x_test = base_x[est.reads]
                norm = est.fit(x_pool, pool_norm[idx], rows=rows).predict(x_test)
                value = _score(normalised_to_pixels(model, norm, sizes_test).numpy(), test_pts, metric, eyes, alpha)
                fitted[same] = (value, sub.seed)
            value, first = fitted[same]
            results.append({**rec0, "method": est.display, "baseline": True, metric: value,
                            "fit_seconds": round(time.perf_counter() - t1, 3),
                            **({"same_fit_as_seed": first} if first != sub.seed else {})})
        for method, template in setup.templates.items():
            head = LandmarkHead(**{**template.get_params(), "random_state": sub.seed})
            pool_f, test_f = feats[Descriptor(head.descriptor_source(model), head.pool_)]
            t1 = time.perf_counter()
            warps = head.reads_images(len(idx), landmark_names=names)
            imgs = [data.images[int(i)] for i in idx] if warps else None
            cache = caches.setdefault(method, WarpCache()) if warps else None
            if not warps:  # larger subsets of this seed warp nothing either: free its copies
                caches.pop(method, None)
            head.fit(model, imgs, pool_pts[idx], features=pool_f[rows], warp_cache=cache, landmark_names=names)
            fit_s = time.perf_counter() - t1
            has_conf = confidence and method != "regressor"
            if head.framing != "none":  # a framed head crops the test images themselves
                out = head.predict(data.test_images, return_confidence=has_conf)
            else:
                mirror_f = None
                if head.mirrors_at_predict(names) and data.test_images is not None:  # encoded once per descriptor
                    key = Descriptor(head.descriptor_source(model), head.pool_)
                    if key not in mirrored:
                        mirrored[key] = head.encode_mirrored(model, list(data.test_images))
                    mirror_f = mirrored[key]
                out = head.predict(features=test_f, mirror_features=mirror_f, return_confidence=has_conf)
            pred, conf = out if has_conf else (out, None)
            value = _score(pred, test_pts, metric, eyes, alpha)  # type: ignore[arg-type]
            rec: dict[str, Any] = {**rec0, "method": method, metric: value, "fit_seconds": round(fit_s, 3)}
            if getattr(head, "selection_", None) is not None:
                rec["selection"] = head.selection_
            results.append(rec)
            if conf is not None:
                conf_rows.append({**rec0, "method": method, **confidence_report(pred, conf, test_pts, eyes)})  # type: ignore[arg-type]
            logger.info("%s shots=%s seed=%d: %s=%.2f (%.1f s)", method, n, sub.seed, metric, value, fit_s)
    return results, conf_rows


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


__all__ = ["confidence_report", "run_protocol", "run_sweep", "summarize", "summarize_confidence"]
