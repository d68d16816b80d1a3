"""Training throughput of the full MoCo step (device-side augmentation + query/key encoders + SGD) on this machine.

    flock "$BENCH_LOCK" python benchmarks/train.py [--arch resnet18 --batch 64 --steps 8]

Writes benchmarks/results/train.json: images/s of the whole step (data wait + augmentation + model) and the
share of step time spent in each part, measured in one run on real MTFL faces (training.txt only).
On a CUDA machine pass --device cuda (bf16, channels_last) to measure the GPU goal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", REPO.parent / "shared" / "data" / "mtfl"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=8, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from hyperland.data import read_mtfl
    from hyperland.train.config import load_recipe
    from hyperland.train.trainer import Trainer

    n_images = args.batch * (args.steps + args.warmup)
    faces = read_mtfl(MTFL, "training")[:n_images]
    with tempfile.TemporaryDirectory() as tmp:
        lst = Path(tmp) / "faces.txt"
        lst.write_text("\n".join(str(s.image) for s in faces) + "\n")
        cfg = load_recipe("celeba-r18").override(
            recipe="bench", architecture=args.arch, data=str(lst), data_format="list", batch_size=args.batch,
            epochs=1, num_workers=args.workers, device=args.device, compile=args.compile, progress=False,
            log_every=1, checkpoint_every=0)  # log_every=1: every step synchronised and timed on CUDA too
        t = Trainer(cfg, Path(tmp) / "run")
        stamps: list[float] = []
        snap: dict[str, float] = {}

        def on_step(state, loss):
            if state.step == args.warmup:
                snap.update(t.timings)
            stamps.append(time.perf_counter())

        t_start = time.perf_counter()
        t.fit(on_step=on_step)
        timed = {k: t.timings[k] - snap.get(k, 0.0) for k in t.timings}
    wall = stamps[-1] - stamps[args.warmup - 1] if args.warmup else stamps[-1] - t_start
    step_time = sum(timed.values())
    result = {
        "what": "full MoCo step (data wait + device augmentation of 2 views + query/key encoders + SGD)",
        "architecture": args.arch, "input_px": cfg.input_size, "resize": cfg.resize, "batch": args.batch,
        "queue": cfg.queue_size, "shuffle_groups": cfg.shuffle_groups, "device": str(t.device),
        "precision": "bf16" if t.amp else "fp32", "channels_last": cfg.channels_last, "compile": args.compile,
        "torch_threads": args.threads, "loader_workers": args.workers, "timed_steps": args.steps,
        "images_per_s": args.steps * args.batch / wall,
        "step_ms": 1000 * wall / args.steps,
        "share": {k: v / step_time for k, v in timed.items()},
        "augmentation_share": timed["aug"] / step_time,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "note": "measured on a shared CPU while other engineers worked; no GPU was available for this issue",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
