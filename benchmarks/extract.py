"""Extraction speed and memory. Prints a table and writes benchmarks/results/extract.json.

(a) ``model.extract()`` at the default grid vs the bare backbone forward (both include ``model.preprocess``);
(b) ``model.extract(size=(48, 48), normalize=None)`` vs the naive reference
    (backbone → ``F.interpolate(bilinear, align_corners=False)`` per layer → ``torch.cat``);
    R18 and R50, 96 px network input, batch 32, CPU. Goals: (a) <= 1.3x, (b) <= 1.0x.
(c) ``hyperland extract`` over 1,000 MTFL images into one file: peak RSS of the child process (< 2 GB).

Every variant runs once per round, rounds interleave the variants (so load from other processes hits them
alike), and the medians of the rounds are reported. Run under ``flock "$BENCH_LOCK"`` on shared machines:

    flock "$BENCH_LOCK" python benchmarks/extract.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import hyperland
from hyperland.data import read_mtfl
from hyperland.images import load_image

REPO = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", REPO.parent / "shared" / "data" / "mtfl"))


def naive_hypercolumn(model: hyperland.HyperlandModel, images: torch.Tensor, size: tuple[int, int],
                      l2: bool = False) -> torch.Tensor:
    """The reference every user could write: all maps, interpolate each, concatenate."""
    with torch.no_grad():
        feats = model.backbone(model.preprocess(images))
        parts = [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats]
        if l2:
            parts = [p / p.norm(dim=1, keepdim=True).clamp_min(1e-12) for p in parts]
        return torch.cat(parts, dim=1)


def bare_forward(model: hyperland.HyperlandModel, images: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return model.backbone(model.preprocess(images))


def rounds(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for fn in variants.values():  # warm-up (allocator, oneDNN primitive cache)
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def speed(name: str, images: torch.Tensor, repeats: int) -> dict[str, object]:
    model = hyperland.load(name)
    n = images.shape[0]
    variants: dict[str, Callable[[], object]] = {
        "backbone": lambda: bare_forward(model, images),
        "extract_default": lambda: model.extract(images, batch_size=n, progress=False),
        "extract_default_no_norm": lambda: model.extract(images, normalize=None, batch_size=n, progress=False),
        "naive_48": lambda: naive_hypercolumn(model, images, (48, 48)),
        "extract_48": lambda: model.extract(images, size=(48, 48), normalize=None, batch_size=n, progress=False),
        "naive_48_l2": lambda: naive_hypercolumn(model, images, (48, 48), l2=True),
        "extract_48_l2": lambda: model.extract(images, size=(48, 48), batch_size=n, progress=False),
    }
    # parity check of what is being timed
    ref = naive_hypercolumn(model, images[:4], (48, 48))
    err = float((model.extract(images[:4], size=(48, 48), normalize=None) - ref).abs().max())
    med = rounds(variants, repeats)
    return {
        "model": name,
        "channels": model.num_channels(),
        "default_grid": list(model.extract(images[:1], progress=False).shape[-2:]),
        "seconds": med,
        "ratio_a_extract_default_vs_backbone": med["extract_default"] / med["backbone"],
        "ratio_a_no_norm": med["extract_default_no_norm"] / med["backbone"],
        "ratio_b_extract_48_vs_naive": med["extract_48"] / med["naive_48"],
        "ratio_b_l2": med["extract_48_l2"] / med["naive_48_l2"],
        "max_abs_diff_vs_naive_48": err,
    }


def rss(n_images: int, model: str, batch: int, threads: int) -> dict[str, object]:
    samples = read_mtfl(MTFL, "training")
    step = max(1, len(samples) // n_images)
    paths = [str(s.image) for s in samples[::step][:n_images]]
    with tempfile.TemporaryDirectory(prefix="hyperland-bench-") as tmp:
        out = Path(tmp) / "feats.safetensors"
        lst = Path(tmp) / "images.txt"
        lst.write_text("\n".join(paths))
        cmd = [sys.executable, "-m", "hyperland.cli", "extract", "--model", model, *paths, "--out", str(out),
               "--batch-size", str(batch), "-q"]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN would mix in others)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"hyperland extract failed with status {proc.returncode}")
        peak_kb = usage.ru_maxrss  # KiB on Linux
        size = out.stat().st_size
    return {"images": len(paths), "model": model, "batch_size": batch, "output_bytes": size,
            "peak_rss_bytes": peak_kb * 1024, "peak_rss_gib": peak_kb / 2**20, "wall_seconds": wall,
            "images_per_second": len(paths) / wall, "command": "hyperland extract --model "
            f"{model} <{len(paths)} MTFL training images, every {step}th> --out feats.safetensors "
            f"--batch-size {batch} -q"}


def speed_in_child(name: str, args: argparse.Namespace, thp: bool) -> dict[str, object]:
    """Run :func:`speed` in a fresh process: PyTorch reads THP_MEM_ALLOC_ENABLE once, at its first big allocation."""
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1" if thp else "0", OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--repeats", str(args.repeats),
           "--threads", str(args.threads)]
    res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["thp_mem_alloc"] = thp
    return out


def load_faces(n: int) -> torch.Tensor:
    faces = sorted((MTFL / "AFLW").glob("*.jpg"))[:n]
    return torch.stack([load_image(p) for p in faces])  # decoded once: (B, 3, 150, 150) in [0, 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["random-r18", "random-r50"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared CPUs)")
    ap.add_argument("--rss-images", type=int, default=1000, help="images for (c); 0 skips it")
    ap.add_argument("--rss-only", action="store_true", help="only (c)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "extract.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(speed(args.child, load_faces(args.batch), args.repeats)))
        return 0

    result: dict[str, object] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__, "hyperland": hyperland.__version__, "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(), "batch": args.batch, "input_px": 96,
        "images": f"{args.batch} MTFL AFLW test faces, 150x150, decoded to tensors before timing",
        "repeats": args.repeats, "goals": {"a": 1.3, "b": 1.0, "c_peak_rss_gib": 2.0},
        "speed": [], "note": "shared 2-core machine: other engineers' processes ran during the measurement",
    }
    for name in [] if args.rss_only else args.models:
        for thp in (False, True):
            r = speed_in_child(name, args, thp)
            result["speed"].append(r)  # type: ignore[union-attr]
            s = r["seconds"]
            tag = f"{name} THP_MEM_ALLOC_ENABLE={int(thp)}"
            print(f"{tag}: backbone {s['backbone']:.3f}s  extract(default {r['default_grid']}) "
                  f"{s['extract_default']:.3f}s  → (a) {r['ratio_a_extract_default_vs_backbone']:.2f}x "
                  f"[no norm {r['ratio_a_no_norm']:.2f}x]")
            print(f"{tag}: naive 48x48 {s['naive_48']:.3f}s  extract 48x48 {s['extract_48']:.3f}s  → (b) "
                  f"{r['ratio_b_extract_48_vs_naive']:.2f}x [with L2 {r['ratio_b_l2']:.2f}x]  "
                  f"max |diff| {r['max_abs_diff_vs_naive_48']:.1e}", flush=True)
    if args.rss_images:
        c = rss(args.rss_images, args.models[0], args.batch, args.threads)
        result["rss"] = c
        print(f"(c) {c['images']} images → {c['output_bytes'] / 2**30:.2f} GiB file, peak RSS "
              f"{c['peak_rss_gib']:.2f} GiB, {c['images_per_second']:.1f} img/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
