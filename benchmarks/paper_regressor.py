"""The paper's regressor (LandmarkHead.paper) beside the default ridge head and the mean shape, on MTFL's `aflw`
protocol with random-r18 → benchmarks/results/paper_regressor.json and a small table on stdout.

Labelled pool: the first 1,000 AFLW test-list faces; test: the other 1,995 (AFLW crops as given, resized to
the model's 136 px, border 20 → 96 px input). Shots: 50 (one seed) and all 1,000. Each head is fitted from
images (feature extraction, PCA and few-shot warps included in its fit seconds) and scored by inter-ocular
NME (%) on the test faces (the first ``--test`` of them).

The paper's schedule (1,000 epochs of 1,000 maps few-shot, 200 epochs of 1,000 full) is 31,250 / 6,250 Adam
steps on 960-channel 48×48 hypercolumns: hours on a CPU. ``--epochs-scale`` multiplies both epoch counts
(at least 1 epoch each) and the JSON records the epochs and steps actually run.

    nice -n 19 flock "$BENCH_LOCK" python benchmarks/paper_regressor.py --epochs-scale 0.002 --test 500
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hyperland
from hyperland.data import load_samples, mtfl_protocol
from hyperland.geometry import normalised_to_pixels
from hyperland.heads import LandmarkHead, paper_options
from hyperland.metrics import nme
from hyperland.protocol import mean_shape

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
OUT = ROOT / "benchmarks" / "results" / "paper_regressor.json"


def _nme(pred: np.ndarray, gt: np.ndarray) -> float:
    return 100.0 * float(nme(pred, gt))


def _run(model: hyperland.HyperlandModel, imgs: list, pts: np.ndarray, timgs: list, tpts: np.ndarray,
         *, few_shot: bool, scale: float, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mean shape, default ridge head and paper regressor fitted on (imgs, pts), scored on (timgs, tpts).
    ``overrides``: extra LandmarkHead.paper options (smoke checks only, e.g. ``{"steps": 2}``)."""
    n = len(imgs)
    rows: dict[str, Any] = {}
    t0 = time.perf_counter()
    ms = mean_shape(model, pts, [im.size[::-1] for im in imgs])
    pred = normalised_to_pixels(model, ms.expand(len(timgs), -1, -1), [im.size[::-1] for im in timgs]).numpy()
    rows["mean shape"] = {"nme": _nme(pred, tpts), "fit_seconds": time.perf_counter() - t0}

    t0 = time.perf_counter()
    ridge = LandmarkHead(5, random_state=0, progress=False).fit(model, imgs, pts)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows["ridge (default)"] = {"nme": _nme(ridge.predict(timgs), tpts), "fit_seconds": fit_s,
                               "predict_seconds": time.perf_counter() - t0, "selection": ridge.selection_}

    paper_epochs = paper_options(few_shot=few_shot)["epochs"]
    epochs = max(1, round(paper_epochs * scale))
    head = LandmarkHead.paper(5, few_shot=few_shot, epochs=epochs, random_state=0, progress=False,
                              **(overrides or {}))
    t0 = time.perf_counter()
    head.fit(model, imgs, pts)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = head.predict(timgs)
    rows["paper regressor"] = {
        "nme": _nme(pred, tpts), "fit_seconds": fit_s, "predict_seconds": time.perf_counter() - t0,
        "epochs": epochs, "paper_epochs": paper_epochs, "steps": head.history_["steps"],
        "paper_steps": math.ceil(paper_epochs * max(head.history_["n_train_maps"], head.epoch_size or 0) / 32),
        "n_train_maps": head.history_["n_train_maps"], "train_loss": head.history_["train_loss"],
        "grid": list(head.grid_), "channels": head.n_features_in_,
    }
    return {"n_labelled": n, "few_shot": few_shot, "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs-scale", type=float, default=1.0,
                    help="multiply the paper's epochs (1,000 few-shot, 200 full) by this; default 1 (hours on CPU)")
    ap.add_argument("--test", type=int, default=0, help="score on the first N test faces only (0: all 1,995)")
    ap.add_argument("--shots", default="50,all", help="comma-separated: 50,all")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    model = hyperland.load("random-r18")
    pool, test = mtfl_protocol(MTFL, "aflw")
    if args.test:
        test = test[:args.test]
    timgs, tpts = load_samples(test, size=model.config.resize)
    pimgs, ppts = load_samples(pool, size=model.config.resize)
    doc: dict[str, Any] = {
        "protocol": "aflw", "model": "random-r18", "n_test": len(test), "epochs_scale": args.epochs_scale,
        "crop": "AFLW crops as given, resized to 136 px, border 20 -> 96 px input", "seed": 0,
        "environment": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
                        "note": "2-core CPU shared with a training run, nice 19"},
        "results": {},
    }
    lines = [f"aflw protocol, random-r18, test faces {len(test)}, epochs x {args.epochs_scale}",
             f"{'shots':>6} {'head':<18} {'NME %':>7} {'fit s':>8}  notes"]
    for shots in args.shots.split(","):
        if shots == "all":
            imgs, pts, few = pimgs, ppts, False
        else:
            idx = np.random.default_rng(0).permutation(len(pimgs))[:int(shots)]
            imgs, pts, few = [pimgs[i] for i in idx], ppts[idx], True
        r = _run(model, imgs, pts, timgs, tpts, few_shot=few, scale=args.epochs_scale)
        doc["results"][shots] = r
        for name, row in r["rows"].items():
            note = (f"{row['epochs']}/{row['paper_epochs']} epochs, {row['steps']}/{row['paper_steps']} steps"
                    if "epochs" in row else "")
            lines.append(f"{shots:>6} {name:<18} {row['nme']:7.2f} {row['fit_seconds']:8.1f}  {note}")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(doc, indent=1) + "\n")
    for shots, r in doc["results"].items():
        rows = r["rows"]
        r["nme_ratio_paper_over_ridge"] = rows["paper regressor"]["nme"] / rows["ridge (default)"]["nme"]
        r["time_ratio_paper_over_ridge"] = rows["paper regressor"]["fit_seconds"] / rows["ridge (default)"]["fit_seconds"]
        lines.append(f"{shots:>6} paper/ridge: NME x {r['nme_ratio_paper_over_ridge']:.2f}, "
                     f"fit time x {r['time_ratio_paper_over_ridge']:.1f}")
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
