"""``hyperland models``: the names in weights_manifest.json with status and description."""

from __future__ import annotations

import argparse
import json
import sys

from ..manifest import load_manifest


def run(args: argparse.Namespace) -> int:
    entries = load_manifest()
    if args.json:
        sys.stdout.write(json.dumps({n: e.status for n, e in sorted(entries.items())}, indent=2) + "\n")
        return 0
    from .._defaults import DEFAULT_MODEL

    width = max(len(n) for n in entries) + 2
    for name, e in sorted(entries.items()):
        label = f"{name} *" if name == DEFAULT_MODEL else name
        sys.stdout.write(f"{label:<{width}}  {e.status:<11}  {e.architecture:<9}  {e.data}\n")
    sys.stdout.write("* the default of hyperland.load() and the CLI (embedded in the package: no download)\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models in weights_manifest.json")
    p.add_argument("--json", action="store_true", help="print {name: status} as JSON")
    p.set_defaults(func=run)
