"""CUB-200-2011 (Wah et al., 2011): 15 bird parts with visibility, one bounding box per image.

Files under ``root`` (the official release)::

    images.txt            <image_id> <relative path under images/>
    parts/parts.txt       <part_id> <part name>          (optional: names)
    parts/part_locs.txt   <image_id> <part_id> <x> <y> <visible>
    bounding_boxes.txt    <image_id> <x> <y> <width> <height>

Part coordinates are pixel positions and are kept as given (0-based pixel centres); an invisible part
(``visible = 0``, written as 0 0) becomes NaN. Every sample's crop box is its bounding box (an annotation
of the bird, not of its parts); metric: PCK at 0.1 × max(box width, height) (the paper's setting).

Split lists, as in the contrast-landmark repository (``train_10.txt``, ``train_50.txt``, ``train_100.txt``,
``train_250.txt``, ``train_500.txt``, ``train_1241.txt``, ``val.txt``, ``test.txt``): one image path per
line, any prefix, matched to images.txt by the part after ``images/`` (or the last two path components).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Sample
from .checks import Outside, check_in_image, check_not_empty, parse_floats, require_file, where

N_PARTS = 15
SPLIT_NAMES = ("train_10", "train_50", "train_100", "train_250", "train_500", "train_1241", "val", "test")


def _table(path: Path, n_fields: int) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise DatasetError(f"CUB file not found: '{path}'. Pass the CUB_200_2011 folder as root.")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < n_fields:
                raise DatasetError(f"{where(path, lineno)}: {len(fields)} fields, expected {n_fields}.")
            rows.append((lineno, fields))
    return rows


def _key(path: str) -> str:
    p = path.strip().replace("\\", "/")
    if "images/" in p:
        return p.rsplit("images/", 1)[1]
    return "/".join(p.split("/")[-2:])


def read_split(path: str | Path) -> list[str]:
    """Image keys (``class_folder/file.jpg``) of a split list."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"CUB split list not found: '{path}'. Expected one of {SPLIT_NAMES} (.txt).")
    keys = [_key(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not keys:
        raise DatasetError(f"{path}: empty split list.")
    return keys


def read_cub(root: str | Path, split: str | None = None, *, split_dir: str | Path | None = None,
             outside: Outside = "warn", check_files: bool = True) -> list[Sample]:
    """CUB samples, all of them (``split=None``) or those of a split list ``split_dir/{split}.txt``
    (default ``split_dir``: ``root/split``), in the list's order."""
    root = Path(root)
    images = {int(f[0]): (ln, " ".join(f[1:])) for ln, f in _table(root / "images.txt", 2)}
    boxes = {}
    bpath = root / "bounding_boxes.txt"
    for ln, f in _table(bpath, 5):
        x, y, w, h = parse_floats(f[1:5], source=bpath, lineno=ln, what="box")
        boxes[int(f[0])] = (float(x), float(y), float(x + w), float(y + h))
    lpath = root / "parts" / "part_locs.txt"
    pts = {i: np.full((N_PARTS, 2), np.nan, np.float32) for i in images}
    vis = {i: np.zeros(N_PARTS, bool) for i in images}
    for ln, f in _table(lpath, 5):
        img_id, part = int(f[0]), int(f[1])
        if img_id not in images:
            raise DatasetError(f"{where(lpath, ln)}: image id {img_id} is not in images.txt.")
        if not 1 <= part <= N_PARTS:
            raise DatasetError(f"{where(lpath, ln)}: part id {part}. Expected 1..{N_PARTS}.")
        x, y, v = parse_floats(f[2:5], source=lpath, lineno=ln, what="x y visible")
        pts[img_id][part - 1] = (x, y)
        vis[img_id][part - 1] = bool(v)
    names = None
    if (root / "parts" / "parts.txt").is_file():
        names = [" ".join(f[1:]) for _, f in _table(root / "parts" / "parts.txt", 2)]
    by_key = {rel: i for i, (_, rel) in images.items()}
    if split is None:
        ids = sorted(images)
        source: Path = root / "images.txt"
    else:
        source = Path(split_dir or root / "split") / f"{split}.txt"
        ids = []
        for lineno, key in enumerate(read_split(source), start=1):
            if key not in by_key:
                raise DatasetError(f"{where(source, lineno)}: '{key}' is not in {root / 'images.txt'}.")
            ids.append(by_key[key])
    samples = []
    for i in ids:
        line, rel = images[i]
        img = root / "images" / rel
        if check_files:
            require_file(img, source=root / "images.txt", lineno=line)
        if i not in boxes:
            raise DatasetError(f"{bpath}: no box for image id {i} ('{rel}').")
        meta = {"id": i, "line": line, "class": rel.split("/")[0], **({"landmarks": names} if names else {})}
        samples.append(Sample(img, pts[i], vis[i], meta, boxes[i]))
    check_not_empty(samples, source=source, split=split or "all")
    return check_in_image(samples, outside=outside, source=lpath) if check_files else samples


def cub_protocol(root: str | Path, *, train: str = "train_1241", test: str = "test",
                 split_dir: str | Path | None = None) -> tuple[list[Sample], list[Sample]]:
    """(labelled pool, test) from two split lists; validation is carved from the pool by the evaluator."""
    return (read_cub(root, train, split_dir=split_dir, outside="ignore"),
            read_cub(root, test, split_dir=split_dir, outside="ignore"))


__all__ = ["N_PARTS", "SPLIT_NAMES", "cub_protocol", "read_cub", "read_split"]
