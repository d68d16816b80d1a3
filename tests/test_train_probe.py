"""The periodic probe: landmark NMEs (default head, ridge probe, mean shape) and held-out view retrieval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from train_utils import image_list, tiny_config

from hyperland.data import load_samples
from hyperland.metrics import nme
from hyperland.train.data import resolve_data
from hyperland.train.probe import Probe, run_probe, snapshot_model
from hyperland.train.retrieval import HeldOutViews
from hyperland.train.trainer import Trainer, backbone_config

NO_AUGMENT = {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "color_jitter": 0.0, "pca_lighting": 0.0, "jpeg_p": 0.0}


def test_probe_logs_landmarks_retrieval_and_dense_matching(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(mtfl_root, data_format="mtfl", val_count=12, dense_weight=1.0)
    t = Trainer(cfg, tmp_path / "run")
    assert len(t.split.train) == 10000 - 2000 - 12  # lfwnet test and validation held out, never AFLW
    assert all("AFLW" not in str(i.path) for i in t.split.train + t.split.val)
    t._probe()
    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    rec = line["probe"]
    assert (line["step"], line["epoch"]) == (0, 0)
    assert (rec["n_fit"], rec["n_test"], rec["retrieval_n"]) == (6, 6, 12)
    for key in ("head_nme", "ridge_probe_nme", "mean_shape_nme"):
        assert 0 < rec[key] < 200, (key, rec[key])
    assert 0 <= rec["retrieval_top1"] <= 1 and 0 <= rec["dense_match"] <= 1
    assert rec["retrieval_top1"] * 24 == round(rec["retrieval_top1"] * 24)  # hits out of 12 + 12 queries
    fit = load_samples(t.split.val_samples[:6], size=40)[1]
    test = load_samples(t.split.val_samples[6:], size=40)[1]
    baseline = 100 * nme(np.broadcast_to(fit.mean(axis=0), test.shape), test)
    assert abs(rec["mean_shape_nme"] - baseline) < 1e-4  # eval's mean shape: averaged in float32 network-input coords
    assert t.model.encoder_q.backbone.training  # the probe left train mode as it found it


def test_probe_model_is_the_exported_model(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(mtfl_root, data_format="mtfl", val_count=8, dense_weight=1.0)
    t = Trainer(cfg, tmp_path / "run")
    model = snapshot_model(t.model, backbone_config(cfg), dense_layers=cfg.dense_layers)
    assert model.config.projection_layers == (1, 2, 3) and model.projection is not None
    assert torch.equal(model.projection.weight, t.model.dense.proj.weight.detach())
    for k, v in t.model.encoder_q.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v)


def test_identical_views_are_retrieved_and_matched_exactly(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(image_list(mtfl_root, tmp_path, 24), val_count=10, dense_weight=1.0, **NO_AUGMENT)
    t = Trainer(cfg, tmp_path / "run")
    views = HeldOutViews.build(t.split.val, cfg, grid=t.dense_grid)
    assert torch.equal(views.view_a, views.view_b) and torch.equal(views.src_a, views.src_b)
    assert views.score(t.model) == {"retrieval_top1": 1.0, "retrieval_n": 10, "dense_match": 1.0}
    order = torch.roll(torch.arange(10), 1)  # every B view now belongs to another image: nothing is found
    shuffled = HeldOutViews(views.view_a, views.view_b[order])
    assert shuffled.score(t.model)["retrieval_top1"] == 0.0


def test_held_out_views_are_fixed_for_the_run(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(image_list(mtfl_root, tmp_path, 24), val_count=6)
    split = resolve_data(cfg)
    one, two = HeldOutViews.build(split.val, cfg), HeldOutViews.build(split.val, cfg)
    assert torch.equal(one.view_a, two.view_a) and torch.equal(one.view_b, two.view_b)
    assert not torch.equal(one.view_a, one.view_b)  # two different augmentations of each image
    assert one.src_a is None and one.view_a.shape == (6, 3, 32, 32)
    other = HeldOutViews.build(split.val, cfg.override(seed=1))
    assert not torch.equal(one.view_a, other.view_a)


def test_probe_without_labels_reports_retrieval_only(mtfl_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(image_list(mtfl_root, tmp_path, 16), val_count=4)
    split = resolve_data(cfg)
    assert len(split.val) == 4 and split.val_samples == []
    t = Trainer(cfg, tmp_path / "run")
    rec = Probe(cfg, split, backbone_config(cfg))(t.model)
    assert rec is not None and set(rec) == {"retrieval_top1", "retrieval_n", "retrieval_seconds"}
    model = snapshot_model(t.model, backbone_config(cfg))
    assert run_probe(model, split.val_samples) is None
    assert Probe(cfg.override(val_count=0), resolve_data(cfg.override(val_count=0)), backbone_config(cfg))(t.model) is None
