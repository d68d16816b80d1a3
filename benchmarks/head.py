"""LandmarkHead benchmarks on MTFL with random-r18 at 96 px (resize 136, border 20) → benchmarks/results/head.json.

Parts (each merges its figures into the JSON file, so they can run separately):
  fit50     a 50-shot fit on the mtfl-aflw pool, extraction included: wall seconds, NME on the AFLW test set
  fitall    a fit on all 10,000 training images: wall seconds, peak RSS (run it in its own process)
  protocol  run_protocol: 1/5/10/20/50/100/all shots × 3 seeds × (regressor, prototype) + mean-shape baseline
  paper     the paper's schedule (Adam, cosine, 1,000 epochs with TPS) vs the default fit, 50 shots, same features
  aflw      the issue-11 speed gates on the headline protocol: a 50-shot and an all-1,000 fit on the aflw pool with
            the default head, extraction included (goals 20 s and 120 s), and their NME on the 1,995 test faces

    flock "$BENCH_LOCK" python benchmarks/head.py fit50 fitall paper protocol --protocols mtfl-aflw,aflw,lfwnet
    flock "$BENCH_LOCK" python benchmarks/head.py aflw --model mtfl-dense-r18
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hyperland
from hyperland.data import landmark_names, load_samples, mtfl_protocol
from hyperland.evaluate import run_protocol
from hyperland.features import encode, fit_projection
from hyperland.geometry import normalised_to_pixels
from hyperland.heads import LandmarkHead
from hyperland.metrics import nme
from hyperland.protocol import mean_shape

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
OUT = ROOT / "benchmarks" / "results" / "head.json"
CROP = "training crops: centroid_box(labels) (side 5.6x spread, centroid at 0.49); AFLW test: whole 150 px image"


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _baseline(model: hyperland.HyperlandModel, pts: np.ndarray, sizes: list, test_pts: np.ndarray,
              test_sizes: list) -> float:
    ms = mean_shape(model, pts, sizes).expand(len(test_sizes), -1, -1)
    return 100.0 * float(nme(normalised_to_pixels(model, ms, test_sizes).numpy(), test_pts))


def _test_set(model: hyperland.HyperlandModel) -> tuple[list, np.ndarray]:
    _, test = mtfl_protocol(MTFL, "mtfl-aflw")
    return load_samples(test, size=model.config.resize)


def fit50(model: hyperland.HyperlandModel, n: int = 50) -> dict[str, Any]:
    pool, _ = mtfl_protocol(MTFL, "mtfl-aflw")
    idx = np.random.default_rng(0).choice(len(pool), n, replace=False)
    t0 = time.perf_counter()
    imgs, pts = load_samples([pool[i] for i in idx], size=model.config.resize)
    head = LandmarkHead(5, random_state=0, progress=False).fit(model, imgs, pts)
    wall = time.perf_counter() - t0
    timgs, tpts = _test_set(model)
    pred = head.predict(timgs)
    return {"shots": n, "wall_seconds": round(wall, 2), "goal_seconds": 20, "history": _record(head),
            "nme_aflw": 100.0 * float(nme(pred, tpts)), "train_nme": 100.0 * float(nme(head.predict(imgs), pts)),
            "mean_shape_nme_aflw": _baseline(model, pts, [(im.height, im.width) for im in imgs], tpts,
                                             [(im.height, im.width) for im in timgs]), "crop": CROP}


def fitall(model: hyperland.HyperlandModel) -> dict[str, Any]:
    pool, _ = mtfl_protocol(MTFL, "mtfl-aflw")
    t0 = time.perf_counter()
    imgs, pts = load_samples(pool, size=model.config.resize)
    t_load = time.perf_counter() - t0
    head = LandmarkHead(5, random_state=0, progress=False).fit(model, imgs, pts)
    wall = time.perf_counter() - t0
    rss = _rss_gb()
    sizes = [(im.height, im.width) for im in imgs]
    del imgs
    timgs, tpts = _test_set(model)
    pred = head.predict(timgs)
    return {"n_images": len(pool), "wall_seconds": round(wall, 1), "load_seconds": round(t_load, 1),
            "goal_seconds": 1800, "peak_rss_gb": round(rss, 2), "goal_rss_gb": 8, "history": _record(head),
            "nme_aflw": 100.0 * float(nme(pred, tpts)),
            "mean_shape_nme_aflw": _baseline(model, pts, sizes, tpts, [(im.height, im.width) for im in timgs]),
            "memory": "PCA-128 projection fitted on 256 pool images, 2x2 average pooling, float16: "
                      "128x12x12x2 B = 37 KB per image", "crop": CROP}


def _record(head: LandmarkHead) -> Any:
    """What the fit chose: the ridge head's validated selection, or the regressor's training history."""
    return getattr(head, "selection_", None) or getattr(head, "history_", None)


def aflw(model: hyperland.HyperlandModel) -> dict[str, Any]:
    """Wall time of the default head's fit (loading and extraction included) at 50 shots and on all 1,000."""
    pool, test = mtfl_protocol(MTFL, "aflw")
    timgs, tpts = load_samples(test, size=model.config.resize)
    out: dict[str, Any] = {"model": model.name, "fingerprint": model.fingerprint, "threads": torch.get_num_threads()}
    for n, goal in ((50, 20), ("all", 120)):
        idx = np.arange(len(pool)) if n == "all" else np.random.default_rng(0).permutation(len(pool))[:n]
        t0 = time.perf_counter()
        imgs, pts = load_samples([pool[i] for i in idx], size=model.config.resize)
        head = LandmarkHead(5, random_state=0, progress=False).fit(model, imgs, pts,
                                                                   landmark_names=landmark_names(pool))  # as eval
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = head.predict(timgs)
        out[str(n)] = {"fit_wall_seconds": round(wall, 2), "goal_seconds": goal,
                       "predict_seconds_1995": round(time.perf_counter() - t1, 2),
                       "nme_test": 100.0 * float(nme(pred, tpts)), "selection": _record(head)}
    return out


def paper(model: hyperland.HyperlandModel, n: int = 50, seeds: int = 3) -> dict[str, Any]:
    """Default fit vs the paper's schedule (1,000 epochs of the n images, fresh TPS from a pool of 20 copies)."""
    pool, _ = mtfl_protocol(MTFL, "mtfl-aflw")
    timgs, tpts = _test_set(model)
    pimgs, ppts = load_samples(pool[:2000], size=model.config.resize)
    proj = fit_projection(model, pimgs, n_components=128, random_state=0)
    feats = encode(model, pimgs, projection=proj, pool=2)
    tfeats = encode(model, timgs, projection=proj, pool=2)
    configs = {"default": {"method": "regressor"},  # the regressor's own defaults vs the paper's schedule
               "paper": {"method": "regressor", "lr": 1e-3, "n_augment": 20, "steps": math.ceil(1000 * n / 32)}}
    out: dict[str, Any] = {"shots": n, "seeds": seeds, "crop": CROP}
    for name, opts in configs.items():
        vals, secs = [], []
        for seed in range(seeds):
            idx = np.random.default_rng(seed).permutation(len(pimgs))[:n]
            t0 = time.perf_counter()
            head = LandmarkHead(5, random_state=seed, progress=False, **opts)
            head.fit(model, [pimgs[i] for i in idx], ppts[idx], features=feats[idx])
            secs.append(time.perf_counter() - t0)
            vals.append(100.0 * float(nme(head.predict(features=tfeats), tpts)))
        out[name] = {"options": opts, "nme": vals, "mean_nme": float(np.mean(vals)), "fit_seconds": secs,
                     "mean_fit_seconds": float(np.mean(secs))}
    out["nme_ratio_default_over_paper"] = out["default"]["mean_nme"] / out["paper"]["mean_nme"]
    out["speedup"] = out["paper"]["mean_fit_seconds"] / out["default"]["mean_fit_seconds"]
    return out


def protocol(model: hyperland.HyperlandModel, names: list[str], seeds: int) -> dict[str, Any]:
    res = {}
    for name in names:
        pool, test = mtfl_protocol(MTFL, name)
        t0 = time.perf_counter()
        r = run_protocol(model, pool, test, seeds=seeds, progress=False)
        r["wall_seconds"] = round(time.perf_counter() - t0, 1)
        r["peak_rss_gb_so_far"] = round(_rss_gb(), 2)
        r["crop"] = CROP if name == "mtfl-aflw" else ("AFLW crops as given" if name == "aflw" else "whole images")
        res[name] = r
        _merge({"protocol": res})
        sys.stdout.write(json.dumps({name: {"summary": r["summary"], "mean_shape_nme": r["mean_shape_nme"]}}) + "\n")
    return res


def _merge(part: dict[str, Any]) -> None:
    doc = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for k, v in part.items():
        if isinstance(v, dict) and isinstance(doc.get(k), dict):
            doc[k].update(v)
        else:
            doc[k] = v
    doc["environment"] = {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "input": "resize 136, border 20 -> 96 px",
                          "note": "2-core CPU shared with other engineers while measured"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="+", choices=("fit50", "fitall", "protocol", "paper", "aflw"))
    ap.add_argument("--model", default="random-r18", help="model for every part (default random-r18)")
    ap.add_argument("--protocols", default="mtfl-aflw")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    model = hyperland.load(args.model)
    for part in args.parts:
        if part == "aflw":
            r = aflw(model)
            _merge({f"aflw-{model.name}": r})
            sys.stdout.write(json.dumps({part: r}) + "\n")
            continue
        if part == "protocol":
            protocol(model, args.protocols.split(","), args.seeds)
            continue
        r = paper(model, seeds=args.seeds) if part == "paper" else {"fit50": fit50, "fitall": fitall}[part](model)
        _merge({part: r})
        sys.stdout.write(json.dumps({part: r}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
