"""Video tracking speed: frames/s of ``hyperland.video.track`` on the first N frames of DeepLabCut's openfield video
(640×480 H.264) with the embedded default model (``hyperland.load()``) and a default head (``LandmarkHead(4)``,
ridge) fitted on 20 labelled frames (every 4th of the first 80 of labeled-data/m4s1; they come from another
session of the same arena), on 2 CPU threads. Prints a table and writes benchmarks/results/video.json.

Rows: ``track`` end to end (decode + predict, batch 32), and the split of the same loop: decoding alone
(``iter_frames``: FFmpeg decode + RGB conversion) and ``head.predict`` alone on the decoded batches; also
``track`` with ``smooth="savgol"`` and the overlay writer. Each is timed ``--repeats`` times (the median is
reported) after one warm-up run. Run under the bench lock on shared machines:

    flock "$BENCH_LOCK" python benchmarks/video.py
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import hyperland
from hyperland.heads import LandmarkHead
from hyperland.video import iter_frames, track, write_overlay

REPO = Path(__file__).resolve().parents[1]
OPENFIELD = Path(os.environ.get("HYPERLAND_OPENFIELD", REPO.parent / "shared" / "data" / "dlc-openfield"))
VIDEO = OPENFIELD / "videos" / "m3v1mp4.mp4"


def labelled(n: int) -> tuple[list[str], np.ndarray, list[str]]:
    """``n`` frames spread over the first 80 labelled ones: paths, (n, 4, 2) points (NaN: not labelled), names."""
    rows = list(csv.reader((OPENFIELD / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv").open()))
    names = rows[1][1::2]
    picked = [rows[3 + i] for i in np.linspace(0, 79, n).round().astype(int)]
    pts = np.array([[float(v) if v else np.nan for v in r[1:]] for r in picked]).reshape(n, len(names), 2)
    return [str(OPENFIELD / r[0]) for r in picked], pts, names


def split(head: LandmarkHead, n: int, batch: int) -> tuple[float, float]:
    """Seconds spent decoding and predicting in one pass over the first ``n`` frames."""
    decode = predict = 0.0
    t = time.perf_counter()
    for b in iter_frames(VIDEO, batch_size=batch, stop=n):
        t1 = time.perf_counter()
        decode += t1 - t
        head.predict([Image.fromarray(f) for f in b.frames], return_confidence=True)
        t = time.perf_counter()
        predict += t - t1
    return decode, predict


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    return statistics.median(_once(fn) for _ in range(repeats))


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "video.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = hyperland.load()
    imgs, pts, names = labelled(20)
    t = time.perf_counter()
    head = LandmarkHead(len(names), random_state=0).fit(model, imgs, pts, landmark_names=names)
    fit_s = time.perf_counter() - t
    head.progress = False
    n, b = args.frames, args.batch
    rows: dict[str, float] = {}
    rows["track"] = timed(lambda: track(head, VIDEO, stop=n, batch_size=b, progress=False), args.repeats)
    rows["track smooth=savgol"] = timed(lambda: track(head, VIDEO, stop=n, batch_size=b, smooth="savgol",
                                                      progress=False), args.repeats)
    splits = [split(head, n, b) for _ in range(args.repeats)]
    rows["decode (iter_frames)"] = statistics.median(s[0] for s in splits)
    rows["predict (head.predict)"] = statistics.median(s[1] for s in splits)
    tracks = track(head, VIDEO, stop=n, batch_size=b, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        rows["overlay (decode + draw + encode)"] = timed(
            lambda: write_overlay(VIDEO, tracks, Path(tmp) / "o.mp4", batch_size=b, progress=False), args.repeats)
    conf = tracks.confidence if tracks.confidence is not None else np.full(tracks.points.shape[:2], np.nan)
    result = {
        "benchmark": f"hyperland.video.track on the first {n} frames of openfield m3v1mp4.mp4 (640x480)",
        "model": model.name, "head": f"LandmarkHead({len(names)}) ridge, fitted on 20 labelled frames",
        "fit_s": round(fit_s, 2), "frames": n, "batch_size": b, "threads": args.threads, "repeats": args.repeats,
        "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
        "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "confidence_quantiles_5_25_50_75_95": [round(float(q), 3)
                                               for q in np.nanpercentile(conf, [5, 25, 50, 75, 95])],
        "rows": [{"what": k, "seconds": round(v, 3), "frames_per_s": round(n / v, 2),
                  "ms_per_frame": round(1e3 * v / n, 2)} for k, v in rows.items()],
    }
    print(f"{'what':<34} {'s':>8} {'frames/s':>9} {'ms/frame':>9}")
    for r in result["rows"]:
        print(f"{r['what']:<34} {r['seconds']:>8.2f} {r['frames_per_s']:>9.1f} {r['ms_per_frame']:>9.1f}")
    print(f"fit {fit_s:.1f} s; load average {result['load_average_1min']}; peak RSS {result['peak_rss_mb']} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
