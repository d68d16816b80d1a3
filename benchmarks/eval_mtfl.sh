#!/usr/bin/env bash
# The MTFL few-shot tables for one model, each from ONE `hyperland eval` command, timed with /usr/bin/time -v
# (wall time, peak RSS) and serialised with the other heavy runs through /work/bench.lock when it exists.
#   benchmarks/eval_mtfl.sh [MODEL] [table|layers|all]
# Outputs: benchmarks/results/eval-mtfl-aflw-MODEL.{json,md,png,time.txt} (shots 1..all x 3 seeds) and
#          benchmarks/results/eval-mtfl-aflw-layers-MODEL.{json,md,png,time.txt} (per layer vs hypercolumn, 50 shots).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-random-r18}"
WHAT="${2:-all}"
ROOT="${HYPERLAND_MTFL:-../shared/data/mtfl}"
OUT=benchmarks/results
LOCK=(); [ -e /work/bench.lock ] && LOCK=(flock /work/bench.lock)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # 2 threads spin on the shared 2-core box
if [ "$WHAT" != layers ]; then
  "${LOCK[@]}" /usr/bin/time -v -o "$OUT/eval-mtfl-aflw-$MODEL.time.txt" \
    hyperland eval --model "$MODEL" --dataset mtfl --root "$ROOT" --protocol mtfl-aflw \
      --shots 1,5,10,20,50,100,all --seeds 3 --methods regressor,prototype --out "$OUT" --name "eval-mtfl-aflw-$MODEL"
fi
if [ "$WHAT" != table ]; then
  "${LOCK[@]}" /usr/bin/time -v -o "$OUT/eval-mtfl-aflw-layers-$MODEL.time.txt" \
    hyperland eval --model "$MODEL" --dataset mtfl --root "$ROOT" --protocol mtfl-aflw \
      --shots 50 --seeds 3 --methods regressor,prototype --layers-sweep "1;2;3;4;1,2,3,4" \
      --out "$OUT" --name "eval-mtfl-aflw-layers-$MODEL"
fi
