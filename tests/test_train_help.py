"""``hyperland-train --help`` documents every TrainConfig field and shows a recipe's values (issue 12, item 8)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from hyperland.train.cli import build_parser, main, peek_recipe
from hyperland.train.config import TrainConfig, load_recipe
from hyperland.train.field_help import field_help


def test_every_field_is_documented():
    docs = field_help()
    assert set(docs) == {f.name for f in fields(TrainConfig)}
    assert [k for k, v in docs.items() if len(v) < 8] == []
    assert docs["queue_size"].startswith("MoCo negatives; 0 = auto")  # from the field's comment in config.py


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_shows_the_recipes_values(capsys):
    recipe = load_recipe("mtfl-r18")
    text = _help(["--recipe", "mtfl-r18"], capsys)
    assert f"(recipe mtfl-r18: {recipe.val_count!r}; default 0)" in text
    assert f"recipe mtfl-r18: {recipe.epochs!r}; default 800" in text and "override recipe mtfl-r18" in text
    plain = _help([], capsys)
    assert "recipe mtfl-r18:" not in plain and "--epochs INT passes over the training images (default 800)" in plain
    assert "(default None, may change on --resume)" in plain  # --data: a runtime field


def test_peek_recipe():
    assert peek_recipe(["--out", "r", "--recipe", "celeba-r18", "--lr", "1"]) == "celeba-r18"
    assert peek_recipe(["--out", "r"]) is None
    assert build_parser("no-such-recipe").format_help()  # an unknown recipe: plain help, the run reports it
