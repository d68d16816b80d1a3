"""``hyperland viz pca`` (hypercolumns as PCA-RGB) and ``hyperland viz landmarks`` (predicted vs true
points), each writing PNG files into ``--out``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import InvalidKeypointsError, InvalidOptionError
from ._args import add_device_argument, add_model_argument, add_quiet_argument, int_list, load_head, progress


def _pair(text: str) -> tuple[int, int]:
    vals = int_list(text)
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"expected two landmark indices such as 0,1; got '{text}'")
    return (vals[0], vals[1])


def _layers(layers: tuple[int, ...] | None) -> list[int] | None:
    return list(layers) if layers else None


def run_pca(args: argparse.Namespace) -> int:
    import hyperland
    from hyperland.images import expand_paths
    from hyperland.viz import grid, model_view, pca_rgb, save_png

    images = [Path(p) for p in expand_paths(args.images)]
    model = hyperland.load(args.model, device=args.device)
    rgb = pca_rgb(model, images, layers=_layers(args.layers), size=args.size, progress=progress(args))
    view = model_view(model, images)
    if args.size and args.size != view.shape[1]:
        from PIL import Image

        view = np.stack([np.asarray(Image.fromarray(v).resize((args.size, args.size))) for v in view])
    out = Path(args.out)
    for path, v, p in zip(images, view, rgb):
        written = save_png(grid([v, p], cols=2), out / f"{path.stem}_pca.png")
        sys.stdout.write(f"{written}\n")
    if len(images) > 1:
        tiles = [t for pair in zip(view, rgb) for t in pair]
        sys.stdout.write(f"{save_png(grid(tiles, cols=min(8, 2 * len(images))), out / 'pca_grid.png')}\n")
    return 0


def _truth(path: str | None, images: list[Path]) -> np.ndarray | None:
    if path is None:
        return None
    from hyperland.data import read_keypoints

    by_name: dict[object, np.ndarray] = {}
    for s in read_keypoints(path, outside="ignore"):
        by_name[Path(s.image).resolve()] = s.points
        by_name.setdefault(Path(s.image).name, s.points)
    rows = []
    for im in images:
        p = by_name.get(im.resolve(), by_name.get(im.name))
        if p is None:
            raise InvalidKeypointsError(f"--truth {path} has no row for '{im}'. Expected every image to be listed "
                                        "(matched by path, then by file name).")
        rows.append(p)
    return np.stack(rows)


def run_landmarks(args: argparse.Namespace) -> int:
    from hyperland.images import expand_paths
    from hyperland.metrics import nme
    from hyperland.viz import draw_landmarks, overlay_grid, save_png

    images = [Path(p) for p in expand_paths(args.images)]
    head = load_head(args)
    truth = _truth(args.truth, images)
    pred = head.predict(images)
    out = Path(args.out)
    for i, path in enumerate(images):
        arr = draw_landmarks(path, pred[i], None if truth is None else truth[i], scale=args.scale)
        sys.stdout.write(f"{save_png(arr, out / f'{path.stem}_landmarks.png')}\n")
    if len(images) > 1:
        sys.stdout.write(f"{save_png(overlay_grid(images, pred, truth), out / 'landmarks_grid.png')}\n")
    if truth is not None and truth.shape[1] == pred.shape[1] and pred.shape[1] > 1:
        eyes = (args.eyes[0], args.eyes[1])
        sys.stdout.write(f"NME {100 * float(nme(pred, truth, eyes=eyes)):.2f} % over {len(images)} images "
                         f"(normalised by landmarks {eyes})\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if not args.images:
        raise InvalidOptionError("No images given. Pass one or more image files, folders or glob patterns.")
    return run_pca(args) if args.viz == "pca" else run_landmarks(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("viz", help="PNG pictures: PCA-RGB hypercolumns, landmark overlays")
    kinds = p.add_subparsers(dest="viz", required=True, metavar="KIND")
    pca = kinds.add_parser("pca", help="hypercolumns projected to 3 PCA channels as RGB (one PCA over all images)")
    pca.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of images or glob patterns")
    add_model_argument(pca)
    add_device_argument(pca)
    add_quiet_argument(pca)
    pca.add_argument("--layers", type=int_list, default=None,
                     help="feature layers, e.g. 1,2,3,4 (default: the model's)")
    pca.add_argument("--size", type=int, default=None, help="output side in px (default: the model input size)")
    pca.add_argument("--out", required=True, help="output folder")
    pca.set_defaults(func=run)
    lm = kinds.add_parser("landmarks", help="predicted (dots) vs true (white rings) landmarks")
    lm.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of images or glob patterns")
    lm.add_argument("--head", required=True, help="a head saved by LandmarkHead.save / hyperland fit")
    add_model_argument(lm, from_head=True)
    add_device_argument(lm)
    add_quiet_argument(lm)
    lm.add_argument("--truth", default=None, help="keypoint CSV/JSON with the true points of the images")
    lm.add_argument("--eyes", type=_pair, default=(0, 1),
                    help="landmark indices normalising the printed NME (default 0,1)")
    lm.add_argument("--scale", type=int, default=2, help="enlarge each image this many times (default 2)")
    lm.add_argument("--out", required=True, help="output folder")
    lm.set_defaults(func=run)
