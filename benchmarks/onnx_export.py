"""The exported ONNX graph of a head against the eager Python path (issue 20, item 2). Writes
benchmarks/results/onnx_export.json.

Fits the default head (``LandmarkHead(5)``, ridge, every default) on the 20 bundled training faces with the embedded
default model, exports it (``to_onnx``, verified), and times both paths on the same 32 bundled faces as uint8
(H, W, 3) arrays (150 × 150 AFLW crops): ``head.predict(list_of_arrays)`` (eager: torch + the head) and
``session.run`` of the graph in onnxruntime, both on the same number of CPU threads (torch.set_num_threads and
onnxruntime's intra-op threads; ``--threads``, default 2 and 1), at batch 1 (the 32 faces one by one) and batch 32
(one call). The two paths alternate, ``--repeat`` rounds after one warm-up, and each figure is the median round,
so the ratios are measured in one run under the same load. Also records the graph's size in bytes, the export
time, the load average and the largest difference between the two paths' points and confidences on these faces.

    nice -n 19 flock "$BENCH_LOCK" python benchmarks/onnx_export.py

(``BENCH_LOCK``: a lock file that every benchmark on the machine shares, so that none runs beside another.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "onnx_export.json"))
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    from PIL import Image

    import hyperland
    from hyperland.assets import faces_dir
    from hyperland.data import load_samples, read_keypoints

    load_start = [round(x, 2) for x in os.getloadavg()]
    torch.set_num_threads(max(args.threads))
    model = hyperland.load()
    train_imgs, train_pts = load_samples(read_keypoints(faces_dir() / "train.csv"))
    t0 = time.perf_counter()
    head = hyperland.LandmarkHead(5, random_state=0, progress=False).fit(model, train_imgs, train_pts)
    fit_s = time.perf_counter() - t0
    faces = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(faces_dir().glob("*.jpg"))[:32]])

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = head.to_onnx(Path(tmp) / "face5.onnx")
        export_s = time.perf_counter() - t0
        size = path.stat().st_size
        sessions = {}
        for threads in args.threads:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            sessions[threads] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def eager(batch: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
        torch.set_num_threads(threads)
        return head.predict(list(batch), return_confidence=True)  # type: ignore[return-value]

    def onnx(batch: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
        pts, conf = sessions[threads].run(["landmarks", "confidence"], {"images": batch})
        return pts, conf

    ref, got = eager(faces, 1), onnx(faces, 1)
    diff = {"points_px": float(np.abs(ref[0] - got[0]).max()), "confidence": float(np.abs(ref[1] - got[1]).max())}
    paths = {"eager": eager, "onnxruntime": onnx}
    rows = []
    for threads in args.threads:
        for bs in (1, 32):
            batches = [faces[i:i + bs] for i in range(0, len(faces), bs)]
            times: dict[str, list[float]] = {k: [] for k in paths}
            for rnd in range(args.repeat + 1):  # round 0 warms up
                for name, fn in paths.items():
                    t0 = time.perf_counter()
                    for b in batches:
                        fn(b, threads)
                    if rnd:
                        times[name].append(time.perf_counter() - t0)
            row: dict = {"threads": threads, "batch": bs, "images": len(faces)}
            for name in paths:
                row[f"{name}_img_per_s"] = round(len(faces) / statistics.median(times[name]), 1)
            row["ratio_onnx_over_eager"] = round(row["onnxruntime_img_per_s"] / row["eager_img_per_s"], 2)
            rows.append(row)
            print(f"{threads} threads, batch {bs:>2}: eager {row['eager_img_per_s']:7.1f} img/s   onnxruntime "
                  f"{row['onnxruntime_img_per_s']:7.1f} img/s   ratio {row['ratio_onnx_over_eager']:.2f}", flush=True)
    result = {
        "benchmark": "ONNX graph of the default head (onnxruntime) vs head.predict (eager), images/s, median of "
                     f"{args.repeat} alternating rounds",
        "model": model.name, "head": "LandmarkHead(5) ridge, defaults, fitted on the 20 bundled training faces",
        "images": "32 bundled AFLW faces, 150x150 uint8 RGB arrays",
        "graph_bytes": size, "export_s": round(export_s, 1), "fit_s": round(fit_s, 1), "max_difference": diff,
        "rows": rows, "platform": platform.platform(), "cpus": os.cpu_count(),
        "load_average_1_5_15min": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "hyperland": hyperland.__version__},
    }
    print(f"graph {size:,} bytes, export {export_s:.1f} s; max difference {diff}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
