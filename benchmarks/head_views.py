"""What the default head's fit really sees: its warped copies of labelled faces → docs/results/head-views.png.

Each row: one ``aflw`` pool face as the head reads it (136 px), then the ``n_augment`` warped copies a fit adds
(the default ``LandmarkHead``'s ``tps``, ``rotation``, ``scale`` and ``translate``, drawn as
``hyperland.heads.warped`` draws them), with the labelled points moved by the same warp (red: eyes, green: nose,
blue: mouth). Shifted faces, edge-filled borders and points that leave the face show at a glance.

    python benchmarks/head_views.py [--faces 4] [--out docs/results/head-views.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from hyperland.data import load_samples
from hyperland.data.mtfl import mtfl_protocol
from hyperland.heads import LandmarkHead
from hyperland.heads.warped import WarpCache
from hyperland.images import load_image

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
COLOURS = [(255, 0, 0), (255, 0, 0), (0, 200, 0), (0, 90, 255), (0, 90, 255)]


def tile(x: torch.Tensor, pts: np.ndarray) -> Image.Image:
    im = Image.fromarray((x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for (px, py), c in zip(pts, COLOURS):
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], outline=c, width=2)
    return im


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "head-views.png"))
    args = ap.parse_args()
    pool, _ = mtfl_protocol(MTFL, "aflw")
    imgs, pts = load_samples(pool[: args.faces], size=136)
    p = LandmarkHead().get_params()
    rows = []
    for img, pt in zip(imgs, pts):
        x = load_image(img)
        seen: list[torch.Tensor] = []

        def keep(ims: list[torch.Tensor], seen: list[torch.Tensor] = seen) -> torch.Tensor:  # the encoder, replaced
            seen.extend(ims)  # keep the warped images
            return torch.zeros(len(ims))

        # the cache's own warps (the copies a fit with random_state=0 makes of this face)
        _, wp = WarpCache().warped([x], pt[None], encode=keep, encoding=("views",), n=p["n_augment"], tps=p["tps"],
                                   rotation=p["rotation"], scale=p["scale"], translate=p["translate"], seed=0)
        rows.append([tile(x, pt)] + [tile(w, q) for w, q in zip(seen, wp)])
    s = 136
    grid = Image.new("RGB", (s * len(rows[0]), s * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid.paste(im, (c * s, r * s))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
