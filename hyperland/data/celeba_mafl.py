"""CelebA + MAFL in the layout of the landmark papers (Thewlis et al., DVE, contrast-landmark).

Files under ``root`` (either the CelebA release folders or all flat in ``root``)::

    Img/img_align_celeba/000001.jpg ...          (aligned 178 x 218 faces)
    Anno/list_landmarks_align_celeba.txt          line 1: count; line 2: column names;
                                                  then "000001.jpg x1 y1 x2 y2 ... x5 y5"
    Eval/list_eval_partition.txt                  "000001.jpg 0|1|2" (train / val / test), optional
    MAFL/training.txt, MAFL/testing.txt           one file name per line (19,000 / 1,000)

Points: left eye, right eye, nose, left mouth corner, right mouth corner (as MTFL), kept as given
(0-based pixels). Crop: the fixed square (x 0..178, y 30..208) of every aligned image ("move the head up a
bit"), the same for all images, so no test crop depends on labels; the model's preprocessing then resizes
it to 136 and removes a 20 px border. Pretraining uses CelebA's training partition minus every MAFL image
(:func:`celeba_pretrain_images`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DatasetError, InvalidOptionError
from .base import Box, Sample
from .checks import Outside, check_in_image, check_not_empty, parse_floats, require_file, where

ALIGNED_BOX: Box = (0.0, 30.0, 178.0, 208.0)
EYES = (0, 1)


def _find(root: Path, *candidates: str) -> Path:
    for c in candidates:
        if (root / c).exists():
            return root / c
    raise DatasetError(f"CelebA/MAFL: none of {candidates} under '{root}'. See hyperland.data.celeba_mafl "
                       "for the expected layout.")


def read_celeba_landmarks(root: str | Path) -> dict[str, tuple[int, np.ndarray]]:
    """``{file name: (line number, (5, 2) points)}`` from list_landmarks_align_celeba.txt."""
    path = _find(Path(root), "Anno/list_landmarks_align_celeba.txt", "list_landmarks_align_celeba.txt")
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if lineno <= 2 or not fields:  # count, then column names
                continue
            if len(fields) != 11:
                raise DatasetError(f"{where(path, lineno)}: {len(fields)} fields. Expected a file name and 10 "
                                   "coordinates (x1 y1 ... x5 y5).")
            xy = parse_floats(fields[1:], source=path, lineno=lineno, what="coordinates")
            out[fields[0]] = (lineno, xy.reshape(5, 2))
    if not out:
        raise DatasetError(f"{path}: no landmark rows.")
    return out


def read_mafl(root: str | Path, split: Literal["training", "testing"] = "training", *,
              outside: Outside = "ignore") -> list[Sample]:
    """MAFL faces of ``split`` with their CelebA landmarks and the fixed aligned crop."""
    root = Path(root)
    if split not in ("training", "testing"):
        raise InvalidOptionError(f"Unknown MAFL split '{split}'. Expected 'training' or 'testing'.")
    lst = _find(root, f"MAFL/{split}.txt", f"{split}.txt")
    images = _find(root, "Img/img_align_celeba", "img_align_celeba")
    marks = read_celeba_landmarks(root)
    samples = []
    for lineno, line in enumerate(lst.read_text(encoding="utf-8").splitlines(), start=1):
        name = line.split()[0] if line.split() else ""
        if not name:
            continue
        if name not in marks:
            raise DatasetError(f"{where(lst, lineno)}: '{name}' has no row in list_landmarks_align_celeba.txt.")
        img = require_file(images / name, source=lst, lineno=lineno)
        samples.append(Sample(img, marks[name][1], np.ones(5, bool), {"line": lineno, "split": split},
                              ALIGNED_BOX))
    check_not_empty(samples, source=lst, split=split)
    return check_in_image(samples, outside=outside, source=lst)


def celeba_pretrain_images(root: str | Path) -> list[Path]:
    """CelebA training-partition images (partition 0) minus every MAFL image: the pretraining set."""
    root = Path(root)
    part = _find(root, "Eval/list_eval_partition.txt", "list_eval_partition.txt")
    images = _find(root, "Img/img_align_celeba", "img_align_celeba")
    mafl = set()
    for s in ("training", "testing"):
        mafl |= {ln.split()[0] for ln in _find(root, f"MAFL/{s}.txt", f"{s}.txt").read_text().splitlines()
                 if ln.strip()}
    out = []
    for lineno, line in enumerate(part.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DatasetError(f"{where(part, lineno)}: expected '<file> 0|1|2', got '{line.strip()}'.")
        if fields[1] == "0" and fields[0] not in mafl:
            out.append(images / fields[0])
    return out


def mafl_protocol(root: str | Path) -> tuple[list[Sample], list[Sample]]:
    """(labelled pool = MAFL training, test = MAFL testing)."""
    return read_mafl(root, "training"), read_mafl(root, "testing")


__all__ = ["ALIGNED_BOX", "EYES", "celeba_pretrain_images", "mafl_protocol", "read_celeba_landmarks", "read_mafl"]
