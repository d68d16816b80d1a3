"""Arguments that several subcommands share, defined once (no torch import: ``--help`` stays fast)."""

from __future__ import annotations

import argparse

from .._defaults import DEFAULT_MODEL


def add_model_argument(p: argparse.ArgumentParser, *, from_head: bool = False) -> None:
    """``--model``; default the embedded DEFAULT_MODEL, or (``from_head``) the model named in the head's head.json."""
    if from_head:
        p.add_argument("--model", default=None, help="model name, hf-hub:org/repo, timm:ARCH or directory (default: "
                       f"the one named in the head's head.json, else {DEFAULT_MODEL})")
    else:
        p.add_argument("--model", default=DEFAULT_MODEL, help="model name, hf-hub:org/repo, timm:ARCH or directory "
                       f"(default {DEFAULT_MODEL}, embedded in the package)")


def add_quiet_argument(p: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: progress bars are shown on a terminal unless this is given (never when not a TTY)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")


def progress(args: argparse.Namespace) -> bool | None:
    """The ``progress=`` value for the library: False with --quiet, else None (tqdm's automatic TTY check)."""
    return False if getattr(args, "quiet", False) else None


__all__ = ["add_model_argument", "add_quiet_argument", "progress"]
