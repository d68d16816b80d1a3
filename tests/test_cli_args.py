"""Arguments every subcommand shares: one --model default (item 1 of issue 12), one -q/--quiet flag, and a
parser that is built without importing torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hyperland import DEFAULT_MODEL, load
from hyperland.cli import build_parser

MODEL_COMMANDS = [["fit", "--train", "t.csv", "--out", "o"], ["extract", "x.jpg", "--out", "o"], ["eval"],
                  ["demo"], ["viz", "pca", "x.jpg", "--out", "o"]]
HEAD_COMMANDS = [["predict", "--head", "h", "x.jpg"], ["viz", "landmarks", "x.jpg", "--head", "h", "--out", "o"]]


def _subparser(parser: argparse.ArgumentParser, names: list[str]) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("argv", MODEL_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_model_default_is_the_embedded_model(argv):
    args = build_parser().parse_args(argv)
    assert args.model == DEFAULT_MODEL == "mtfl-r18"
    assert load.__defaults__[0] == DEFAULT_MODEL  # hyperland.load() with no name: the same default
    names = [a for a in argv[:2] if not a.startswith("-") and "." not in a]
    help_text = _subparser(build_parser(), names).format_help()
    assert f"default {DEFAULT_MODEL}" in " ".join(help_text.split())


@pytest.mark.parametrize("argv", HEAD_COMMANDS, ids=lambda a: a[0])
def test_head_commands_default_to_the_heads_model(argv):
    args = build_parser().parse_args(argv)
    assert args.model is None and args.quiet is False
    help_text = " ".join(_subparser(build_parser(), argv[:2] if argv[0] == "viz" else argv[:1]).format_help().split())
    assert f"else {DEFAULT_MODEL}" in help_text


@pytest.mark.parametrize("argv", MODEL_COMMANDS + HEAD_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_heavy_command_has_quiet(argv):
    assert build_parser().parse_args(argv).quiet is False
    assert build_parser().parse_args([*argv, "-q"]).quiet is True
