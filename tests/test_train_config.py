"""TrainConfig, shipped recipes and the CLI flags derived from the dataclass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperland.errors import CheckpointError, TrainConfigError
from hyperland.train.cli import build_parser
from hyperland.train.config import TrainConfig, list_recipes, load_recipe
from hyperland.train.trainer import resume_config


def test_recipes_shipped_with_paper_values() -> None:
    assert list_recipes() == ["celeba-r18", "celeba-r50", "inat-aves-r50", "mtfl-r18", "mtfl-r18-dense", "mtfl-r50"]
    c = load_recipe("celeba-r50")
    assert (c.recipe, c.architecture, c.epochs, c.batch_size, c.lr, c.schedule) == \
        ("celeba-r50", "resnet50", 800, 256, 0.03, "cosine")
    assert (c.sgd_momentum, c.weight_decay, c.resize, c.border, c.input_size) == (0.9, 1e-4, 136, 20, 96)
    assert (c.queue_size, c.key_momentum, c.temperature, c.crop_scale, c.color_jitter) == \
        (4096, 0.999, 0.07, (0.2, 1.0), 0.4)
    assert load_recipe("celeba-r18").architecture == "resnet18"
    assert c.data_crop == "celeba" and not c.zero_init_last  # the paper's aligned-face box, ordinary init
    aves = load_recipe("inat-aves-r50")
    assert (aves.resize, aves.border, aves.input_size) == (96, 0, 96)
    for name in ("mtfl-r18", "mtfl-r50"):
        m = load_recipe(name)
        assert m.data_format == "mtfl" and m.val_count is None and m.queue_size == 0  # auto: <= 10% of the data
    d = load_recipe("mtfl-r18-dense")
    assert (d.moco_weight, d.dense_weight, d.dense_layers, d.dense_dim, d.optimizer, d.data_crop) == \
        (0.0, 1.0, (1, 2, 3), 64, "adamw", "centroid")


def test_json_round_trip_and_lists_become_tuples(tmp_path: Path) -> None:
    c = load_recipe("mtfl-r18").override(batch_size=64, crop_scale=[0.3, 0.9])
    assert c.crop_scale == (0.3, 0.9)
    p = tmp_path / "c.json"
    p.write_text(c.to_json())
    assert TrainConfig.from_file(p) == c
    assert json.loads(p.read_text())["batch_size"] == 64


@pytest.mark.parametrize("changes, word", [
    ({"batch_size": 0}, "batch_size=0"), ({"border": 66}, "leave fewer than 8"),
    ({"crop_scale": (0.5, 0.2)}, "crop_scale"), ({"schedule": "step"}, "schedule='step'"),
    ({"jpeg_quality": (0, 90)}, "jpeg_quality"),
])
def test_invalid_values_name_the_field(changes: dict, word: str) -> None:
    with pytest.raises(TrainConfigError, match=word.replace("(", r"\(")):
        TrainConfig().override(**changes)


def test_unknown_fields_and_recipes() -> None:
    with pytest.raises(TrainConfigError, match="unknown fields \\['lr_max'\\]"):
        TrainConfig.from_dict({"lr_max": 1})
    with pytest.raises(TrainConfigError, match="Unknown recipe 'celeba-r34'.*celeba-r50"):
        load_recipe("celeba-r34")


def test_cli_flags_are_the_dataclass_fields() -> None:
    args = build_parser().parse_args(["--recipe", "mtfl-r18", "--batch-size", "64", "--crop-scale", "0.3", "1",
                                      "--no-channels-last", "--max-steps", "5", "--out", "x"])
    assert (args.recipe, args.batch_size, args.crop_scale, args.channels_last, args.max_steps) == \
        ("mtfl-r18", 64, [0.3, 1.0], False, 5)
    assert args.lr is None  # not given: the recipe's value stays


def test_resume_config_allows_runtime_changes_only(tmp_path: Path) -> None:
    saved = load_recipe("mtfl-r18").override(data="/data/mtfl")
    (tmp_path / "config.json").write_text(saved.to_json())
    assert resume_config(tmp_path, None, num_workers=1).num_workers == 1
    assert resume_config(tmp_path, saved.override(data="/elsewhere")).recipe == "mtfl-r18"
    with pytest.raises(CheckpointError, match="architecture: run has 'resnet18', asked 'resnet50'"):
        resume_config(tmp_path, load_recipe("mtfl-r50").override(data="/data/mtfl"))
    with pytest.raises(CheckpointError, match="not a run directory"):
        resume_config(tmp_path / "nothing")
