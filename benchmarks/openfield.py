"""Openfield (DeepLabCut's example: one mouse anywhere in 640 x 480 frames, 4 parts): mean pixel error on the last
36 labelled frames, labelled subsets drawn from the first 80, 3 seeds, with the mean shape and HOG -> ridge
beside the heads (same subsets and seeds).

    flock ../bench.lock python benchmarks/openfield.py [--shots 5,20,80] [--seeds 3] [--heads object,none]
        [--options '{"frame_turns": 4}'] [--model runs/openfield-adapt/export] [--tag=-turns4]
    flock ../bench.lock python benchmarks/openfield.py --pool-cv [--shots 20,60]
    flock ../bench.lock python benchmarks/openfield.py --orient-cv [--shots 20,60]

``--pool-cv`` is the validation protocol (choices are made on it, never on the test frames): the first 80
labelled frames in four blocks of 20 consecutive frames, each held out in turn, the labelled subsets drawn from
the other 60 (consecutive video frames are alike, so a random split would flatter); writes
benchmarks/results/openfield-poolcvTAG.json. ``--orient-cv`` validates turning (a top-view animal turns freely,
and the pool's mouse never faces right while two test frames show it so): the pool's frames at either end of its
orientations held out in turn, labelled subsets drawn from the frames 15 degrees or more away
(:func:`orientation_splits`); writes benchmarks/results/openfield-orientcvTAG.json.

Rows: ``object`` is ``LandmarkHead(4, framing="object")`` (a coarse head on the whole frame, a fine head on a crop
around the mouse), ``none`` the plain default head on the squashed frame, both on the embedded default model;
``mean shape`` the labelled frames' mean pixel positions; ``HOG -> ridge`` scikit-image HOG of the grey frame
(160 x 120, 8 px cells) -> RidgeCV (the default head's readout). Writes benchmarks/results/openfield.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import hyperland
from hyperland.heads import LandmarkHead

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dlc-openfield"
OUT = REPO / "benchmarks" / "results" / "openfield.json"


def openfield() -> tuple[list[str], np.ndarray, list[str] | None]:
    """The 116 labelled frames, their (116, 4, 2) points (NaN where a part is unlabelled) and the part names
    (what ``hyperland fit --train`` gives the head: its ``mirror="auto"`` pairs leftear and rightear)."""
    from hyperland.data import landmark_names, read_keypoints

    samples = read_keypoints(DATA / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv")
    return [str(s.image) for s in samples], np.stack([s.points for s in samples]), landmark_names(samples)


def hog_features(paths: list[str]) -> np.ndarray:
    """(N, F) HOG of each grey frame at 160 x 120 (computed once per run: every subset indexes it)."""
    from PIL import Image
    from skimage.feature import hog

    return np.stack([hog(np.asarray(Image.open(p).convert("L").resize((160, 120)), np.float32) / 255.0,
                         orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for p in paths])


def hog_ridge(train: np.ndarray, train_pts: np.ndarray, test: np.ndarray) -> np.ndarray:
    """HOG rows of the labelled frames and their pixel points -> the test rows' pixel points (the library's
    HOG -> ridge baseline on these rows)."""
    from hyperland.heads.baselines import HogRidge

    wh = np.array([640.0, 480.0], np.float32)
    return HogRidge().fit(train, torch.from_numpy(train_pts / wh)).predict(test).numpy() * wh


def orientation_splits(points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two (labelled, held-out) splits of the pool by the mouse's orientation (the snout-to-tail-base angle, which
    spans -98 to 88 degrees there): held out the frames at 40 degrees or more, labelled those below 25; held out
    those at -45 or less, labelled those above -30 (a 15-degree gap between them, as the test frames 108 and 115,
    at 108 and 128 degrees, lie 20-40 degrees beyond the pool)."""
    d = points[:, 3] - points[:, 0]
    angle = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    return [(np.flatnonzero(angle < 25), np.flatnonzero(angle >= 40)),
            (np.flatnonzero(angle > -30), np.flatnonzero(angle <= -45))]


def coarse_error(head: LandmarkHead, model, paths: list[str], points: np.ndarray) -> float:
    """Mean px distance of a framed head's coarse object centre from the labelled points' bounding-box centre."""
    from hyperland.heads.framing import centre_extent, load_frames, stage_models

    centre = head.coarse_.predict(load_frames(paths), model=stage_models(head, model)[0])[:, -1]
    return float(np.nanmean(np.linalg.norm(centre - centre_extent(points)[0], axis=-1)))


def error(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.nanmean(np.linalg.norm(pred - truth, axis=-1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", default="5,20,80")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--heads", default="object,none")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="what hyperland.load() reads (default: the embedded default)")
    ap.add_argument("--tag", default="", help="suffix of the JSON file name (benchmarks/results/openfieldTAG.json)")
    ap.add_argument("--options", default="{}", help="LandmarkHead options of the framing=object head (JSON)")
    ap.add_argument("--pool-cv", action="store_true", help="validation: 4 blocks of frames 0-79 held out")
    ap.add_argument("--orient-cv", action="store_true",
                    help="validation: the pool's frames at either end of its orientations held out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths, pts, names = openfield()
    splits = [(np.setdiff1d(np.arange(80), block), block) for block in np.arange(80).reshape(4, 20)] \
        if args.pool_cv else orientation_splits(pts[:80]) if args.orient_cv else [(np.arange(80), np.arange(80, 116))]
    model = hyperland.load(args.model) if args.model else hyperland.load()
    hogs = hog_features(paths)
    rows: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {}
    for shots, (pool, test) in [(int(s), split) for s in args.shots.split(",") for split in splits]:
        test_paths = [paths[i] for i in test]
        for seed in range(args.seeds if shots < len(pool) else 1):
            idx = np.sort(np.random.default_rng(seed).choice(pool, shots, replace=False))
            train = [paths[i] for i in idx]
            res = {"mean shape": error(np.broadcast_to(np.nanmean(pts[idx], 0), pts[test].shape), pts[test]),
                   "HOG -> ridge": error(hog_ridge(hogs[idx], pts[idx], hogs[test]), pts[test])}
            for framing in args.heads.split(","):
                t0 = time.perf_counter()
                opts = json.loads(args.options) if framing == "object" else {}
                head = LandmarkHead(4, framing=framing, random_state=seed, progress=False, **opts).fit(
                    model, train, pts[idx], landmark_names=names)
                seconds.setdefault(f"{framing} fit {shots}", []).append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                res[f"head, framing={framing}"] = error(head.predict(test_paths), pts[test])
                seconds.setdefault(f"{framing} predict {len(test)} frames", []).append(time.perf_counter() - t0)
                if framing == "object":  # where the coarse stage puts the object's centre
                    res["coarse centre, framing=object"] = coarse_error(head, model, test_paths, pts[test])
            for name, value in res.items():
                rows.setdefault(name, {}).setdefault(str(shots), []).append(value)
            print(shots, seed, {k: round(v, 1) for k, v in res.items()}, flush=True)
    table = {name: {s: float(np.mean(v)) for s, v in by.items()} for name, by in rows.items()}
    shots_cols = list(next(iter(rows.values())))
    what = "pool CV, 4 blocks of 20 frames held out" if args.pool_cv else \
        "orientation CV, the pool's two ends of its orientations held out" if args.orient_cv else \
        "test = last 36 frames"
    print(f"\n| mean px error (openfield, {what}) | " + " | ".join(shots_cols) + " |")
    print("|---|" + "---|" * len(shots_cols))
    for name, by in table.items():
        print(f"| {name} | " + " | ".join(f"{by[s]:.1f}" for s in shots_cols) + " |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    kind = "-poolcv" if args.pool_cv else "-orientcv" if args.orient_cv else ""
    out = OUT.with_name(f"openfield{kind}{args.tag}.json")
    out.write_text(json.dumps({"table": table, "runs": rows, "fit_seconds": seconds, "model": model.name,
                               "seeds": args.seeds, "threads": args.threads, "object_options": args.options,
                               "protocol": what},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
