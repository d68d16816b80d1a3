"""The fitted-shape pass (``hyperland.heads.decoding.FIT_STD``) chosen on validation faces only: ``aflw-val``
(heads fitted on the aflw pool's first 500 faces, scored on its other 500), many seeds, at 1 / 5 / 10 / 50 shots.

Each head is fitted once with the default options; its recorded decoding (``head.selection_``) is then scored as
chosen, in one pass (``fit_std`` None), and with the second pass at each width × temperature of the grid, on top of
that same decoding (the other choices unchanged). Mirror averaging on, as the default head predicts. NME %
(inter-ocular), mean ± std over seeds; the mean shape beside it. Writes benchmarks/results/fitted_pass.json.

    flock ../bench.lock python benchmarks/fitted_pass.py [--shots 1,5,10,50] [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

import hyperland
from hyperland.data import landmark_names, load_samples
from hyperland.data.mtfl import mtfl_protocol
from hyperland.features import encode
from hyperland.heads import LandmarkHead
from hyperland.metrics import nme

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
OUT = ROOT / "benchmarks" / "results" / "fitted_pass.json"
SIZE = 136  # faces loaded as `hyperland eval` loads them (its image_size), then read at the model's input size
GRID = [(None, None)] + [(s, t) for s in (0.15, 0.2, 0.25) for t in (0.5, 1.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", default="1,5,10,50")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    start = time.time()
    model = hyperland.load()
    pool, test = mtfl_protocol(MTFL, "aflw-val")
    imgs, pts = load_samples(pool, size=SIZE)
    timgs, tpts = load_samples(test, size=SIZE)
    names = landmark_names(pool)
    feats = mirror_feats = None
    scores: dict[str, dict[str, list[float]]] = {}
    for shots in (int(s) for s in args.shots.split(",")):
        for seed in range(args.seeds):
            idx = np.random.default_rng(seed).permutation(len(pool))[:shots]
            head = LandmarkHead(5, random_state=seed, progress=False)
            head.fit(model, [imgs[i] for i in idx], pts[idx], landmark_names=names)
            if feats is None:
                feats = encode(model, timgs, **head.encoding_)
                mirror_feats = head.encode_mirrored(model, timgs)
            chosen = dict(head.state_.selection)
            row = scores.setdefault(str(shots), {})
            row.setdefault("mean shape", []).append(100 * float(nme(np.broadcast_to(pts[idx].mean(0), tpts.shape),
                                                                    tpts, eyes=(0, 1))))
            row.setdefault("as chosen", []).append(100 * float(nme(head.predict(features=feats,
                                                                                mirror_features=mirror_feats),
                                                                   tpts, eyes=(0, 1))))
            for std, tau in GRID:
                head.state_.selection = {**chosen, "fit_std": std, "fit_tau": tau or 1.0}
                key = "one pass" if std is None else f"fit_std {std}, tau {tau}"
                row.setdefault(key, []).append(100 * float(nme(head.predict(features=feats,
                                                                            mirror_features=mirror_feats),
                                                               tpts, eyes=(0, 1))))
            head.state_.selection = chosen
            print(shots, seed, {k: round(v[-1], 2) for k, v in row.items()}, flush=True)
    summary = {s: {k: [round(float(np.mean(v)), 3), round(float(np.std(v)), 3)] for k, v in row.items()}
               for s, row in scores.items()}
    for s, row in summary.items():
        print(f"{s} shots: " + "; ".join(f"{k} {m:.2f} ± {d:.2f}" for k, (m, d) in row.items()))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"protocol": "aflw-val", "model": "mtfl-dense-r18 (default)", "seeds": args.seeds,
                               "metric": "NME % (inter-ocular), mean and std over seeds", "summary": summary,
                               "per_seed": scores, "wall_seconds": round(time.time() - start, 1),
                               "command": "python benchmarks/fitted_pass.py --shots " + args.shots
                                          + f" --seeds {args.seeds}"}, indent=1))
    tmp.replace(OUT)
    print(f"wrote {OUT.relative_to(ROOT)} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
