"""The ``hyperland`` command. Each subcommand lives in ``hyperland/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.

Nothing heavy is imported before the arguments are parsed (``--help``, ``--version`` and ``models`` stay well
under a second): subcommands import torch and the rest of hyperland inside ``func``.

Every failure the user can fix is one line on stderr and exit status 2, with the library's Python keyword
arguments translated to the command's flags (``allow_backbone_mismatch=True`` → ``--allow-backbone-mismatch``).
Ctrl-C exits with 130 and SIGTERM (preemption) with 143, one line each, after the atomic writers have removed
their partial files.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import HyperlandError

COMMANDS = ("models", "extract", "fit", "predict", "export", "eval", "viz", "demo", "convert")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and the atomic writers clean up."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperland", description="Object landmarks from hypercolumn features.")
    parser.add_argument("--version", action="version", version=f"hyperland {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"hyperland.commands.{name}").register(sub)
    return parser


def _active(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)subparser that parsed ``args`` (``hyperland viz pca`` → the ``pca`` parser)."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) not in subs[0].choices:
            return parser
        parser = subs[0].choices[getattr(args, subs[0].dest)]


def cli_terms(message: str, parser: argparse.ArgumentParser) -> str:
    """Python keyword arguments of ``parser``'s options in ``message`` → the flags (``batch_size=0`` →
    ``--batch-size 0``, ``allow_backbone_mismatch=True`` → ``--allow-backbone-mismatch``)."""
    for action in parser._actions:
        flags = [s for s in action.option_strings if s.startswith("--")]
        if not flags:
            continue
        dest = re.escape(action.dest)
        if isinstance(action, argparse._StoreTrueAction):
            message = re.sub(rf"(?<![\w-]){dest}=True\b", flags[0], message)
        message = re.sub(rf"(?<![\w-]){dest}=", f"{flags[0]} ", message)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        return int(args.func(args) or 0)
    except HyperlandError as exc:
        sys.stderr.write(f"hyperland {args.command}: error: {cli_terms(str(exc), _active(parser, args))}\n")
        return 2
    except KeyboardInterrupt as exc:
        what, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted (Ctrl-C)", 130)
        sys.stderr.write(f"hyperland {args.command}: {what}; files being written were discarded, "
                         "earlier files are unchanged.\n")
        return code
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
