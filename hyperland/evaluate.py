"""The few-shot protocol: labelled subsets × seeds × head methods on one extraction, beside the baselines.

Every pool and test image is loaded once (cropped by its ``box``, resized to ``image_size``) and encoded once
per descriptor kind (the model's learned projection, or a PCA fitted on the unlabelled pool images only); each
(shots, seed, method) fit then indexes those features. Subsets are nested per seed (the first ``n`` of one
permutation of the pool), so more shots only add images. Validation splits, when a head carves one, come from
the labelled subset — never the test set. The baselines of :mod:`hyperland.baselines` (mean shape, HOG → ridge,
hypercolumn ridge probe, per-cell logistic classifier + shape prior) are fitted on the same subsets and reported as methods of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from . import baselines as bl
from .data import Sample, load_samples
from .features import Features, encode, fit_projection
from .heads import LandmarkHead
from .heads.geometry import normalised_to_pixels, pixels_to_normalised
from .heads.ridge import fit_readout
from .metrics import nme, pck

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
    return torch.nanmean(norm, dim=0)


def run_protocol(
    model: HyperlandModel,
    pool: list[Sample],
    test: list[Sample],
    *,
    shots: Sequence[Shots] = (1, 5, 10, 20, 50, 100, "all"),
    seeds: int = 3,
    methods: Sequence[str] = ("ridge",),
    baselines: Sequence[str] = bl.BASELINES,
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
    unknown = [b for b in baselines if b not in bl.BASELINES]
    if unknown:
        raise ValueError(f"baselines {unknown}: expected a subset of {bl.BASELINES}.")
    opts = dict(head_options or {})
    t0 = time.perf_counter()
    pool_imgs, pool_pts = load_samples(pool, size=image_size)
    test_imgs, test_pts = load_samples(test, size=image_size)
    k = pool_pts.shape[1]
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    templates = {m: LandmarkHead(k, method=m, layers=layers, val_fraction=val_fraction, progress=progress,  # type: ignore[arg-type]
                                 **opts) for m in methods}
    feats: dict[tuple[bool, int], tuple[Features, Features]] = {}
    proj = None
    pixel = LandmarkHead(k, layers=layers)  # the pixel-classifier baseline reads the default head's descriptors
    pixel_key = (pixel.uses_learned(model), pixel.pool_)
    for head in [*templates.values(), *([pixel] if "pixel classifier" in baselines else [])]:
        key = (head.uses_learned(model), head.pool_)
        if key in feats:
            continue
        if not key[0] and proj is None and n_components:
            proj = fit_projection(model, pool_imgs, n_components=n_components, layers=layers, random_state=0,
                                  progress=progress)
        enc = dict(learned=True) if key[0] else dict(layers=layers, projection=proj)
        feats[key] = (encode(model, pool_imgs, pool=key[1], progress=progress, **enc),  # type: ignore[arg-type]
                      encode(model, test_imgs, pool=key[1], progress=progress, **enc))  # type: ignore[arg-type]
    sizes_pool = [im.size[::-1] for im in pool_imgs]
    sizes_test = [im.size[::-1] for im in test_imgs]
    base_x: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "HOG → ridge" in baselines:
        base_x["HOG → ridge"] = (bl.hog_features(model, pool_imgs), bl.hog_features(model, test_imgs))
    if "ridge probe" in baselines:
        base_x["ridge probe"] = (bl.pooled_hypercolumn(model, pool_imgs, layers=layers, progress=progress),
                                 bl.pooled_hypercolumn(model, test_imgs, layers=layers, progress=progress))
    t_extract = time.perf_counter() - t0
    pool_norm = pixels_to_normalised(model, torch.from_numpy(pool_pts), sizes_pool)

    ms = mean_shape(model, pool_pts, sizes_pool).expand(len(test_imgs), -1, -1)
    baseline = _score(normalised_to_pixels(model, ms, sizes_test).numpy(), test_pts, metric, eyes, alpha)

    results: list[dict[str, Any]] = []
    conf_rows: list[dict[str, Any]] = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(pool))
        for n in shots:
            if n != "all" and int(n) > len(pool):
                logger.warning("shots=%s exceeds the pool (%d images); skipped.", n, len(pool))
                continue
            idx = order if n == "all" else order[: int(n)]
            row = {"shots": n if n == "all" else int(n), "n_images": len(idx), "seed": seed}
            for name in baselines:
                t1 = time.perf_counter()
                if name == "mean shape":
                    norm = torch.nanmean(pool_norm[idx], dim=0).expand(len(test_imgs), -1, -1)
                elif name == "pixel classifier":
                    f_pool, f_test = feats[pixel_key]
                    norm = bl.fit_pixel_classifier(f_pool.maps[idx], pool_norm[idx], random_state=seed)(f_test.maps)
                else:
                    x_pool, x_test = base_x[name]
                    norm = fit_readout(x_pool[idx], pool_norm[idx])(x_test)
                value = _score(normalised_to_pixels(model, norm, sizes_test).numpy(), test_pts, metric, eyes, alpha)
                results.append({**row, "method": name, "baseline": True, metric: value,
                                "fit_seconds": round(time.perf_counter() - t1, 3)})
            for method, template in templates.items():
                head = LandmarkHead(**{**template.get_params(), "random_state": seed})
                pool_f, test_f = feats[(head.uses_learned(model), head.pool_)]
                t1 = time.perf_counter()
                head.fit(model, [pool_imgs[i] for i in idx], pool_pts[idx], features=pool_f[idx])
                fit_s = time.perf_counter() - t1
                has_conf = confidence and method != "regressor"
                out = head.predict(features=test_f, return_confidence=has_conf)
                pred, conf = out if has_conf else (out, None)
                value = _score(pred, test_pts, metric, eyes, alpha)  # type: ignore[arg-type]
                rec = {**row, "method": method, metric: value, "fit_seconds": round(fit_s, 3)}
                if getattr(head, "selection_", None) is not None:
                    rec["selection"] = head.selection_
                results.append(rec)
                if conf is not None:
                    conf_rows.append({**row, "method": method, **confidence_report(pred, conf, test_pts, eyes)})  # type: ignore[arg-type]
                logger.info("%s shots=%s seed=%d: %s=%.2f (%.1f s)", method, n, seed, metric, value, fit_s)
    return {
        "model": model.name,
        "fingerprint": model.fingerprint,
        "protocol": {"pool": len(pool), "test": len(test), "shots": [s for s in shots], "seeds": seeds,
                     "methods": list(methods), "baselines": list(baselines),
                     "layers": None if layers is None else list(layers), "metric": metric,
                     "alpha": alpha if metric == "pck" else None, "eyes": list(eyes), "image_size": image_size,
                     "n_components": n_components, "explained_variance": None if proj is None else proj.explained,
                     "descriptors": sorted({"learned" if key[0] else "pca" for key in feats}),
                     "val_fraction": val_fraction, "landmarks": k, "head_options": opts},
        "results": results,
        "summary": summarize(results, metric),
        "confidence": summarize_confidence(conf_rows),
        f"mean_shape_{metric}": baseline,
        "timing": {"load_seconds": round(t_load, 2), "extract_seconds": round(t_extract, 2),
                   "fit_seconds": round(sum(r["fit_seconds"] for r in results), 2)},
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
