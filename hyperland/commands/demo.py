"""``hyperland demo``: fit a 5-landmark head on 20 bundled faces, predict 20 others, print the NME beside the
mean-shape NME and write an overlay PNG. Offline; about half a minute on two CPU cores.

The faces are the first 40 AFLW test crops of the MTFL release (150 x 150, tight framing for all of them),
with their labels in hyperland's keypoint CSV format: ``train.csv`` (20) and ``test.csv`` (20). They are package data
(``hyperland/assets/faces``), so the demo works from any install, editable or not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..assets import faces_dir
from ._args import (
    add_device_argument,
    add_head_arguments,
    add_model_argument,
    add_quiet_argument,
    head_options,
)


def run_demo(*, model: str, faces: Path, out: Path, options: dict[str, Any] | None = None,
             device: str | None = None) -> dict[str, Any]:
    """Fit a LandmarkHead(**options) (default: the library's default head, seed 0) on ``faces/train.csv``, score
    on ``faces/test.csv``; write ``out/demo_landmarks.png``."""
    import torch

    import hyperland
    from hyperland.data import landmark_names, load_samples, read_csv
    from hyperland.geometry import normalised_to_pixels, pixels_to_normalised
    from hyperland.heads import LandmarkHead
    from hyperland.heads.baselines import MeanShape
    from hyperland.metrics import nme
    from hyperland.viz import overlay_grid, save_png

    t0 = time.perf_counter()
    train = read_csv(faces / "train.csv")
    train_imgs, train_pts = load_samples(train)
    test_imgs, test_pts = load_samples(read_csv(faces / "test.csv"))
    m = hyperland.load(model, device=device)
    t1 = time.perf_counter()
    head = LandmarkHead(train_pts.shape[1], **{"random_state": 0, **(options or {})})
    head.fit(m, train_imgs, train_pts, landmark_names=landmark_names(train))  # as hyperland fit
    t2 = time.perf_counter()
    pred = head.predict(test_imgs)
    sizes = [(im.height, im.width) for im in train_imgs]
    test_sizes = [(im.height, im.width) for im in test_imgs]
    # the mean-shape baseline: the average training shape (network-input coordinates) in every test frame
    norm = pixels_to_normalised(m, torch.from_numpy(train_pts), sizes)
    baseline = normalised_to_pixels(m, MeanShape().fit(None, norm).predict(test_imgs), test_sizes).numpy()
    png = save_png(overlay_grid(test_imgs, pred, test_pts, cols=5), out / "demo_landmarks.png")
    return {
        "model": m.name, "method": head.method, "fingerprint": m.fingerprint, "n_train": len(train_imgs),
        "n_test": len(test_imgs),
        "nme": 100.0 * float(nme(pred, test_pts, eyes=(0, 1))),
        "mean_shape_nme": 100.0 * float(nme(baseline, test_pts, eyes=(0, 1))),
        "seconds": {"load": t1 - t0, "fit": t2 - t1, "total": time.perf_counter() - t0}, "png": str(png),
    }


def run(args: argparse.Namespace) -> int:
    from hyperland.errors import DatasetError

    faces = Path(args.faces)
    if not (faces / "train.csv").is_file():
        raise DatasetError(f"No faces at '{faces}' (train.csv missing). Pass --faces DIR with train.csv and test.csv "
                           "in hyperland's keypoint CSV format, or leave --faces out to use the bundled faces.")
    r = run_demo(model=args.model, faces=faces, out=Path(args.out), options=head_options(args), device=args.device)
    w = sys.stdout.write
    w(f"model            {r['model']} ({r['fingerprint']})\n")
    w(f"fit              {r['method']} head, {r['n_train']} faces, 5 landmarks, {r['seconds']['fit']:.1f} s\n")
    w(f"NME on {r['n_test']} faces  {r['nme']:.2f} %   (inter-ocular, lower is better)\n")
    w(f"mean-shape NME   {r['mean_shape_nme']:.2f} %   (average training shape, no image used)\n")
    if r["nme"] >= r["mean_shape_nme"]:
        w("note             the head does not beat the mean shape on these faces: this model's features do not\n"
          "                 locate these landmarks well; see docs/results.md in the hyperland repository)\n")
    w(f"overlay          {r['png']}  (dots: predictions, white rings: truth)\n")
    w(f"total            {r['seconds']['total']:.1f} s\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="fit a 5-landmark head on 20 bundled faces and score 20 others (offline)")
    add_model_argument(p)
    add_device_argument(p)
    add_quiet_argument(p)
    p.add_argument("--out", default="hyperland-demo", help="folder for demo_landmarks.png (default hyperland-demo)")
    p.add_argument("--faces", default=str(faces_dir()),
                   help="folder with train.csv / test.csv (default: the bundled faces)")
    add_head_arguments(p)
    p.set_defaults(func=run)
