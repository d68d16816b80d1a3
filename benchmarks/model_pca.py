"""Fit the default model's descriptor PCA and write the model directory that ships it.

What ``hyperland-train export`` does for a new run (:func:`hyperland.train.pca.training_pca`), for the shipped
``mtfl-dense-r18``: 128 components of its layer 1-4 hypercolumn, 96 random cells of each of 512 images drawn
(seed 0) from the 7,500 MTFL training face crops its run trained on (its recorded training config: MTFL
``training.txt`` without its last 2,000 lines and the last 500 held out; centroid crops at 136 px). No AFLW image
and no label is read. The backbone and the learned projection are copied unchanged (same fingerprint); only the
``hyperland_pca.*`` tensors and ``pca_layers`` are added; README.md is the generated card followed by
docs/mtfl-dense-r18-card.md.

    python benchmarks/model_pca.py [OUT_DIR]   # default: hyperland/assets/models/mtfl-dense-r18

then paste the printed sha256 into weights_manifest.json.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

import hyperland
from hyperland import HyperlandModel
from hyperland.integrity import sha256_file
from hyperland.train.config import TrainConfig
from hyperland.train.data import resolve_data
from hyperland.train.pca import training_pca

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))


def main() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "hyperland" / "assets" / "models" / "mtfl-dense-r18"
    model = hyperland.load("mtfl-dense-r18")
    # the model as trained (a PCA it ships already is fitted again, from the same images)
    model = HyperlandModel(replace(model.config, pca_layers=None), model.backbone, projection=model.projection)
    config = TrainConfig.from_dict({**model.config.provenance["train_config"], "data": str(MTFL)})
    items = resolve_data(config).train
    with_pca = training_pca(model, items, n_images=512, data="MTFL")
    with_pca.save_pretrained(out, dtype="float16",  # the card: generated, then the hand-written one
                             card_extra=(ROOT / "docs" / "mtfl-dense-r18-card.md").read_text(encoding="utf-8"))
    assert with_pca.fingerprint == model.fingerprint
    print(f"{out}: PCA keeps {with_pca.pca.explained:.3f} of the sampled variance; "  # type: ignore[union-attr]
          f"model.safetensors sha256 {sha256_file(out / 'model.safetensors')}")


if __name__ == "__main__":
    main()
