#!/usr/bin/env bash
# Unsupervised adaptation row of docs/results.md: continue mtfl-dense-r18 with the dense objective on the
# UNLABELLED images of the aflw labelled pool (the first 1,000 lines of testing.txt; never a test image) for
# STEPS steps, then the default head on aflw (shots 20, 50, all; one seed).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-100}"
ROOT="${HYPERLAND_MTFL:-../shared/data/mtfl}"
mkdir -p runs
ABS_ROOT="$(cd "$ROOT" && pwd)"  # a list file's relative paths are read relative to the list itself
head -1000 "$ROOT/testing.txt" | awk '{print $1}' | tr '\\' '/' | sed "s|^|$ABS_ROOT/|" > runs/aflw-pool-images.txt
name="adapt-aflw-pool-$STEPS"
if [ ! -f "runs/$name/last.pt" ]; then
  hyperland-train --recipe mtfl-r18-dense --init mtfl-dense-r18 --data runs/aflw-pool-images.txt --data-format list \
    --data-crop none --val-count 0 --lr 0.0002 --warmup-epochs 0 --max-steps "$STEPS" --out "runs/$name"
fi
hyperland-train export "runs/$name" --out "runs/models/$name" --allow-unfinished
hyperland eval --model "runs/models/$name" --dataset mtfl --root "$ROOT" --protocol aflw --shots 20,50,all --seeds 1 \
  --methods ridge --no-baselines --out results/ablation --name "$name"
