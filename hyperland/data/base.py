"""The dataset protocol: a sample is (image path, points (K, 2) float pixels, visible (K,) bool, meta).

Coordinates are 0-based with pixel centres at integers: the centre of the top-left pixel is (0, 0).
A sample may carry a crop ``box`` (x0, y0, x1, y1) in its image's pixels; :func:`load_sample` applies it
and moves the points into the crop. A test sample's box never derives from its own labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..errors import DatasetError, InvalidImageError

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Sample:
    image: Path
    points: np.ndarray  # (K, 2) float32, NaN where missing
    visible: np.ndarray  # (K,) bool
    meta: dict[str, Any] = field(default_factory=dict)
    box: Box | None = None

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float32)
        vis = np.asarray(self.visible, dtype=bool)
        if pts.ndim != 2 or pts.shape[1] != 2 or vis.shape != (pts.shape[0],):
            raise DatasetError(
                f"{self.image}: points {pts.shape} / visible {vis.shape} do not agree. Expected (K, 2) and (K,)."
            )
        pts = pts.copy()
        pts[~vis] = np.nan
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "visible", vis)

    @property
    def n_landmarks(self) -> int:
        return int(self.points.shape[0])


def _frame(width: int, height: int, box: Box | None, size: int | None
           ) -> tuple[tuple[int, int, int, int] | None, np.ndarray, np.ndarray]:
    """The crop rectangle of ``box`` in a ``width`` × ``height`` image (None: no crop) and the affine map
    (offset, scale) of :func:`crop_resize`, computed from the sizes alone."""
    offset = np.zeros(2, dtype=np.float32)
    scale = np.ones(2, dtype=np.float32)
    rect = None
    if box is not None:
        x0, y0, x1, y1 = box
        # int(round(v)): with numpy < 2, round() of a numpy float is a numpy float
        ix0, iy0 = int(round(x0)), int(round(y0))  # noqa: RUF046
        width, height = max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))  # noqa: RUF046
        rect = (ix0, iy0, ix0 + width, iy0 + height)
        offset = np.array([ix0, iy0], dtype=np.float32)
    if size is not None and (width, height) != (size, size):
        scale = np.array([size / width, size / height], dtype=np.float32)
    return rect, offset, scale


def crop_resize(image: Image.Image, box: Box | None, size: int | None) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Crop ``box`` (zero padding outside the image) and optionally resize to ``size`` × ``size``.

    Returns the image and the affine map of pixel coordinates into it, ``new = (old - offset) * scale``
    as (offset (2,), scale (2,)) with the pixel-centre convention of this module. The one crop rule shared
    by evaluation (:func:`load_sample`) and the trainer's views.
    """
    rect, offset, scale = _frame(image.width, image.height, box, size)
    img = image.crop(rect) if rect is not None else image
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return img, offset, scale


def _opened(path: Path, read: Callable[[Image.Image], Any]) -> Any:
    """``read`` of the image at ``path`` with EXIF orientation applied (InvalidImageError when unreadable)."""
    from ..images import open_image  # here: the CLI's --help reads the dataset registry without torch

    try:
        with open_image(Path(path)) as im:
            return read(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageError(f"Cannot read '{path}' ({exc}).") from exc


def open_rgb(path: Path) -> Image.Image:
    """Decode ``path`` at full resolution, EXIF orientation applied, RGB (InvalidImageError when unreadable)."""
    return _opened(path, lambda im: ImageOps.exif_transpose(im).convert("RGB"))


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header (no decoding): orientations 5-8 swap them."""
    w, h = im.size
    return (h, w) if im.getexif().get(0x0112) in (5, 6, 7, 8) else (w, h)


def _into_frame(points: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    pts = points.copy() - offset
    return (pts + 0.5) * scale - 0.5 if not np.all(scale == 1) else pts


def load_sample(sample: Sample, *, size: int | None = None) -> tuple[Image.Image, np.ndarray]:
    """Open the image (EXIF applied, RGB), crop ``sample.box`` (zero padding outside the image) and optionally
    resize the crop to ``size`` × ``size``; return it with the points in its pixel frame."""
    img, offset, scale = crop_resize(open_rgb(sample.image), sample.box, size)
    return img, _into_frame(sample.points, offset, scale)


def sample_points(samples: Sequence[Sample], *, size: int | None = None) -> np.ndarray:
    """(N, K, 2) points as :func:`load_samples` returns them, without decoding any image: a sample with a
    ``box`` needs no file at all, one without reads only its image's header (size and EXIF orientation)."""
    landmark_count(samples)
    out = []
    for s in samples:
        w, h = (0, 0) if s.box is not None else _opened(s.image, _oriented_size)
        _, offset, scale = _frame(w, h, s.box, size)
        out.append(_into_frame(s.points, offset, scale))
    return np.stack(out)


def landmark_count(samples: Sequence[Sample]) -> int:
    """The one landmark count K of ``samples`` (DatasetError when empty or mixed)."""
    if not samples:
        raise DatasetError("No samples to load: the split is empty.")
    ks = {s.n_landmarks for s in samples}
    if len(ks) != 1:
        raise DatasetError(f"Samples have different landmark counts {sorted(ks)}. Expected one K for all.")
    return ks.pop()


def load_samples(samples: Sequence[Sample], *, size: int | None = None) -> tuple[list[Image.Image], np.ndarray]:
    """Images (cropped, optionally resized) and stacked points (N, K, 2) for a list of samples."""
    landmark_count(samples)
    imgs, pts = [], []
    for s in samples:
        img, p = load_sample(s, size=size)
        imgs.append(img)
        pts.append(p)
    return imgs, np.stack(pts)


def landmark_names(samples: Sequence[Sample]) -> list[str] | None:
    """The landmark names the samples' file gives (a keypoint CSV's ``NAME_x`` columns, the names of a JSON or
    COCO file, MTFL's five), or None when it gives none or the samples disagree."""
    named = {tuple(s.meta.get("landmarks") or ()) for s in samples}
    names = named.pop() if len(named) == 1 else ()
    return [str(n) for n in names] if names and len(names) == samples[0].n_landmarks else None


def centroid_box(points: np.ndarray, *, scale: float = 5.6, center: tuple[float, float] = (0.49, 0.49),
                 jitter: float = 0.0, rng: np.random.Generator | None = None) -> Box:
    """A square around labelled points: side ``scale`` × mean point-to-centroid distance, the centroid at
    fraction ``center`` of the square (AFLW test framing). Only for training samples."""
    p = points[np.isfinite(points).all(axis=1)]
    if len(p) < 2:
        raise DatasetError("centroid_box needs at least two labelled points.")
    c = p.mean(axis=0)
    side = float(scale * np.linalg.norm(p - c, axis=1).mean())
    if jitter and rng is not None:
        side *= float(np.exp(rng.uniform(-jitter, jitter)))
        c = c + rng.uniform(-jitter, jitter, size=2) * side
    x0, y0 = c[0] - center[0] * side, c[1] - center[1] * side
    return (float(x0), float(y0), float(x0 + side), float(y0 + side))


__all__ = ["Box", "Sample", "centroid_box", "crop_resize", "landmark_count", "landmark_names", "load_sample",
           "load_samples", "open_rgb", "sample_points"]
