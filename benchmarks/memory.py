"""Peak memory of ``model.preprocess`` on very large photos (issue 12, item 2). Writes benchmarks/results/memory.json.

Each case runs in a fresh child process and reports its peak RSS (the process after imports and loading
random-r18, before any image, is the "base"):

* ``full decode``: what preprocess did before decoding to the network size — every file decoded to float at
  full resolution, the batch stacked, then resized (``torch.stack([load_image(p) ...])`` + ``preprocess.resize_crop``);
* ``bounded``: ``model.preprocess(paths)`` now — JPEG DCT draft + antialiased PIL resize to twice the model's
  resize on decode, so the batch is at most batch × (2·resize)² pixels whatever the photo size.

The photos are smooth synthetic gradients written to a temporary folder (nothing large is committed).
Run it alone on a shared machine (it needs about 8 GB free for the full-decode cases):

    nice -n 19 flock "$BENCH_LOCK" python benchmarks/memory.py

(``BENCH_LOCK``: a lock file that every benchmark on the machine shares, so that none runs beside another.)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = r"""
import resource, sys, json
import torch
import hyperland
from hyperland.images import load_image
from hyperland.preprocess import resize_crop
torch.set_num_threads(1)
model = hyperland.load("random-r18")
mode, paths = sys.argv[1], sys.argv[2:]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "full":
    out = resize_crop(torch.stack([load_image(p) for p in paths]), model.config, device=model.device)
else:
    out = model.preprocess(paths)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "shape": list(out.shape)}))
"""


def make_photo(path: Path, side: int) -> Path:
    from PIL import Image

    g = Image.linear_gradient("L")
    Image.merge("RGB", [g.resize((side, side)), g.rotate(90).resize((side, side)),
                        g.rotate(45).resize((side, side))]).save(path, quality=90)
    return path


def measure(mode: str, paths: list[Path]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, *map(str, paths)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(RESULTS / "memory.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hyperland-mem-") as tmp:
        p8 = make_photo(Path(tmp) / "8000.jpg", 8000)
        p12 = make_photo(Path(tmp) / "12000.jpg", 12000)
        png = make_photo(Path(tmp) / "6000.png", 6000)
        for label, paths in (("1 x 8000² JPEG", [p8]), ("4 x 8000² JPEG", [p8] * 4),
                             ("1 x 12000² JPEG", [p12]), ("1 x 6000² PNG", [png])):
            full, bounded = measure("full", paths), measure("bounded", paths)
            base = min(full["base_mb"], bounded["base_mb"])
            rows.append({"case": label, "base_mb": round(base), "full_decode_mb": round(full["peak_mb"]),
                         "bounded_mb": round(bounded["peak_mb"]),
                         "peak_ratio": round(full["peak_mb"] / bounded["peak_mb"], 2),
                         "growth_above_base_mb": {"full_decode": round(full["peak_mb"] - base),
                                                  "bounded": round(max(bounded["peak_mb"] - base, 0.0))}})
            print(f"{label:<16} base {rows[-1]['base_mb']:>4} MB   peak: full decode {rows[-1]['full_decode_mb']:>5} MB, "
                  f"bounded {rows[-1]['bounded_mb']:>4} MB   ({rows[-1]['peak_ratio']}x)",
                  flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"benchmark": "preprocess peak RSS (MB); base = after imports and model load",
                                          "platform": platform.platform(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
