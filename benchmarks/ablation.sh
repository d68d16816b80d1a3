#!/usr/bin/env bash
# MoCo-only vs MoCo+dense vs dense-only at an equal, short budget: the mtfl-r18-dense recipe, STEPS optimiser
# steps of 32 views each, then the default head on the aflw protocol (shots 20, 50, all; one seed).
# Usage: STEPS=150 bash benchmarks/ablation.sh   (runs/ and results/ are ignored folders; ~45 min on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-150}"
DATA="${DATA:-../shared/data/mtfl}"
for variant in "moco 1 0" "moco+dense 1 1" "dense 0 1"; do
  set -- $variant
  name="ablation-$1-$STEPS"
  if [ ! -f "runs/$name/last.pt" ]; then
    hyperland-train --recipe mtfl-r18-dense --data "$DATA" --moco-weight "$2" --dense-weight "$3" \
      --shuffle-groups 4 --max-steps "$STEPS" --out "runs/$name"
  fi
  hyperland-train export "runs/$name" --out "runs/models/$name" --allow-unfinished
  hyperland eval --model "runs/models/$name" --dataset mtfl --root "$DATA" --protocol aflw --shots 20,50,all \
    --seeds 1 --methods ridge --no-baselines --out results/ablation --name "$name"
done
