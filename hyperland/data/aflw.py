"""AFLW_M as the landmark papers use it (Thewlis et al. 2017; contrast-landmark ``AFLW_MTFL``).

Training: the 10,122 cropped AFLW faces of ``aflw_10122train_cropped.zip`` (150 x 150 crops), listed in
``aflw_cropped/facedata_cropped.csv`` (header row; the rows with ``set == 1`` are training faces; column
``crop_file`` names the crop; the ten columns after the first four are x1, y1, x2, y2, ..., x5, y5 in
1-based pixels of the crop). Testing: MTFL's 2,995 AFLW faces (``MTFL/testing.txt``, read with
:func:`hyperland.data.read_mtfl`). Both halves are the same 150 x 150 framing, so no crop is applied:
the model's preprocessing resizes to 136 and removes a 20 px border. No AFLW test image is a training image.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Sample
from .checks import Outside, check_in_image, check_not_empty, parse_floats, require_file, where
from .mtfl import read_mtfl

logger = logging.getLogger(__name__)
N_TRAIN = 10122
EYES = (0, 1)


def read_aflw_train(root: str | Path, *, outside: Outside = "ignore") -> list[Sample]:
    """The cropped AFLW training faces (``root/aflw_cropped``)."""
    folder = Path(root) / "aflw_cropped"
    path = folder / "facedata_cropped.csv"
    if not path.is_file():
        raise DatasetError(f"AFLW_M training list not found: '{path}'. Unpack aflw_10122train_cropped.zip into "
                           f"'{folder}'.")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or "crop_file" not in rows[0] or "set" not in rows[0]:
        raise DatasetError(f"{path}:1: header {rows[0] if rows else []} lacks 'crop_file' and 'set'.")
    col = {h: i for i, h in enumerate(rows[0])}
    samples = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 14:
            raise DatasetError(f"{where(path, lineno)}: {len(row)} fields. Expected at least 14 "
                               "(4 descriptive columns, then x1, y1, ..., x5, y5).")
        if row[col["set"]].strip() != "1":
            continue
        xy = parse_floats(row[4:14], source=path, lineno=lineno, what="coordinates").reshape(5, 2) - 1.0
        img = require_file(folder / row[col["crop_file"]], source=path, lineno=lineno)
        samples.append(Sample(img, xy, np.ones(5, bool), {"line": lineno}))
    check_not_empty(samples, source=path, split="set == 1")
    if len(samples) != N_TRAIN:
        logger.warning("%s: %d training faces; the published AFLW_M training set has %d.", path, len(samples),
                       N_TRAIN)
    return check_in_image(samples, outside=outside, source=path)


def aflw_m_protocol(root: str | Path) -> tuple[list[Sample], list[Sample]]:
    """(labelled pool = cropped AFLW training faces, test = MTFL's AFLW faces in ``root/MTFL``)."""
    return read_aflw_train(root), read_mtfl(Path(root) / "MTFL", "testing")


__all__ = ["EYES", "N_TRAIN", "aflw_m_protocol", "read_aflw_train"]
