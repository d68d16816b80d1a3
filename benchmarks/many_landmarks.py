"""Many landmarks: the default head's fit time (extraction included) against the number of landmarks K, on the
``afw`` pool (300W's AFW faces, 68 points; K of them taken evenly along the 68), 2 threads.

    flock ../bench.lock python benchmarks/many_landmarks.py [--shots 10,50] [--ks 5,17,34,68]

Issue 17's goals: the 50-shot 68-point fit within 20 s, and a fit time that grows at most linearly in K (the
``per_landmark`` ratio of the JSON must not grow with K). Writes benchmarks/results/many_landmarks.json; NME is
on the 137 ``afw`` test faces, normalised by the outer eye corners (36/45), for K = 68 only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import hyperland
from hyperland.data.w300 import afw_protocol
from hyperland.heads import LandmarkHead
from hyperland.metrics import nme

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "300w-afw"
OUT = REPO / "benchmarks" / "results" / "many_landmarks.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", default="10,50")
    ap.add_argument("--ks", default="5,17,34,68")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pool, test = afw_protocol(DATA)
    model = hyperland.load()
    rows = []
    for shots in [int(s) for s in args.shots.split(",")]:
        idx = np.sort(np.random.default_rng(0).choice(len(pool), shots, replace=False))
        images = [str(pool[i].image) for i in idx]
        points = np.stack([pool[i].points for i in idx])
        for k in [int(v) for v in args.ks.split(",")]:
            keep = np.unique(np.linspace(0, 67, k).round().astype(int))
            t0 = time.perf_counter()
            head = LandmarkHead(len(keep), random_state=0, progress=False).fit(model, images, points[:, keep])
            seconds = time.perf_counter() - t0
            row = {"shots": shots, "k": len(keep), "fit_seconds": round(seconds, 2),
                   "per_landmark": round(seconds / len(keep), 3)}
            if len(keep) == 68:
                truth = np.stack([s.points for s in test])
                pred = head.predict([str(s.image) for s in test])
                row["nme"] = round(100 * float(nme(pred, truth, eyes=(36, 45))), 3)
            rows.append(row)
            print(row, flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": rows, "threads": args.threads, "model": model.name}, indent=1) + "\n")


if __name__ == "__main__":
    main()
