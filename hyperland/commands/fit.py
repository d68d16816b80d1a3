"""``hyperland fit``: fit a LandmarkHead on a labelled list and save it.

LIST is an MTFL list file (``training.txt`` / ``testing.txt``; read with :func:`hyperland.data.read_mtfl`) or a
generic keypoint file (``.csv`` / ``.json``, :func:`hyperland.data.generic.read_keypoints`). Samples with a
crop ``box`` are cropped; ``--crop centroid`` derives a square crop from each training face's own labels
(the AFLW framing of the MTFL protocols; training data only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .._io import check_writable
from ..data import Sample
from ..errors import InvalidOptionError
from ._args import (
    add_device_argument,
    add_head_arguments,
    add_model_argument,
    add_quiet_argument,
    head_options,
)

MTFL_SPLITS = ("training", "testing")


def read_list(path: str | Path) -> list[Sample]:
    """Samples from an MTFL list (``training.txt`` / ``testing.txt``) or a generic .csv / .json keypoint file."""
    p = Path(path)
    if p.suffix.lower() == ".txt" and p.stem in MTFL_SPLITS:
        from ..data import read_mtfl

        return read_mtfl(p.parent, p.stem)  # type: ignore[arg-type]
    from ..data.generic import read_keypoints

    return read_keypoints(p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import hyperland
    from hyperland.data import centroid_box, landmark_names, load_samples
    from hyperland.heads import LandmarkHead

    if args.limit < 0:
        raise InvalidOptionError(f"--limit {args.limit}: expected 0 (all samples) or a positive number of samples.")
    options = head_options(args)  # checked before any data or model is read
    check_writable(args.out, flag="--out", folder=True)
    samples = read_list(args.train)
    if args.crop == "centroid":
        samples = [Sample(s.image, s.points, s.visible, s.meta, centroid_box(s.points)) for s in samples]
    if args.limit:
        samples = samples[:args.limit]
    model = hyperland.load(args.model, device=args.device)
    imgs, pts = load_samples(samples)  # as in Python: full-resolution images (cropped where a sample has a box)
    head = LandmarkHead(pts.shape[1], **options)
    t0 = time.perf_counter()
    names = landmark_names(samples)
    head.fit(model, imgs, pts, landmark_names=names)  # the names are saved in head.json
    seconds = time.perf_counter() - t0
    head.save(args.out)
    pred = head.predict(imgs)
    info = {"out": str(args.out), "model": model.name, "n_images": len(imgs), "landmarks": int(pts.shape[1]),
            "method": head.method, "framing": head.framing, "fit_seconds": round(seconds, 2),
            "train_error_px": round(float(np.nanmean(np.linalg.norm(pred - pts, axis=-1))), 3)}
    if names is not None and names[:2] == ["left_eye", "right_eye"]:  # faces: NME by the eye distance too
        info["train_nme"] = round(100.0 * float(hyperland.metrics.nme(pred, pts)), 3)
    sys.stdout.write(json.dumps(info) + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit a landmark head on labelled images and save it")
    add_model_argument(p)
    add_device_argument(p)
    p.add_argument("--train", required=True, help="MTFL training.txt/testing.txt or a generic .csv/.json keypoint file")
    p.add_argument("--out", required=True, help="output folder (head.json + head.safetensors)")
    p.add_argument("--crop", choices=("none", "centroid"), default="none",
                   help="centroid: square crop around each training face's own labels (training data only)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N samples")
    add_head_arguments(p)
    add_quiet_argument(p)
    p.set_defaults(func=run)
