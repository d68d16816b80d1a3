"""300W (Sagonas et al., 2013): 68-point ``.pts`` files beside the images, iBUG's bounding boxes.

A ``.pts`` file is either the official layout::

    version: 1
    n_points:  68
    {
    336.820955 240.864510
    ...
    }

or bare ``x y`` lines. Coordinates are 1-based (MATLAB) and become 0-based pixel centres here.

Layout under ``root``: ``afw/``, ``helen/trainset/``, ``helen/testset/``, ``lfpw/trainset/``,
``lfpw/testset/``, ``ibug/`` (images + .pts) and ``Bounding Boxes/bounding_boxes_*.mat`` (the iBUG
release). Splits follow Ren et al. (3000 fps): ``train`` = AFW + Helen train + LFPW train (3,148),
``common`` = Helen test + LFPW test (554), ``challenging`` = iBUG (135), ``test`` = common + challenging (689).

Crops: the face box (``box="detector"``, the iBUG face detector's box, by default; ``"ground_truth"``
is the tight box of the 68 labels, so it must not be used to frame test images) is turned into a square of
side ``100 / 52`` × the box width around the box centre, as in Thewlis et al. and the contrast-landmark
code (the face spans 52 of 100 pixels). NME normalises by the outer-eye-corner distance (points 36, 45).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DatasetError, InvalidOptionError
from .base import Box, Sample
from .checks import Outside, check_in_image, check_not_empty, parse_floats, where

EYES = (36, 45)
N_POINTS = 68
FACE_FRACTION = 52 / 100
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": ("helen/testset", "lfpw/testset"),
    "challenging": ("ibug",),
    "test": ("helen/testset", "lfpw/testset", "ibug"),
    "afw": ("afw",),
}
AFW_POOL = 200  # the afw protocol: the first 200 AFW faces (by file name) are the labelled pool, the other 137 the test
_MAT = {"afw": "afw", "helen/trainset": "helen_trainset", "helen/testset": "helen_testset",
        "lfpw/trainset": "lfpw_trainset", "lfpw/testset": "lfpw_testset", "ibug": "ibug"}
_IMAGE_EXT = (".jpg", ".png", ".jpeg")


def read_pts(path: str | Path, *, n_points: int | None = N_POINTS) -> np.ndarray:
    """(K, 2) 0-based points from a ``.pts`` file, with or without the ``version/n_points/{ }`` header."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Landmark file not found: '{path}'.")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    declared, rows, in_braces = None, [], False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("version"):
            continue
        if line.startswith("n_points"):
            try:
                declared = int(line.split(":", 1)[1])
            except (IndexError, ValueError) as exc:
                raise DatasetError(f"{where(path, lineno)}: cannot read n_points from '{line}'.") from exc
            continue
        if line == "{":
            in_braces = True
            continue
        if line == "}":
            in_braces = False
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DatasetError(f"{where(path, lineno)}: expected 'x y', got '{line}'.")
        rows.append(parse_floats(fields, source=path, lineno=lineno, what="coordinates"))
    if in_braces:
        raise DatasetError(f"{path}: '{{' without a closing '}}'. The file may be truncated.")
    if declared is not None and declared != len(rows):
        raise DatasetError(f"{path}: header says n_points {declared} but the file holds {len(rows)} points.")
    if n_points is not None and len(rows) != n_points:
        raise DatasetError(f"{path}: {len(rows)} points. Expected {n_points} (300W); pass n_points=None to "
                           "accept any count.")
    if not rows:
        raise DatasetError(f"{path}: no points.")
    return np.stack(rows) - 1.0


def square_box(box: Box, *, face_fraction: float = FACE_FRACTION) -> Box:
    """A square around a face box's centre whose side is the box width / ``face_fraction``."""
    x0, y0, x1, y1 = box
    side = (x1 - x0) / face_fraction
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def read_boxes(path: str | Path, *, kind: Literal["detector", "ground_truth"] = "detector") -> dict[str, Box]:
    """``{image name: (x0, y0, x1, y1)}`` (0-based) from an iBUG ``bounding_boxes_*.mat`` file."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Bounding-box file not found: '{path}'. 300W test crops need the iBUG boxes "
                           "(folder 'Bounding Boxes'), or pass box=None for whole images.")
    field = "bb_detector" if kind == "detector" else "bb_ground_truth"
    try:
        cells = loadmat(str(path))["bounding_boxes"]
        out = {}
        for i in range(cells.shape[1]):
            rec = cells[0, i]
            name = str(rec["imgName"][0, 0][0])
            b = np.asarray(rec[field][0, 0], dtype=np.float64).reshape(-1)
            out[name] = tuple(float(v) - 1.0 for v in b[:4])
    except (KeyError, IndexError, ValueError) as exc:
        raise DatasetError(f"{path}: not an iBUG bounding-box file ({exc}). Expected a 'bounding_boxes' cell "
                           f"array of structs with 'imgName' and '{field}'.") from exc
    return out  # type: ignore[return-value]


def read_w300(root: str | Path, split: str = "train", *,
              box: Literal["detector", "ground_truth"] | None = "detector",
              outside: Outside = "warn") -> list[Sample]:
    """300W samples of ``split`` (one of :data:`SPLITS`) with 68 points and a square crop from ``box``."""
    root = Path(root)
    if split not in SPLITS:
        raise InvalidOptionError(f"Unknown 300W split '{split}'. Expected one of {tuple(SPLITS)}.")
    if box == "ground_truth" and split != "train":
        raise InvalidOptionError("box='ground_truth' frames test faces with their own labels. Use box='detector'.")
    samples: list[Sample] = []
    for sub in SPLITS[split]:
        folder = root / sub
        if not folder.is_dir():
            raise DatasetError(f"300W folder missing: '{folder}'. Expected {', '.join(SPLITS[split])} under {root}.")
        boxes = read_boxes(root / "Bounding Boxes" / f"bounding_boxes_{_MAT[sub]}.mat", kind=box) if box else {}
        for pts_file in sorted(folder.glob("*.pts")):
            image = next((pts_file.with_suffix(e) for e in _IMAGE_EXT if pts_file.with_suffix(e).is_file()), None)
            if image is None:
                raise DatasetError(f"{pts_file}: no image beside it (tried {', '.join(_IMAGE_EXT)}).")
            if box and image.name not in boxes:
                if sub == "ibug" and not image.name.startswith("image"):
                    continue  # iBUG's box list covers only the 'image_*' files (135 faces)
                raise DatasetError(f"{image}: no {box} box in 'Bounding Boxes/bounding_boxes_{_MAT[sub]}.mat'.")
            pts = read_pts(pts_file)
            crop = square_box(boxes[image.name]) if box else None
            samples.append(Sample(image, pts, np.ones(len(pts), bool), {"subset": sub, "pts": str(pts_file)}, crop))
    check_not_empty(samples, source=root, split=split)
    return check_in_image(samples, outside=outside, source=root)


def afw_protocol(root: str | Path) -> tuple[list[Sample], list[Sample]]:
    """(labelled pool, test) of the ``afw`` protocol: the 337 AFW faces of 300W's training split as the
    ``300w-afw`` development set holds them (each already cut to a square of twice its landmarks' box, so the
    whole image is the crop), sorted by file name; the first :data:`AFW_POOL` are the pool, the rest the test."""
    samples = read_w300(root, "afw", box=None, outside="ignore")
    if len(samples) <= AFW_POOL:
        raise DatasetError(f"{root}: {len(samples)} AFW faces; the afw protocol needs more than {AFW_POOL} (the "
                           "pool) — expected the 337 faces of the 300w-afw set.")
    return samples[:AFW_POOL], samples[AFW_POOL:]


__all__ = ["AFW_POOL", "EYES", "SPLITS", "afw_protocol", "read_boxes", "read_pts", "read_w300", "square_box"]
