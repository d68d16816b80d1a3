"""``hyperland predict``: landmarks of images, or of the frames of one video, with a saved head, as JSON or CSV
(the default follows the --out suffix: .csv writes CSV) on stdout or --out. One row (JSON item) per image, keyed
``image``, or per video frame, keyed ``frame, time_s`` (:mod:`._video`).

Every landmark comes with its confidence (the head's probability at the returned point, in [0, 1]) where the
head's method has one (``ridge``, the default, and ``prototype``); the ``regressor`` head writes points only.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_text, check_writable
from ._args import add_device_argument, add_model_argument, add_quiet_argument, landmark_labels, load_head
from ._video import add_video_arguments

if TYPE_CHECKING:
    import numpy as np


Keys = Sequence[str] | Sequence[Mapping[str, Any]]


def _keys(images: Keys) -> list[dict[str, Any]]:
    """The leading fields of each row: ``{"image": path}``, or the mapping given (``{"frame": 3, "time_s": 0.1}``)."""
    return [dict(k) if isinstance(k, Mapping) else {"image": str(k)} for k in images]


def render_csv(images: Keys, pred: np.ndarray, conf: np.ndarray | None, labels: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ("x", "y") if conf is None else ("x", "y", "confidence")
    keys = _keys(images)
    w.writerow([*keys[0]] + [f"{n}_{c}" for n in labels for c in cols])
    for i, key in enumerate(keys):
        row = [str(v) for v in key.values()]
        for j in range(pred.shape[1]):
            row += [f"{pred[i, j, 0]:.4f}", f"{pred[i, j, 1]:.4f}"] + ([] if conf is None else [f"{conf[i, j]:.4f}"])
        w.writerow(row)
    return buf.getvalue()


def render_json(images: Keys, pred: np.ndarray, conf: np.ndarray | None, labels: Sequence[str]) -> str:
    out = []
    for i, key in enumerate(_keys(images)):
        item: dict = {**key, "landmarks": labels,
                      "points": [[round(float(x), 4), round(float(y), 4)] for x, y in pred[i]]}
        if conf is not None:
            item["confidence"] = [round(float(c), 4) for c in conf[i]]
        out.append(item)
    return json.dumps(out, indent=1) + "\n"


def output_format(args: argparse.Namespace) -> str:
    """``--format``, else csv for an ``--out`` ending in .csv and json otherwise."""
    return args.format or ("csv" if str(args.out or "").lower().endswith(".csv") else "json")


def run(args: argparse.Namespace) -> int:
    from hyperland.images import expand_paths

    from ._video import run_video, wants_video

    if wants_video(args):  # one video file: one row per frame (commands/_video.py)
        if args.format == "dlc":
            from ..errors import InvalidOptionError

            raise InvalidOptionError("--format dlc writes labelled images, not a video's tracks: use --format csv "
                                     "(one row per frame: frame, time_s, NAME_x, NAME_y, NAME_confidence).")
        return run_video(args, render_csv if output_format(args) == "csv" else render_json)
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
    text = (render_csv if output_format(args) == "csv" else render_json)(images, pred, conf, labels)
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict landmarks (and their confidence) with a saved head")
    p.add_argument("--head", required=True, help="folder written by `hyperland fit` / LandmarkHead.save, or "
                   "hf-hub:org/name[@revision] (LandmarkHead.push_to_hub)")
    p.add_argument("images", nargs="+", help="image files, folders of images, or one video file")
    add_model_argument(p, from_head=True)
    add_device_argument(p)
    add_quiet_argument(p)
    p.add_argument("--format", choices=("json", "csv", "dlc"), default=None,
                   help="output format (default: csv for an --out ending in .csv, else json); dlc: DeepLabCut's "
                   "CSV layout (x, y, likelihood per part; needs --out; images only)")
    p.add_argument("--out", default=None, help="write here instead of stdout")
    p.add_argument("--allow-backbone-mismatch", action="store_true")
    add_video_arguments(p)
    p.set_defaults(func=run)
