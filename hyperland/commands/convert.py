"""``hyperland convert``: the authors' contrast-landmark .pth checkpoint → a hyperland model directory."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from ..config import WEIGHTS_NAME
    from ..convert import convert_checkpoint
    from ..integrity import sha256_file

    model = convert_checkpoint(args.checkpoint, arch=args.arch, out=args.out, name=args.name, resize=args.resize,
                               border=args.border, license=args.license)
    sha = sha256_file(f"{args.out}/{WEIGHTS_NAME}")
    dropped = ", ".join(model.config.provenance.get("dropped_keys", [])) or "none"
    sys.stdout.write(f"wrote {args.out} ({model.config.architecture}, dropped: {dropped})\n"
                     f"sha256 {WEIGHTS_NAME}: {sha}\n"
                     f"load it with hyperland.load({args.out!r})\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert an authors' contrast-landmark checkpoint to a model directory",
                       description="Read CKPT.pth safely (tensors + argparse.Namespace only), drop the 128-d fc "
                                   "projection, load the encoder strictly into a timm backbone and save a model "
                                   "directory that hyperland.load() reads.")
    p.add_argument("checkpoint", help="the .pth file (e.g. ckpt_epoch_800_resnet50_celeba.pth)")
    p.add_argument("--arch", required=True, help="timm architecture of the encoder, e.g. resnet50")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--name", default=None, help="model name in config.json (default: the --out folder name)")
    p.add_argument("--resize", type=int, default=136, help="preprocessing resize (default 136)")
    p.add_argument("--border", type=int, default=20, help="border crop after resize (default 20 → 96 px)")
    p.add_argument("--license", default="other", help="licence recorded in the model card (default: other)")
    p.set_defaults(func=run)
