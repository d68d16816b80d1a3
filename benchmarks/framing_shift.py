"""More labels must never hurt (issue 17, item 2): the default head fitted on the aflw pool as labelled, tested on
the aflw test faces framed as labelled and framed differently, at 10 / 50 / 200 / all (1,000) shots.

Test framings (the same for every row; points move with the pixels):

* ``as labelled``: the test faces as the protocol loads them (136 x 136 crops);
* ``zoomed out``: each face shrunk to ``ZOOM_OUT`` of the side and placed at a random offset (up to ``SHIFT`` of the
  side) in a 136 x 136 frame filled with the edge pixels of the face (numpy ``edge`` padding);
* ``zoomed in``: the central ``ZOOM_IN`` of the side, resized back to 136 x 136.

Rows: the mean shape (of the labelled subset, in pixels), HOG -> ridge and the default head (learned descriptors of
the default model), same subsets and seeds. NME % (inter-ocular). Writes benchmarks/results/framing_shift.json.

    flock ../bench.lock python benchmarks/framing_shift.py [--shots 10,50,200,all] [--seeds 2] [--options JSON]
        [--val] [--tag=-NAME]

``--val`` is the validation form, for choosing settings without reading the test faces: the heads are fitted on
the aflw pool's first 500 faces and scored on its other 500, re-framed the same way (as ``aflw-val``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

import hyperland
from hyperland.data import landmark_names, load_samples
from hyperland.data.mtfl import mtfl_protocol
from hyperland.features import encode
from hyperland.heads import LandmarkHead
from hyperland.metrics import nme

ROOT = Path(__file__).resolve().parents[1]
MTFL = Path(os.environ.get("HYPERLAND_MTFL", ROOT.parent / "shared" / "data" / "mtfl"))
OUT = ROOT / "benchmarks" / "results" / "framing_shift.json"
SIZE, ZOOM_OUT, SHIFT, ZOOM_IN = 136, 0.7, 0.1, 0.8


def zoom_out(img: Image.Image, pts: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    side = round(SIZE * ZOOM_OUT)
    small = np.asarray(img.resize((side, side), Image.BILINEAR))
    room = SIZE - side
    ox, oy = (room / 2 + rng.uniform(-SHIFT, SHIFT, 2) * SIZE).clip(0, room).round().astype(int)
    big = np.pad(small, ((oy, room - oy), (ox, room - ox), (0, 0)), mode="edge")
    return Image.fromarray(big), (pts + 0.5) * side / SIZE - 0.5 + np.array([ox, oy])


def zoom_in(img: Image.Image, pts: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    side = SIZE * ZOOM_IN
    off = (SIZE - side) / 2
    out = img.resize((SIZE, SIZE), Image.BILINEAR, box=(off, off, off + side, off + side))
    return out, (pts + 0.5 - off) * SIZE / side - 0.5


def framings(imgs: list, pts: np.ndarray) -> dict[str, tuple[list, np.ndarray]]:
    rng = np.random.default_rng(0)
    out_imgs, out_pts = zip(*(zoom_out(i, p, rng) for i, p in zip(imgs, pts)))
    in_imgs, in_pts = zip(*(zoom_in(i, p) for i, p in zip(imgs, pts)))
    return {"as labelled": (imgs, pts), "zoomed out": (list(out_imgs), np.stack(out_pts)),
            "zoomed in": (list(in_imgs), np.stack(in_pts))}


def hog_ridge(model: hyperland.HyperlandModel, imgs: list, pts: np.ndarray, tests: dict) -> dict[str, np.ndarray]:
    import torch

    from hyperland.geometry import normalised_to_pixels, pixels_to_normalised
    from hyperland.heads.baselines import HogRidge, hog_features

    sizes = [(SIZE, SIZE)] * len(imgs)
    est = HogRidge().fit(hog_features(model, imgs), pixels_to_normalised(model, torch.from_numpy(pts), sizes))
    return {name: normalised_to_pixels(model, est.predict(hog_features(model, t_imgs)), [(SIZE, SIZE)] * len(t_imgs))
            .numpy() for name, (t_imgs, _) in tests.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", default="10,50,200,all")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--options", default="{}", help="LandmarkHead options (JSON)")
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    ap.add_argument("--val", action="store_true", help="fit on the pool's first 500 faces, score its other 500")
    args = ap.parse_args()
    model = hyperland.load()
    pool, test = mtfl_protocol(MTFL, "aflw-val" if args.val else "aflw")
    imgs, pts = load_samples(pool, size=SIZE)
    tests = framings(*load_samples(test, size=SIZE))
    feats = {}
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    seconds: dict[str, list[float]] = {}
    for shots in args.shots.split(","):
        n = len(pool) if shots == "all" else int(shots)
        for seed in range(1 if n == len(pool) else args.seeds):
            idx = np.random.default_rng(seed).permutation(len(pool))[:n]
            sub_imgs, sub_pts = [imgs[i] for i in idx], pts[idx]
            preds = {"mean shape": {k: np.broadcast_to(np.nanmean(sub_pts, 0), p.shape) for k, (_, p) in tests.items()},
                     "HOG -> ridge": hog_ridge(model, sub_imgs, sub_pts, tests)}
            t0 = time.perf_counter()
            head = LandmarkHead(5, random_state=seed, progress=False, **json.loads(args.options))
            head.fit(model, sub_imgs, sub_pts, landmark_names=landmark_names(pool))  # as hyperland eval
            seconds.setdefault(shots, []).append(round(time.perf_counter() - t0, 1))
            key = None if head.projection_ is None else head.projection_.key  # a PCA differs per fit
            mirrors = head.mirrors_at_predict(landmark_names(pool))  # the head also reads the flipped test faces
            for name, (t_imgs, _) in tests.items():
                if (name, key) not in feats:
                    feats[name, key] = (encode(model, t_imgs, **head.encoding_),
                                        head.encode_mirrored(model, t_imgs) if mirrors else None)
            preds["head"] = {name: head.predict(features=feats[name, key][0], mirror_features=feats[name, key][1])
                             for name in tests}
            for row, by_test in preds.items():
                for name, (_, t_pts) in tests.items():
                    value = 100 * float(nme(by_test[name], t_pts, eyes=(0, 1)))
                    table.setdefault(row, {}).setdefault(name, {}).setdefault(shots, []).append(round(value, 2))
            print(shots, seed, {r: {t: v[shots][-1] for t, v in d.items()} for r, d in table.items()}, flush=True)
    mean = {r: {t: {s: round(float(np.mean(v)), 2) for s, v in d.items()} for t, d in by.items()}
            for r, by in table.items()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out = OUT.with_name(f"framing_shift{args.tag}.json")
    out.write_text(json.dumps({"table": mean, "runs": table, "fit_seconds": seconds, "model": model.name,
                               "options": json.loads(args.options), "seeds": args.seeds,
                               "split": "aflw pool 500 / 500 (validation)" if args.val else "aflw"},
                              indent=1) + "\n")
    print(json.dumps(mean, indent=1))
    print("wrote", out.relative_to(ROOT))


if __name__ == "__main__":
    main()
