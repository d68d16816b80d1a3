"""``hyperland predict``: landmarks of images with a saved head, as JSON (default) or CSV on stdout or --out.

Every landmark comes with its confidence (the head's probability at the returned point, in [0, 1]) where the
head's method has one (``ridge``, the default, and ``prototype``); the ``regressor`` head writes points only.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._io import atomic_write_text, check_writable
from ._args import add_device_argument, add_model_argument, add_quiet_argument, load_head

if TYPE_CHECKING:
    import numpy as np


def landmark_labels(names: Sequence[str] | None, k: int) -> list[str]:
    """Column stems: the head's landmark names, else ``0 .. K-1``."""
    return [str(n) for n in names] if names and len(names) == k else [str(i) for i in range(k)]


def render_csv(images: Sequence[str], pred: np.ndarray, conf: np.ndarray | None, labels: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ("x", "y") if conf is None else ("x", "y", "confidence")
    w.writerow(["image"] + [f"{n}_{c}" for n in labels for c in cols])
    for i, path in enumerate(images):
        row = [str(path)]
        for j in range(pred.shape[1]):
            row += [f"{pred[i, j, 0]:.4f}", f"{pred[i, j, 1]:.4f}"] + ([] if conf is None else [f"{conf[i, j]:.4f}"])
        w.writerow(row)
    return buf.getvalue()


def render_json(images: Sequence[str], pred: np.ndarray, conf: np.ndarray | None, labels: Sequence[str]) -> str:
    out = []
    for i, path in enumerate(images):
        item: dict = {"image": str(path), "landmarks": labels,
                      "points": [[round(float(x), 4), round(float(y), 4)] for x, y in pred[i]]}
        if conf is not None:
            item["confidence"] = [round(float(c), 4) for c in conf[i]]
        out.append(item)
    return json.dumps(out, indent=1) + "\n"


def run(args: argparse.Namespace) -> int:
    from hyperland.images import expand_paths

    images = expand_paths(args.images)  # files, folders and glob patterns, like every command
    if args.format == "dlc" and not args.out:
        from ..errors import InvalidOptionError

        raise InvalidOptionError("--format dlc writes a DeepLabCut CSV file: give --out, e.g. "
                                 "--out labeled-data/VIDEO/MachineLabels-iter0.csv.")
    if args.out:
        check_writable(args.out, flag="--out")
    head = load_head(args)
    conf: np.ndarray | None = None
    if head.method in ("ridge", "prototype"):
        pred, conf = head.predict(images, return_confidence=True)
    else:
        pred = head.predict(images)
    labels = landmark_labels(getattr(head, "landmark_names_", None), int(pred.shape[1]))
    if args.format == "dlc":  # DeepLabCut's machine-label layout: x, y, likelihood per part
        from hyperland.data import write_dlc_predictions

        write_dlc_predictions(args.out, images=images, points=pred, confidence=conf, landmarks=labels)
        return 0
    text = (render_csv if args.format == "csv" else render_json)(images, pred, conf, labels)
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict landmarks (and their confidence) with a saved head")
    p.add_argument("--head", required=True, help="folder written by `hyperland fit` / LandmarkHead.save, or "
                   "hf-hub:org/name[@revision] (LandmarkHead.push_to_hub)")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    add_model_argument(p, from_head=True)
    add_device_argument(p)
    add_quiet_argument(p)
    p.add_argument("--format", choices=("json", "csv", "dlc"), default="json",
                   help="json (default), csv, or dlc: DeepLabCut's CSV layout (x, y, likelihood per part; needs --out)")
    p.add_argument("--out", default=None, help="write here instead of stdout")
    p.add_argument("--allow-backbone-mismatch", action="store_true")
    p.set_defaults(func=run)
