"""``hyperland predict``: landmarks of images with a saved head, as JSON (default) or CSV on stdout or --out."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

from .._io import atomic_write_text, check_writable
from ._args import add_model_argument, add_quiet_argument, progress


def run(args: argparse.Namespace) -> int:
    import hyperland
    from hyperland.heads import LandmarkHead
    from hyperland.heads.io import recorded_model
    from hyperland.images import expand_paths

    images = expand_paths(args.images)  # files, folders and glob patterns, like every command
    if args.out:
        check_writable(args.out, flag="--out")
    model = hyperland.load(args.model or recorded_model(args.head) or hyperland.DEFAULT_MODEL)
    head = LandmarkHead.load(args.head, model=model, allow_backbone_mismatch=args.allow_backbone_mismatch)
    head.progress = progress(args)
    pred = head.predict(images)
    if args.format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        names = getattr(head, "landmark_names_", None)
        w.writerow(["image"] + ([f"{n}_{c}" for n in names for c in ("x", "y")] if names else
                                [f"{c}{i}" for i in range(pred.shape[1]) for c in ("x", "y")]))
        for path, p in zip(images, pred):
            w.writerow([str(path)] + [f"{v:.3f}" for v in p.reshape(-1)])
        text = buf.getvalue()
    else:
        text = json.dumps([{"image": str(path), "points": [[round(float(x), 3), round(float(y), 3)] for x, y in p]}
                           for path, p in zip(images, pred)], indent=1) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict landmarks with a saved head")
    p.add_argument("--head", required=True, help="folder written by `hyperland fit` / LandmarkHead.save")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    add_model_argument(p, from_head=True)
    add_quiet_argument(p)
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--out", default=None, help="write here instead of stdout")
    p.add_argument("--allow-backbone-mismatch", action="store_true")
    p.set_defaults(func=run)
