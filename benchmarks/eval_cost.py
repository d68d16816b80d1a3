"""Cost of the default ``hyperland eval`` run (issue 16, item 4): wall time and peak RSS, before and after.

Runs ``hyperland eval --dataset mtfl --root ROOT --shots 5,50 --seeds 2 -q`` (the default model, protocol,
methods and baselines) as a child process from this checkout ("after") and from a temporary ``git worktree`` of
``--before`` ("before", PYTHONPATH pointing at it), each with the CLI's own thread settings. Wall time is the
child's; peak RSS is the child's ``ru_maxrss`` (``os.wait4``). A run longer than ``--timeout`` seconds is
stopped and reported as "> N s". The two runs' per-fit figures are compared (``identical``). It also estimates
from the sizes the memory that the ``lfwnet`` table's stored features need (pool 8,000, test 2,000).

Run it alone on a shared machine (the figures move with the machine's load; the load average is recorded):

    flock "$BENCH_LOCK" python benchmarks/eval_cost.py --root PATH/TO/mtfl

The lfwnet table (docs/results.md's, 7 shot counts x 3 seeds; its peak memory is issue 16's 4 GB goal) against
the last commit that stored the probe's input in memory (93b99d2):

    flock "$BENCH_LOCK" python benchmarks/eval_cost.py --root PATH/TO/mtfl --protocol lfwnet \
        --shots 1,5,10,20,50,100,all --seeds 3 --models mtfl-dense-r18 --before 93b99d2 --timeout 1800 \
        --out benchmarks/results/eval_cost_lfwnet.json

The full aflw tables (both models of docs/results.md, 7 shot counts x 3 seeds; issue 16's 2x goal) against the
commit whose committed tables took 4:16 + 5:40 (8af562d):

    flock "$BENCH_LOCK" python benchmarks/eval_cost.py --root PATH/TO/mtfl --protocol aflw \
        --shots 1,5,10,20,50,100,all --seeds 3 --models random-r18,mtfl-dense-r18 --before 8af562d \
        --timeout 1800 --out benchmarks/results/eval_cost_aflw.json

Writes benchmarks/results/eval_cost.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLI = "import sys; from hyperland.cli import main; sys.exit(main())"


def run_eval(src: Path, root: str, out: Path, *, shots: str, seeds: int, timeout: float,
             protocol: str | None = None, model: str | None = None) -> dict[str, Any]:
    """One ``hyperland eval`` child with ``src`` first on the path: wall seconds, peak RSS, its JSON document."""
    cmd = [sys.executable, "-c", CLI, "eval", "--dataset", "mtfl", "--root", root, "--shots", shots,
           "--seeds", str(seeds), "--out", str(out), "--name", "run", "-q",
           *(["--protocol", protocol] if protocol else []), *(["--model", model] if model else [])]
    env = {**os.environ, "PYTHONPATH": str(src)}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)  # also the child's working directory: `-c` puts the cwd first on sys.path
    proc = subprocess.Popen(cmd, env=env, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    timer.cancel()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    timed_out = wall >= timeout
    rec: dict[str, Any] = {"source": "this checkout" if src == REPO else "a worktree of the before commit",
                           "wall_seconds": round(wall, 1), "timed_out": timed_out,
                           "peak_rss_mb": round(usage.ru_maxrss / 1024),
                           "exit_status": os.waitstatus_to_exitcode(status),
                           "load_average_start": round(load0, 2), "load_average_end": round(os.getloadavg()[0], 2)}
    doc_path = out / "run.json"
    if not timed_out and doc_path.is_file():
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        run = doc["runs"][0]
        rec["timing"] = run.get("timing")
        rec["figures"] = {f"{r['method']} | {r['shots']} | {r['seed']}": r["nme"] for r in run["results"]}
        rec["mean_shape_nme"] = run.get("mean_shape_nme")
    elif not timed_out:
        rec["stderr_tail"] = err[-2000:]
    return rec


def combine(runs: list[dict[str, Any]], models: list[str | None]) -> dict[str, Any]:
    """One side's record over several models' runs: wall seconds summed, the largest peak RSS, every figure."""
    return {"source": runs[0]["source"], "wall_seconds": round(sum(r["wall_seconds"] for r in runs), 1),
            "timed_out": any(r["timed_out"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "load_average_start": runs[0]["load_average_start"], "load_average_end": runs[-1]["load_average_end"],
            "figures": {f"{m} | {k}": v for m, r in zip(models, runs) for k, v in r.get("figures", {}).items()},
            "mean_shape_nme": [r.get("mean_shape_nme") for r in runs],
            "per_model": {str(m): {k: v for k, v in r.items() if k != "figures"} for m, r in zip(models, runs)}}


def lfwnet_estimate() -> dict[str, Any]:
    """Bytes per stored image of each consumer on the default model → the lfwnet table's stored features."""
    import numpy as np
    from PIL import Image

    import hyperland
    from hyperland.heads.baselines import hog_features

    model = hyperland.load()
    grid = model.config.input_size // 4  # layer1's stride-4 grid: the finest of the hypercolumn
    head = (model.projection_dim or 128) * grid * grid * 2  # float16 descriptor map (learned, else PCA-128)
    probe = model.num_channels() * 8 * 8 * 2  # float16 pooled hypercolumn
    hog = hog_features(model, [Image.fromarray(np.zeros((136, 136, 3), np.uint8))]).shape[1] * 4
    n_pool, n_test = 8000, 2000
    in_memory = (n_pool + n_test) * (head + hog)
    return {"bytes_per_image": {"head_descriptors_f16": head, "probe_pooled_f16": probe, "hog_f32": hog},
            "pool": n_pool, "test": n_test, "stored_in_memory_gb_all_shots": round(in_memory / 1e9, 2),
            "probe_file_gb_all_shots": round((n_pool + n_test) * probe / 1e9, 2),
            "probe_fit_gram_gb_all_shots": round(2 * n_pool * n_pool * 8 / 1e9, 2),
            "note": "in memory = (pool + test) x (head + HOG) when 'all' labels the whole pool (the images are kept "
                    "only for the few-shot fits that warp them); the probe's input is in a temporary file "
                    "(hyperland._rowfile.RowFile), read back in blocks of rows; the all-shot ridge probe is solved "
                    "in kernel form (hyperland.heads.gcv): an (8000, 8000) float64 Gram matrix and its "
                    "eigenvectors."}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="the MTFL folder (training.txt, testing.txt)")
    ap.add_argument("--protocol", default=None, help="the eval protocol (default: eval's, mtfl-aflw)")
    ap.add_argument("--shots", default="5,50")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--before", default="5897a6b", help="commit of the 'before' run (default 5897a6b)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it is stopped")
    ap.add_argument("--only", choices=("before", "after"), default=None, help="measure one side only")
    ap.add_argument("--models", default="", help="comma-separated models, one eval each (default: eval's)")
    ap.add_argument("--out", default=str(RESULTS / "eval_cost.json"))
    args = ap.parse_args()
    proto = f" --protocol {args.protocol}" if args.protocol else ""
    models = [m for m in args.models.split(",") if m] or [None]
    doc: dict[str, Any] = {"benchmark": f"hyperland eval --dataset mtfl{proto} --shots {args.shots} "
                                        f"--seeds {args.seeds}"
                                        + (f", once per model: {', '.join(models)}" if models != [None] else ""),
                           "platform": platform.platform(), "cpus": os.cpu_count(), "before_commit": args.before}
    with tempfile.TemporaryDirectory(prefix="hyperland-evalcost-") as tmp:
        sides = {"after": REPO}
        if args.only != "after":
            before = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before],
                           check=True, capture_output=True)
            sides = {"before": before, **({} if args.only == "before" else sides)}
        try:
            for side, src in sides.items():
                runs = [run_eval(src, str(Path(args.root).resolve()), Path(tmp) / f"out-{side}-{m}",
                                 shots=args.shots, seeds=args.seeds, timeout=args.timeout, protocol=args.protocol,
                                 model=m) for m in models]
                doc[side] = r = runs[0] if len(runs) == 1 else combine(runs, models)
                wall = f"> {args.timeout:.0f}" if r["timed_out"] else f"{r['wall_seconds']:.0f}"
                print(f"{side:<6} wall {wall} s, peak RSS {r['peak_rss_mb']} MB, timing {r.get('timing')}, "
                      f"load {r['load_average_start']} -> {r['load_average_end']}", flush=True)
        finally:
            if "before" in sides:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(sides["before"])],
                               check=False, capture_output=True)
    b, a = doc.get("before"), doc.get("after")
    if b and a:
        doc["wall_ratio_before_over_after"] = round(b["wall_seconds"] / a["wall_seconds"], 2)
        doc["rss_ratio_before_over_after"] = round(b["peak_rss_mb"] / a["peak_rss_mb"], 2)
        if "figures" in b and "figures" in a:
            doc["identical"] = b["figures"] == a["figures"] and b["mean_shape_nme"] == a["mean_shape_nme"]
        print(f"before/after: wall x{doc['wall_ratio_before_over_after']}"
              f"{' (before stopped: a lower bound)' if b['timed_out'] else ''}, peak RSS "
              f"x{doc['rss_ratio_before_over_after']}, identical figures: {doc.get('identical')}")
    doc["lfwnet_estimate"] = lfwnet_estimate()
    print("lfwnet estimate:", json.dumps(doc["lfwnet_estimate"]))
    from hyperland._io import atomic_write_text

    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
