"""Startup cost of the ``hyperland`` command (issue 12, item 7). Writes benchmarks/results/startup.json.

Each case runs ``python -m hyperland.cli ARGS`` in a fresh process, 5 times (median wall time, max peak RSS).
``eager`` runs the same after ``import torch, sklearn, scipy`` — what every invocation paid when the CLI
imported the library before parsing its arguments — so the ratio is measured in one run. ``--tree DIR``
measures another checkout (e.g. the commit before the lazy imports) with the same interpreter.

    nice -n 19 flock "$BENCH_LOCK" python benchmarks/startup.py

(``BENCH_LOCK``: a lock file that every benchmark on the machine shares, so that none runs beside another.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CASES = (["--help"], ["--version"], ["models"], ["eval", "--help"])
CHILD = ("import resource, runpy, sys\n{pre}\nsys.argv = ['hyperland', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('hyperland.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('MAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")


def run(args: list[str], *, tree: Path, eager: bool) -> tuple[float, float]:
    code = CHILD.format(pre="import torch, sklearn, scipy" if eager else "")
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True,
                         cwd=tree)  # -c puts the working folder first on sys.path
    wall = time.perf_counter() - t0
    rss = int(res.stderr.strip().splitlines()[-1].split()[1]) / 1024
    return wall, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", default=str(REPO), help="the hyperland checkout to measure (default: this one)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "startup.json"))
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    rows = []
    for case in CASES:
        row: dict = {"command": "hyperland " + " ".join(case)}
        for label, eager in (("lazy", False), ("eager", True)):
            runs = [run(case, tree=tree, eager=eager) for _ in range(args.repeat)]
            row[f"{label}_s"] = round(statistics.median(w for w, _ in runs), 3)
            row[f"{label}_mb"] = round(max(r for _, r in runs))
        row["ratio"] = round(row["eager_s"] / row["lazy_s"], 1)
        rows.append(row)
        print(f"{row['command']:<24} {row['lazy_s']:.2f} s {row['lazy_mb']:>4} MB   with torch+sklearn+scipy first: "
              f"{row['eager_s']:.2f} s {row['eager_mb']:>4} MB   ({row['ratio']}x)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"benchmark": "hyperland CLI startup: median wall s, peak RSS MB",
                                          "tree": "this checkout" if tree == REPO else tree.name,
                                          "platform": platform.platform(), "python": sys.version.split()[0],
                                          "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
