"""MTFL (Zhang et al., ECCV 2014): training.txt / testing.txt with 1-based (x1..x5, y1..y5) + 4 attributes.

Lines look like `` lfw_5590\\Aaron_Guiel_0001.jpg 101.25 ... 1 1 2 3\\r\\n`` (leading spaces, Windows
separators, CRLF). Points: left eye, right eye, nose, left mouth corner, right mouth corner.

Protocols (see DESIGN.md): ``mtfl-aflw`` (pool = training.txt with label-derived crops matching the AFLW
framing, test = the 2,995 AFLW faces as they are), ``aflw`` (pool = first 1,000 AFLW lines, test = the other
1,995) and ``lfwnet`` (pool = training.txt but its last 2,000 lines, which are the test; whole images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DatasetError, InvalidOptionError
from .base import Sample, centroid_box
from .checks import Outside, check_in_image

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
ATTRIBUTES = ("gender", "smile", "glasses", "pose")
EYES = (0, 1)
PROTOCOLS: tuple[str, ...] = ("mtfl-aflw", "aflw", "lfwnet", "aflw-val", "lfwnet-val")
LFWNET_TEST = 2000
AFLW_POOL = 1000


def read_mtfl(root: str | Path, split: Literal["training", "testing"], *, check_files: bool = True,
              outside: Outside = "ignore") -> list[Sample]:
    """Parse ``root/{split}.txt``; coordinates become 0-based pixel centres. No point of the release lies
    outside its image, so the bounds check (``outside``, see :mod:`hyperland.data.checks`) is off by default."""
    root = Path(root)
    path = root / f"{split}.txt"
    if not path.is_file():
        raise DatasetError(f"MTFL list not found: '{path}'. Pass the folder that holds training.txt and testing.txt.")
    samples = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.strip().split()
            if not parts:
                continue
            if len(parts) != 15:
                raise DatasetError(f"{path}:{lineno}: expected 15 fields (path, 10 coordinates, 4 attributes), "
                                   f"got {len(parts)}.")
            rel = parts[0].replace("\\", "/")
            try:
                xy = np.array(parts[1:11], dtype=np.float32)
                attrs = [int(v) for v in parts[11:15]]
            except ValueError as exc:
                raise DatasetError(f"{path}:{lineno}: non-numeric field ({exc}).") from exc
            img = root / rel
            if check_files and not img.is_file():
                raise DatasetError(f"{path}:{lineno}: image '{img}' is missing.")
            pts = np.stack([xy[:5], xy[5:]], axis=1) - 1.0
            meta = dict(zip(ATTRIBUTES, attrs), line=lineno, source=rel.split("/")[0], landmarks=list(LANDMARKS))
            samples.append(Sample(image=img, points=pts, visible=np.ones(5, bool), meta=meta))
    if not samples:
        raise DatasetError(f"{path} lists no faces.")
    return check_in_image(samples, outside=outside, source=path) if check_files else samples


def _with_crop(samples: list[Sample]) -> list[Sample]:
    return [Sample(s.image, s.points, s.visible, s.meta, centroid_box(s.points)) for s in samples]


def mtfl_protocol(root: str | Path, protocol: str = "mtfl-aflw") -> tuple[list[Sample], list[Sample]]:
    """(labelled pool, test) for one of :data:`PROTOCOLS`. Pretraining must never see AFLW or the lfwnet test.

    ``aflw-val`` splits the ``aflw`` pool in halves (pool = its first 500 faces, test = the other 500): the
    validation protocol on which models and settings are chosen, so that the ``aflw`` test faces are never used;
    ``lfwnet-val`` holds the last 2,000 images of the ``lfwnet`` pool out in the same way."""
    if protocol == "mtfl-aflw":
        return _with_crop(read_mtfl(root, "training")), read_mtfl(root, "testing")
    if protocol == "aflw":
        test = read_mtfl(root, "testing")
        return test[:AFLW_POOL], test[AFLW_POOL:]
    if protocol == "aflw-val":  # model and setting choices: the aflw pool's halves, never its test faces
        pool = read_mtfl(root, "testing")[:AFLW_POOL]
        return pool[:AFLW_POOL // 2], pool[AFLW_POOL // 2:]
    if protocol == "lfwnet-val":  # choices for lfwnet: its pool's last 2,000 images held out, never its test
        train = read_mtfl(root, "training")[:-LFWNET_TEST]
        return train[:-LFWNET_TEST], train[-LFWNET_TEST:]
    if protocol == "lfwnet":
        train = read_mtfl(root, "training")
        return train[:-LFWNET_TEST], train[-LFWNET_TEST:]
    raise InvalidOptionError(f"Unknown MTFL protocol '{protocol}'. Expected one of {PROTOCOLS}.")


__all__ = ["ATTRIBUTES", "EYES", "LANDMARKS", "PROTOCOLS", "mtfl_protocol", "read_mtfl"]
