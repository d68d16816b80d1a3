"""Your own keypoints: a CSV or JSON list of image path + K points, or a COCO keypoint JSON.

CSV (comma separated, one header row, paths relative to the CSV's folder unless absolute)::

    image,left_eye_x,left_eye_y,right_eye_x,right_eye_y[,right_eye_visible][,box_x0,box_y0,box_x1,box_y1]
    faces/0001.jpg,56.6,43.8,79.5,43.3

Landmark columns come in ``NAME_x, NAME_y`` pairs (the landmark order is the column order); an optional
``NAME_visible`` column (0/1) marks unlabelled points, and so does an empty cell. An optional crop box in the
image's pixels goes in ``box_x0, box_y0, box_x1, box_y1``.

JSON: a list of records, or ``{"landmarks": [names], "samples": [records]}``; a record is
``{"image": path, "points": [[x, y] | null, ...], "visible": [bool, ...]?, "box": [x0, y0, x1, y1]?}``.

COCO: the keypoint-detection format (``images``, ``annotations`` with ``keypoints`` = [x, y, v] * K and
``bbox`` = [x, y, w, h], ``categories`` with ``keypoints`` names). One sample per annotation; ``v = 0`` is
unlabelled (NaN), ``v = 1`` (labelled, occluded) and ``v = 2`` count as labelled. The annotation's bbox
becomes the sample's crop box; annotations without labelled keypoints are skipped.

DeepLabCut's ``CollectedData_*.csv`` (three header rows ``scorer``, ``bodyparts``, ``coords``) is read by
:mod:`hyperland.data.dlc`; :func:`read_keypoints` tells it from this CSV by its first cell.

All coordinates are read as 0-based pixels with pixel centres at integers (hyperland's convention); shift
your file by -1 first if it is 1-based (MATLAB).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text
from ..errors import DatasetError
from .base import Sample
from .checks import Outside, finish_samples, parse_floats, relative_path, require_file, resolve_path

BOX_COLUMNS = ("box_x0", "box_y0", "box_x1", "box_y1")


def _csv_layout(header: list[str], source: Path) -> tuple[list[str], list[tuple[int, int, int | None]]]:
    if not header or header[0].strip() != "image":
        raise DatasetError(f"{source}:1: the header must start with 'image', got {header[:3]}. Expected "
                           "'image,NAME_x,NAME_y,...' (see hyperland.data.generic).")
    col = {h.strip(): i for i, h in enumerate(header)}
    names, layout = [], []
    for h in header[1:]:
        h = h.strip()
        if h.endswith("_x"):
            name = h[:-2]
            if f"{name}_y" not in col:
                raise DatasetError(f"{source}:1: column '{h}' has no matching '{name}_y'.")
            names.append(name)
            layout.append((col[h], col[f"{name}_y"], col.get(f"{name}_visible")))
        elif not (h.endswith(("_y", "_visible", "_confidence")) or h in BOX_COLUMNS):
            raise DatasetError(f"{source}:1: unexpected column '{h}'. Expected NAME_x, NAME_y, NAME_visible, "
                               f"NAME_confidence (ignored: `hyperland predict` writes it) or {', '.join(BOX_COLUMNS)}.")
    if not names:
        raise DatasetError(f"{source}:1: no landmark columns. Expected pairs NAME_x,NAME_y after 'image'.")
    return names, layout


def read_csv(path: str | Path, *, image_root: str | Path | None = None, outside: Outside = "warn",
             check_files: bool = True) -> list[Sample]:
    """Samples from a keypoint CSV (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Keypoint CSV not found: '{path}'.")
    base = Path(image_root) if image_root is not None else path.parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DatasetError(f"{path} is empty. Expected a header row and one row per image.")
    names, layout = _csv_layout(rows[0], path)
    col = {h.strip(): i for i, h in enumerate(rows[0])}
    has_box = all(c in col for c in BOX_COLUMNS)
    samples = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(rows[0]):
            raise DatasetError(f"{path}:{lineno}: {len(row)} fields but the header has {len(rows[0])}.")
        xs = parse_floats([row[i] for i, _, _ in layout], source=path, lineno=lineno, what="x coordinates")
        ys = parse_floats([row[j] for _, j, _ in layout], source=path, lineno=lineno, what="y coordinates")
        pts = np.stack([xs, ys], axis=1)
        vis = np.isfinite(pts).all(axis=1)
        for k, (_, _, v) in enumerate(layout):
            if v is not None and row[v].strip() not in ("", "1", "true", "True"):
                vis[k] = False
        box = None
        if has_box:
            b = parse_floats([row[col[c]] for c in BOX_COLUMNS], source=path, lineno=lineno, what="box")
            box = tuple(float(v) for v in b) if np.isfinite(b).all() else None
        img = resolve_path(row[0].strip(), base)
        if check_files:
            require_file(img, source=path, lineno=lineno)
        samples.append(Sample(img, pts, vis, {"line": lineno, "landmarks": names}, box))  # type: ignore[arg-type]
    return finish_samples(samples, source=path, outside=outside, check_files=check_files)


def write_csv(samples: Sequence[Sample], path: str | Path, *, names: Sequence[str] | None = None,
              relative_to: str | Path | None = None) -> Path:
    """Write samples in the CSV format :func:`read_csv` reads (paths relative to ``relative_to``, default the
    CSV's folder); missing points become empty cells."""
    path = Path(path)
    if not samples:
        raise DatasetError("write_csv got no samples.")
    k = samples[0].n_landmarks
    names = list(names or samples[0].meta.get("landmarks") or [f"p{i}" for i in range(k)])
    if len(names) != k:
        raise DatasetError(f"{len(names)} names for {k} landmarks. Expected one name per landmark.")
    base = Path(relative_to) if relative_to is not None else path.parent
    header = ["image"] + [f"{n}_{a}" for n in names for a in ("x", "y")]
    with_box = any(s.box is not None for s in samples)
    header += list(BOX_COLUMNS) if with_box else []
    f = io.StringIO(newline="")  # rows go to memory, then through the one atomic writer
    w = csv.writer(f)
    w.writerow(header)
    for s in samples:
        cells = ["" if not np.isfinite(v) else f"{v:.3f}" for v in s.points.reshape(-1)]
        box = [f"{v:.3f}" for v in s.box] if s.box is not None else ([""] * 4 if with_box else [])
        w.writerow([relative_path(s.image, base), *cells, *box])
    atomic_write_text(path, f.getvalue())
    return path


def _json_sample(rec: Any, i: int, *, base: Path, source: Path, check_files: bool, names: Any) -> Sample:
    if not isinstance(rec, dict) or "image" not in rec or "points" not in rec:
        raise DatasetError(f"{source}: record {i} must be an object with 'image' and 'points', got {rec!r:.80}.")
    try:
        raw = [[np.nan, np.nan] if p is None else p for p in rec["points"]]
        pts = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{source}: record {i}: points must be [[x, y] or null, ...] ({exc}).") from exc
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise DatasetError(f"{source}: record {i}: points have shape {pts.shape}. Expected (K, 2).")
    vis = np.isfinite(pts).all(axis=1)
    if "visible" in rec:
        v = np.asarray(rec["visible"], dtype=bool).reshape(-1)
        if v.shape != vis.shape:
            raise DatasetError(f"{source}: record {i}: {v.size} visibility flags for {vis.size} points.")
        vis &= v
    box = rec.get("box")
    if box is not None and len(box) != 4:
        raise DatasetError(f"{source}: record {i}: box {box} must be [x0, y0, x1, y1].")
    img = resolve_path(str(rec["image"]), base)
    if check_files:
        require_file(img, source=f"{source} record {i}")
    meta = {"record": i, **({"landmarks": list(names)} if names else {})}
    return Sample(img, pts, vis, meta, tuple(float(b) for b in box) if box is not None else None)  # type: ignore[arg-type]


def _coco(data: dict[str, Any], *, base: Path, source: Path, check_files: bool,
          category: int | None) -> list[Sample]:
    try:
        images = {im["id"]: im for im in data["images"]}
        cats = {c["id"]: c for c in data.get("categories", [])}
        anns = data["annotations"]
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{source}: not a COCO keypoint file (missing {exc}). Expected 'images', "
                           "'annotations' and 'categories'.") from exc
    samples = []
    for a in anns:
        if category is not None and a.get("category_id") != category:
            continue
        kp = np.asarray(a.get("keypoints", []), dtype=np.float32)
        if kp.size == 0 or kp.size % 3:
            raise DatasetError(f"{source}: annotation {a.get('id')}: {kp.size} keypoint values. Expected "
                               "[x, y, v] * K.")
        kp = kp.reshape(-1, 3)
        vis = kp[:, 2] > 0
        if not vis.any():
            continue
        if a.get("image_id") not in images:
            raise DatasetError(f"{source}: annotation {a.get('id')} refers to image_id {a.get('image_id')}, "
                               "which 'images' does not list.")
        im = images[a["image_id"]]
        img = resolve_path(im["file_name"], base)
        if check_files:
            require_file(img, source=f"{source} image_id {im['id']}")
        box = None
        if "bbox" in a and len(a["bbox"]) == 4:
            x, y, w, h = (float(v) for v in a["bbox"])
            box = (x, y, x + w, y + h)
        names = cats.get(a.get("category_id"), {}).get("keypoints")
        meta = {"annotation_id": a.get("id"), "image_id": im["id"], "category_id": a.get("category_id"),
                "occluded": (kp[:, 2] == 1).tolist(), **({"landmarks": names} if names else {})}
        samples.append(Sample(img, kp[:, :2], vis, meta, box))
    return samples


def read_json(path: str | Path, *, image_root: str | Path | None = None, outside: Outside = "warn",
              check_files: bool = True, category: int | None = None) -> list[Sample]:
    """Samples from a JSON list of records or a COCO keypoint file (detected from its keys)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Keypoint JSON not found: '{path}'.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}).") from exc
    base = Path(image_root) if image_root is not None else path.parent
    if isinstance(data, dict) and "annotations" in data:
        samples = _coco(data, base=base, source=path, check_files=check_files, category=category)
    else:
        names = data.get("landmarks") if isinstance(data, dict) else None
        records = data.get("samples") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise DatasetError(f"{path}: expected a list of records or {{'samples': [...]}}, got "
                               f"{type(records).__name__}.")
        samples = [_json_sample(r, i, base=base, source=path, check_files=check_files, names=names)
                   for i, r in enumerate(records)]
    return finish_samples(samples, source=path, outside=outside, check_files=check_files)


def read_keypoints(path: str | Path, **kwargs: Any) -> list[Sample]:
    """:func:`read_csv` for ``.csv`` files (:func:`hyperland.data.dlc.read_dlc` for a DeepLabCut
    ``CollectedData_*.csv``, told by its ``scorer`` header row), :func:`read_json` (records or COCO) for ``.json``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        from .dlc import is_dlc_csv, read_dlc

        return read_dlc(path, **kwargs) if Path(path).is_file() and is_dlc_csv(path) else read_csv(path, **kwargs)
    if suffix == ".json":
        return read_json(path, **kwargs)
    hint = " For DeepLabCut labels, pass the CollectedData_*.csv beside the .h5." if suffix == ".h5" else ""
    raise DatasetError(f"Cannot tell the format of '{path}'. Expected a .csv or .json file.{hint}")


__all__ = ["read_csv", "read_json", "read_keypoints", "write_csv"]
