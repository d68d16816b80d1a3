"""Descriptor choice for the default head on a validation split of the aflw pool (never the test split).

The first 500 faces of the aflw labelled pool are the labelled images, the other 500 the validation faces;
the default head with the model's learned projection vs a PCA-128 of the layer 1-4 hypercolumn (fitted on the
unlabelled labelled-side images, as in every protocol table), 20 / 50 / all (500) shots x 2 seeds.
Writes benchmarks/results/descriptor_validation.json.

    OMP_NUM_THREADS=1 flock "$BENCH_LOCK" python benchmarks/descriptor_validation.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

import hyperland
from hyperland.data.mtfl import mtfl_protocol
from hyperland.evaluate import run_protocol

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
OUT = ROOT / "benchmarks" / "results" / "descriptor_validation.json"


def main() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = hyperland.load("mtfl-dense-r18")
    pool, _ = mtfl_protocol(MTFL, "aflw")
    labelled, val = pool[:500], pool[500:]
    out: dict[str, dict[str, float]] = {}
    for desc in ("learned", "pca"):
        r = run_protocol(model, labelled, val, shots=(20, 50, "all"), seeds=2, baselines=(), confidence=False,
                         head_options={"descriptor": desc}, progress=False)
        out[desc] = {str(s["shots"]): round(s["mean"], 2) for s in r["summary"]}
        print(desc, out[desc], flush=True)
    OUT.write_text(json.dumps({"model": model.name, "split": "aflw pool: first 500 labelled, last 500 validation",
                               "seeds": 2, "nme": out}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
