"""What a framed head really sees on openfield → docs/results/openfield-views.png.

Row 1: the coarse head's input for 8 labelled frames (the whole frame at ``frame_size`` px, no border crop) with
the labels and the object centre it learns (white). Row 2: the fine head's training crops around the labelled
landmarks (``frame_margin`` × the median object length, at the model's input size, turned to the labelled shapes'
common orientation), the labels moved into them, exactly as :func:`hyperland.heads.framing.fine_crops` makes
them. A wrong crop (mouse cut off, points off the parts, a mouse not turned) shows at a glance.

    python benchmarks/openfield_views.py [--out docs/results/openfield-views.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import hyperland
from hyperland.data import read_keypoints
from hyperland.heads import LandmarkHead
from hyperland.heads import framing as fr
from hyperland.viz import grid, overlay_grid, save_png

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dlc-openfield" / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv"
FRAMES = (0, 10, 20, 30, 40, 50, 60, 70)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "openfield-views.png"))
    args = ap.parse_args()
    samples = read_keypoints(DATA)
    paths = [str(samples[i].image) for i in FRAMES]
    pts = np.stack([samples[i].points for i in FRAMES])
    head, model = LandmarkHead(4, framing="object"), hyperland.load()  # the defaults a user gets
    size = fr.crop_size(head, model)
    frames = fr.load_frames(paths)
    centre, _ = fr.centre_extent(pts)
    scale = head.frame_size / np.array([[f.shape[-1], f.shape[-2]] for f in frames], np.float32)
    coarse = [torch.nn.functional.interpolate(f[None], size=(head.frame_size, head.frame_size), mode="bilinear",
                                              antialias=True)[0] for f in frames]  # as frame_model resizes
    coarse_pts = (np.concatenate([pts, centre[:, None]], 1) + 0.5) * scale[:, None] - 0.5
    crops, crop_pts, _, _ = fr.fine_crops(frames, pts, margin=head.frame_margin, extent=fr.median_extent(pts),
                                          size=size, align=head.frame_align)
    rows = [overlay_grid(coarse, coarse_pts, cols=len(FRAMES), side=150),
            overlay_grid(crops, crop_pts, cols=len(FRAMES), side=150)]
    print(save_png(grid(rows, cols=1), args.out))


if __name__ == "__main__":
    main()
