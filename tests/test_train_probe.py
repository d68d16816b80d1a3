"""The periodic landmark probe: prototype head on MTFL validation faces vs the mean-shape baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from train_utils import image_list, tiny_config

from hyperland.data import load_samples
from hyperland.metrics import nme
from hyperland.train.data import resolve_data
from hyperland.train.probe import run_probe
from hyperland.train.trainer import Trainer, backbone_config


def test_probe_logs_head_and_mean_shape_nme(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(mtfl_root, data_format="mtfl", val_count=12)
    t = Trainer(cfg, tmp_path / "run")
    assert len(t.split.train) == 10000 - 2000 - 12  # lfwnet test and validation held out, never AFLW
    assert all("AFLW" not in str(i.path) for i in t.split.train + t.split.val)
    t._probe()
    rec = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["probe"]
    assert (rec["n_fit"], rec["n_test"]) == (6, 6) and np.isfinite(rec["nme"])
    fit = load_samples(t.split.val_samples[:6], size=40)[1]
    test = load_samples(t.split.val_samples[6:], size=40)[1]
    baseline = 100 * nme(np.broadcast_to(fit.mean(axis=0), test.shape), test)
    assert abs(rec["mean_shape_nme"] - baseline) < 1e-6


def test_probe_needs_labelled_validation(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(image_list(mtfl_root, tmp_path, 16), val_count=4)
    split = resolve_data(cfg)
    assert len(split.val) == 4 and split.val_samples == []
    assert run_probe(Trainer(cfg, tmp_path / "run").model.encoder_q.backbone, split, backbone_config(cfg)) is None
