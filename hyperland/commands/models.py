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
    width = max(len(n) for n in entries)
    for name, e in sorted(entries.items()):
        sys.stdout.write(f"{name:<{width}}  {e.status:<11}  {e.architecture:<9}  {e.data}\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models in weights_manifest.json")
    p.add_argument("--json", action="store_true", help="print {name: status} as JSON")
    p.set_defaults(func=run)
