"""What the trainer really sees: a grid of training views → docs/results/training-views.png.

Each row: the worker's uint8 crop (resize 136), then the two augmented views the network gets (96 px) for the
recipe (default mtfl-r18-dense). Four cells of view A are circled in colour; the same colours in view B mark the
cells the dense objective pairs with them (from the returned source coordinates), so a wrong crop (black
borders) or a wrong correspondence shows at a glance. Rows 3-8 are net_7876 faces (400 px originals), the ones
the old draft-decode crop bug blackened.

    python benchmarks/training_views.py [--recipe mtfl-r18-dense] [--data ../shared/data/mtfl] [--out PNG]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from hyperland.train.config import load_recipe
from hyperland.train.data import resolve_data
from hyperland.train.dense import correspondences
from hyperland.train.views import TwoViewDataset, ViewAugment

ROOT = Path(__file__).resolve().parents[1]
ROWS = (0, 10, 3500, 4000, 5000, 6000, 7000, 7400)
CELLS = ((30, (255, 0, 0)), (200, (0, 255, 0)), (300, (0, 0, 255)), (420, (255, 255, 0)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="mtfl-r18-dense")
    ap.add_argument("--data", default=os.environ.get("HYPERLAND_MTFL", str(ROOT.parent / "shared" / "data" / "mtfl")))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "training-views.png"))
    args = ap.parse_args()
    cfg = load_recipe(args.recipe).override(data=args.data)
    ds = TwoViewDataset.from_config(resolve_data(cfg).train, cfg)
    batch = torch.stack([ds[i][0] for i in ROWS])
    aug, g, grid = ViewAugment(cfg), torch.Generator().manual_seed(0), 24
    q, sq = aug(batch[:, 0], generator=g, grid=grid)
    k, sk = aug(batch[:, 1], generator=g, grid=grid)
    idx, ok = correspondences(sq, sk)
    mean, std = torch.tensor(cfg.mean).view(3, 1, 1), torch.tensor(cfg.std).view(3, 1, 1)
    size, step = cfg.input_size, cfg.input_size // grid

    def image(x: torch.Tensor) -> Image.Image:
        return Image.fromarray(((x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8))

    sheet = Image.new("RGB", (3 * (size + 4), len(ROWS) * (size + 4)))
    for r in range(len(ROWS)):
        a, b = image(q[r]), image(k[r])
        da, db = ImageDraw.Draw(a), ImageDraw.Draw(b)
        for cell, colour in CELLS:
            y, x = divmod(cell, grid)
            da.ellipse([x * step, y * step, x * step + step, y * step + step], outline=colour)
            if ok[r, cell]:
                y2, x2 = divmod(int(idx[r, cell]), grid)
                db.ellipse([x2 * step, y2 * step, x2 * step + step, y2 * step + step], outline=colour)
        base = Image.fromarray(batch[r, 0].permute(1, 2, 0).numpy()).resize((size, size))
        for col, im in enumerate((base, a, b)):
            sheet.paste(im, (col * (size + 4), r * (size + 4)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}; cells with a partner: {float(ok.float().mean()):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
