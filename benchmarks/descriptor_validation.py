"""Descriptor choice for the default head on a validation split of the aflw pool (never the test split).

The first 500 faces of the aflw labelled pool are the labelled images, the other 500 the validation faces.

* ``protocol``: the default head with the model's learned projection vs a PCA-128 of the layer 1-4
  hypercolumn fitted on the unlabelled labelled-side images (as in every protocol table), 20 / 50 / all (500)
  shots x 2 seeds, through ``run_protocol``.
* ``own``: the same comparison as a user's fit makes it — ``LandmarkHead(descriptor=...).fit(model, images,
  points)`` on 5 / 20 / 50 of the 500, so the PCA is fitted on those labelled images (and their augmented
  copies) alone — scored on the 500 validation faces, 2 seeds.

Writes benchmarks/results/descriptor_validation.json.

    OMP_NUM_THREADS=2 flock "$BENCH_LOCK" python benchmarks/descriptor_validation.py [protocol] [own]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import hyperland
from hyperland.data import load_samples
from hyperland.data.mtfl import mtfl_protocol
from hyperland.evaluate import run_protocol
from hyperland.heads import LandmarkHead

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
OUT = ROOT / "benchmarks" / "results" / "descriptor_validation.json"
DESCRIPTORS = ("learned", "pca")


def protocol_part(model: hyperland.HyperlandModel, labelled: list, val: list) -> dict[str, dict[str, float]]:
    """Both descriptors, and beside them the mean shape and HOG → ridge on the same subsets and seeds."""
    out: dict[str, dict[str, float]] = {}
    for desc in DESCRIPTORS:
        base = ("mean_shape", "hog_ridge") if desc == DESCRIPTORS[0] else ()
        r = run_protocol(model, labelled, val, shots=(20, 50, "all"), seeds=2, baselines=base, confidence=False,
                         head_options={"descriptor": desc}, progress=False)
        for s in r["summary"]:
            out.setdefault(desc if s["method"] == "ridge" else s["method"], {})[str(s["shots"])] = round(s["mean"], 2)
        print("protocol", {m: v for m, v in out.items()}, flush=True)
    return out


def own_part(model: hyperland.HyperlandModel, labelled: list, val: list) -> dict[str, dict[str, float]]:
    imgs, pts = load_samples(labelled, size=136)
    val_imgs, val_pts = load_samples(val, size=136)
    out: dict[str, dict[str, float]] = {d: {} for d in DESCRIPTORS}
    for shots in (5, 20, 50):
        for desc in DESCRIPTORS:
            scores, t0 = [], time.perf_counter()
            for seed in range(2):
                idx = np.random.default_rng(seed).permutation(len(imgs))[:shots]
                head = LandmarkHead(5, descriptor=desc, random_state=seed, progress=False)  # type: ignore[arg-type]
                head.fit(model, [imgs[i] for i in idx], pts[idx])
                scores.append(head.score(val_imgs, val_pts))
            out[desc][str(shots)] = round(float(np.mean(scores)), 2)
            print("own", shots, desc, out[desc][str(shots)], f"{(time.perf_counter() - t0) / 2:.1f} s per fit + score",
                  flush=True)
    return out


def main() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = hyperland.load("mtfl-dense-r18")
    pool, _ = mtfl_protocol(MTFL, "aflw")
    labelled, val = pool[:500], pool[500:]
    parts = [a for a in sys.argv[1:] if a in ("protocol", "own")] or ["protocol", "own"]
    record = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    record.update({"model": model.name, "split": "aflw pool: first 500 labelled, last 500 validation", "seeds": 2})
    if "protocol" in parts:
        record["nme"] = protocol_part(model, labelled, val)
    if "own" in parts:
        record["nme_own_fit"] = own_part(model, labelled, val)
    OUT.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
