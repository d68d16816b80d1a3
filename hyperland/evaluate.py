"""The few-shot protocol: labelled subsets × seeds × head methods on one extraction, with a mean-shape baseline.

Every pool and test image is loaded once (cropped by its ``box``, resized to ``image_size``) and encoded once
(PCA projection fitted on unlabelled pool images only); each (shots, seed, method) fit then indexes those
features. Subsets are nested per seed (the first ``n`` of one permutation of the pool), so more shots only
add images. Validation splits, when the head carves one, come from the labelled subset — never the test set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .data import Sample, load_samples
from .features import encode, fit_projection
from .head import LandmarkHead
from .match import normalised_to_pixels, pixels_to_normalised
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
    methods: Sequence[str] = ("regressor", "prototype"),
    layers: Sequence[int] | None = None,
    val_fraction: float = 0.1,
    metric: Literal["nme", "pck"] = "nme",
    alpha: float = 0.1,
    eyes: tuple[int, int] = (0, 1),
    image_size: int = 136,
    n_components: int = 128,
    head_options: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Fit every (method, shots, seed) head on the pool, score it on the test set; see the module docstring.

    Returns a JSON-serialisable dict with per-fit ``results``, a ``summary`` (mean/std over seeds) and the
    ``mean_shape`` score (the pool's average shape placed in every test image's frame) in the same metric.
    """
    if metric not in ("nme", "pck"):
        raise ValueError(f"metric={metric!r}. Expected 'nme' or 'pck'.")
    opts = dict(head_options or {})
    t0 = time.perf_counter()
    pool_imgs, pool_pts = load_samples(pool, size=image_size)
    test_imgs, test_pts = load_samples(test, size=image_size)
    k = pool_pts.shape[1]
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    proj = fit_projection(model, pool_imgs, n_components=n_components, layers=layers, random_state=0,
                          progress=progress) if n_components else None
    pool_f = encode(model, pool_imgs, layers=layers, projection=proj, pool=opts.get("pool", 2), progress=progress)
    test_f = encode(model, test_imgs, layers=layers, projection=proj, pool=opts.get("pool", 2), progress=progress)
    t_extract = time.perf_counter() - t0

    ms = mean_shape(model, pool_pts, pool_f.sizes).expand(len(test_f), -1, -1)
    ms_pred = normalised_to_pixels(model, ms, test_f.sizes).numpy()
    baseline = _score(ms_pred, test_pts, metric, eyes, alpha)

    results: list[dict[str, Any]] = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(pool))
        for n in shots:
            idx = order if n == "all" else order[: int(n)]
            if n != "all" and int(n) > len(pool):
                logger.warning("shots=%s exceeds the pool (%d images); skipped.", n, len(pool))
                continue
            for method in methods:
                head = LandmarkHead(k, method=method, layers=layers, val_fraction=val_fraction,  # type: ignore[arg-type]
                                    random_state=seed, progress=progress, **opts)
                t1 = time.perf_counter()
                head.fit(model, [pool_imgs[i] for i in idx], pool_pts[idx], features=pool_f[idx])
                fit_s = time.perf_counter() - t1
                value = _score(head.predict(features=test_f), test_pts, metric, eyes, alpha)
                results.append({"method": method, "shots": n if n == "all" else int(n), "n_images": len(idx),
                                "seed": seed, metric: value, "fit_seconds": round(fit_s, 3)})
                logger.info("%s shots=%s seed=%d: %s=%.2f (%.1f s)", method, n, seed, metric, value, fit_s)
    return {
        "model": model.name,
        "fingerprint": model.fingerprint,
        "protocol": {"pool": len(pool), "test": len(test), "shots": [s for s in shots], "seeds": seeds,
                     "methods": list(methods), "layers": None if layers is None else list(layers), "metric": metric,
                     "alpha": alpha if metric == "pck" else None, "eyes": list(eyes), "image_size": image_size,
                     "n_components": n_components, "explained_variance": None if proj is None else proj.explained,
                     "val_fraction": val_fraction, "landmarks": k, "head_options": opts},
        "results": results,
        "summary": summarize(results, metric),
        f"mean_shape_{metric}": baseline,
        "timing": {"load_seconds": round(t_load, 2), "extract_seconds": round(t_extract, 2),
                   "fit_seconds": round(sum(r["fit_seconds"] for r in results), 2)},
    }


def summarize(results: list[dict[str, Any]], metric: str = "nme") -> list[dict[str, Any]]:
    """Mean and standard deviation (ddof=0) over seeds for every (method, shots)."""
    keys: dict[tuple[str, Any], list[float]] = {}
    for r in results:
        keys.setdefault((r["method"], r["shots"]), []).append(float(r[metric]))
    return [{"method": m, "shots": s, "mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
            for (m, s), v in keys.items()]


__all__ = ["mean_shape", "run_protocol", "summarize"]
