"""DeepLabCut labels: read ``CollectedData_<scorer>.csv`` as it is, and write predictions in DeepLabCut's layout.

A single-animal DeepLabCut CSV has three header rows and one row per labelled frame::

    scorer,Pranav,Pranav,Pranav,Pranav
    bodyparts,snout,snout,leftear,leftear
    coords,x,y,x,y
    labeled-data/m4s1/img0000.png,21.521,265.428,,

An empty cell is a part not labelled in that frame (occluded or out of view): it becomes NaN with
``visible=False``. Newer DeepLabCut versions split the image path over three columns (``labeled-data,m4s1,
img0000.png``; the header rows then start with two empty cells); both layouts are read. Machine-labelled files
add a ``likelihood`` coordinate per part (``x, y, likelihood``), kept in ``meta["likelihood"]``. Multi-animal
files (a fourth header row ``individuals``) are refused with a clear error.

Image paths are relative to the DeepLabCut project folder, the parent of ``labeled-data/``: the project root is
found from the CSV's own location (``<project>/labeled-data/<video>/CollectedData_X.csv``); a CSV elsewhere
resolves them against its own folder, and an image missing there is looked for beside the CSV (a
``labeled-data/<video>`` folder copied on its own). ``image_root`` overrides the base. Coordinates are pixels
with pixel centres at integers, as DeepLabCut writes them, so they are used unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text
from ..errors import DatasetError, InvalidKeypointsError, InvalidOptionError
from .base import Sample
from .checks import Outside, finish_samples, parse_floats, relative_path, resolve_path

HEADER = ("scorer", "bodyparts", "coords")
COORDS = ("x", "y", "likelihood")


def is_dlc_csv(path: str | Path) -> bool:
    """True when the CSV's first cell is ``scorer`` (DeepLabCut's first header row)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), [])
    return bool(first) and first[0].strip() == "scorer"


def project_root(csv_path: str | Path) -> Path:
    """The DeepLabCut project folder of ``<project>/labeled-data/<video>/X.csv``, else the CSV's own folder."""
    folder = Path(csv_path).resolve().parent
    return folder.parent.parent if folder.parent.name == "labeled-data" else folder


def _layout(rows: list[list[str]], source: Path) -> tuple[int, list[str], list[dict[str, int]], str]:
    """(path columns, part names, {coord: column} per part, scorer) from the header rows."""
    if len(rows) > 1 and rows[1] and rows[1][0].strip() == "individuals":
        raise DatasetError(f"{source}: a multi-animal DeepLabCut file (header row 2 is 'individuals'). hyperland "
                           "reads single-animal labels: export one individual's labels to a single-animal "
                           "CollectedData CSV (scorer, bodyparts, coords) or label one animal per frame.")
    heads = [r[0].strip() if r else "" for r in rows[:3]]
    if tuple(heads) != HEADER:
        raise DatasetError(f"{source}: header rows start with {heads}. Expected DeepLabCut's {list(HEADER)} "
                           "(CollectedData_<scorer>.csv).")
    coords = [c.strip() for c in rows[2]]
    start = next((i for i in range(1, len(coords)) if coords[i]), len(coords))
    if start == len(coords):
        raise DatasetError(f"{source}:3: the coords row names no coordinates. Expected x, y per body part.")
    width = len(coords)
    if len(rows[0]) != width or len(rows[1]) != width:
        raise DatasetError(f"{source}: the header rows have {len(rows[0])}, {len(rows[1])} and {width} cells. "
                           "Expected the same count in each.")
    names: list[str] = []
    cols: dict[str, dict[str, int]] = {}
    for i in range(start, width):
        part, coord = rows[1][i].strip(), coords[i]
        if not part or coord not in COORDS:
            raise DatasetError(f"{source}: column {i + 1} is ({part!r}, {coord!r}). Expected a body part name and "
                               f"one of {list(COORDS)}.")
        if part not in cols:
            names.append(part)
            cols[part] = {}
        if coord in cols[part]:
            raise DatasetError(f"{source}: body part '{part}' has two '{coord}' columns.")
        cols[part][coord] = i
    for part in names:
        if not {"x", "y"} <= set(cols[part]):
            raise DatasetError(f"{source}: body part '{part}' has columns {sorted(cols[part])}. Expected x and y.")
    return start, names, [cols[p] for p in names], rows[0][start].strip()


def read_dlc(path: str | Path, *, image_root: str | Path | None = None, outside: Outside = "warn",
             check_files: bool = True) -> list[Sample]:
    """Samples from a DeepLabCut ``CollectedData_*.csv`` (or a file :func:`write_dlc_predictions` wrote): one per
    frame, the body parts in column order as ``meta["landmarks"]``, NaN and ``visible=False`` for empty cells."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"DeepLabCut CSV not found: '{path}'.")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if len(rows) < 3:
        raise DatasetError(f"{path}: {len(rows)} rows. Expected DeepLabCut's three header rows, then one row per "
                           "labelled frame.")
    start, names, cols, scorer = _layout(rows, path)
    base = Path(image_root) if image_root is not None else project_root(path)
    samples = []
    for lineno, row in enumerate(rows[3:], start=4):
        if not "".join(row).strip():
            continue
        if len(row) != len(rows[2]):
            raise DatasetError(f"{path}:{lineno}: {len(row)} fields but the header has {len(rows[2])}.")
        rel = "/".join(c.strip().replace("\\", "/") for c in row[:start] if c.strip())
        pts = np.stack([parse_floats([row[c[a]] for c in cols], source=path, lineno=lineno, what=f"{a} coordinates")
                        for a in ("x", "y")], axis=1)
        img = resolve_path(rel, base)
        if image_root is None and not img.is_file() and (path.parent / Path(rel).name).is_file():
            img = path.parent / Path(rel).name
        if check_files and not img.is_file():
            raise DatasetError(f"{path}:{lineno}: image '{img}' is listed but missing. DeepLabCut paths are "
                               f"relative to the project folder ('{base}' here): keep the CSV in "
                               "<project>/labeled-data/<video>/ or pass image_root=<project folder>.")
        meta: dict[str, Any] = {"line": lineno, "landmarks": names, "scorer": scorer}
        if all("likelihood" in c for c in cols):
            lik = parse_floats([row[c["likelihood"]] for c in cols], source=path, lineno=lineno, what="likelihoods")
            meta["likelihood"] = lik.tolist()
        samples.append(Sample(img, pts, np.isfinite(pts).all(axis=1), meta))
    return finish_samples(samples, source=path, outside=outside, check_files=check_files)


def write_dlc_predictions(path: str | Path, *, images: Sequence[str | Path], points: Any, confidence: Any = None,
                          landmarks: Sequence[str], scorer: str = "hyperland") -> Path:
    """Write (N, K, 2) pixel ``points`` of ``images`` in DeepLabCut's layout: header rows scorer / bodyparts /
    coords with ``x, y, likelihood`` per part (``confidence`` (N, K) in [0, 1]; without it ``x, y`` only, the
    layout of hand labels), one row per image, NaN as an empty cell. Image paths are written relative to the
    project folder the CSV sits in (see :func:`project_root`) when they lie under it, so :func:`read_dlc` reads
    the file back."""
    path = Path(path)
    pts = np.asarray(points, dtype=np.float64)
    n, k = len(images), len(landmarks)
    if pts.shape != (n, k, 2):
        raise InvalidKeypointsError(f"points have shape {pts.shape}. Expected ({n}, {k}, 2): one (x, y) per "
                                    "landmark name for each image.")
    conf = None if confidence is None else np.asarray(confidence, dtype=np.float64)
    if conf is not None and conf.shape != (n, k):
        raise InvalidKeypointsError(f"confidence has shape {conf.shape}. Expected ({n}, {k}).")
    if not scorer.strip() or not all(str(name).strip() for name in landmarks):
        raise InvalidOptionError(f"scorer {scorer!r} and landmark names {list(landmarks)} must be non-empty.")
    coords = COORDS if conf is not None else COORDS[:2]
    f = io.StringIO(newline="")  # rows go to memory, then through the one atomic writer
    w = csv.writer(f)
    w.writerow(["scorer"] + [scorer] * (k * len(coords)))
    w.writerow(["bodyparts"] + [str(name) for name in landmarks for _ in coords])
    w.writerow(["coords"] + list(coords) * k)
    base = project_root(path)
    for i, img in enumerate(images):
        cells = []
        for j in range(k):
            cells += ["" if not np.isfinite(v) else f"{v:.3f}" for v in pts[i, j]]
            if conf is not None:
                cells.append("" if not np.isfinite(conf[i, j]) else f"{conf[i, j]:.4f}")
        w.writerow([relative_path(img, base), *cells])
    atomic_write_text(path, f.getvalue())
    return path


__all__ = ["is_dlc_csv", "project_root", "read_dlc", "write_dlc_predictions"]
