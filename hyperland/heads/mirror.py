"""Mirrored copies of the labelled images: a left-right flip, with left and right landmarks swapped.

A bilaterally symmetric object (a face, an animal seen from above or from the front) mirrored is another view of
the same kind of object: a left eye becomes a right eye, a mouse facing left faces right. So each labelled
image can stand for two, with the orientations its mirror adds (a top-view animal whose labelled frames all face
one way). It is valid only for symmetric objects and only with the pairing of their landmarks known, so the
option says which landmarks swap (``LandmarkHead(mirror=)``):

* ``False`` — no mirrored copies;
* ``"auto"`` — the pairs the landmark names give (``left_eye`` ↔ ``right_eye``, ``leftear`` ↔ ``rightear``: a
  name with ``left`` in it whose ``right`` twin is also a name); names without ``left``/``right`` map to themselves.
  Without names, or when no name pairs, nothing is mirrored (whether the object is symmetric is unknown);
* a list of ``[i, j]`` index pairs — these swap, every other landmark maps to itself (``[]``: a symmetric
  object whose landmarks all lie on its axis).

Fits on more than ``mirror_max`` images add no copies (they double the descriptors held); a framed head's stages
(:mod:`.framing`) mirror only with given pairs, never by name; the copies' labels are calibrated for the
annotators' left/right bias (:func:`calibrate`). Geometry: pixel centres at integers, so column ``u`` of a ``W``
pixel wide image becomes ``W - 1 - u``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import InvalidOptionError
from ..geometry import normalised_to_pixels
from ..images import ImageLike, load_image, open_image
from .framing import median_extent

if TYPE_CHECKING:
    from ..model import HyperlandModel


def name_pairs(names: Sequence[str]) -> list[tuple[int, int]]:
    """The (i, j) pairs of names that differ by ``left`` ↔ ``right`` (case-insensitive), each pair once."""
    low = [n.lower() for n in names]
    index = {n: i for i, n in enumerate(low)}
    pairs = []
    for i, n in enumerate(low):
        if "left" in n:
            j = index.get(n.replace("left", "right"))
            if j is not None and j != i:
                pairs.append((i, j))
    return pairs


def resolve(option: Any, *, names: Sequence[str] | None, k: int) -> list[int] | None:
    """The landmark permutation of a mirrored image (``perm[j]``: the landmark of the original that landmark ``j``
    of the mirror is), or None when nothing is mirrored. InvalidOptionError for a pair index >= ``k``."""
    if option is False:
        return None
    if option == "auto":
        pairs = name_pairs(names) if names is not None else []
        if not pairs:
            return None
    else:
        pairs = [tuple(p) for p in option]
        bad = sorted({i for p in pairs for i in p if i >= k})
        if bad:
            raise InvalidOptionError(f"mirror={option!r}: landmark index(es) {bad} do not exist (the head has "
                                     f"n_landmarks={k}: indices 0..{k - 1}).")
    perm = list(range(k))
    for i, j in pairs:
        perm[i], perm[j] = j, i
    return perm


def mirror_images(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """(3, H, W) images flipped left to right."""
    return [torch.flip(x, dims=[-1]) for x in images]


def mirror_image(image: ImageLike) -> ImageLike:
    """One image of any kind :func:`hyperland.images.load_image` reads, flipped left to right at its own size: a
    file or PIL image as a PIL image (EXIF orientation applied first; the model's reader still shrinks a large one
    as it would the original), an array or tensor as a (3, H, W) tensor."""
    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            return load_image(image)  # its own clear error
        with open_image(Path(image)) as img:
            return ImageOps.mirror(ImageOps.exif_transpose(img))
    if isinstance(image, Image.Image):
        return ImageOps.mirror(ImageOps.exif_transpose(image))
    return torch.flip(load_image(image), dims=[-1])


def average_mirrored(points: torch.Tensor, conf: torch.Tensor | None, mirrored: torch.Tensor,
                     mirrored_conf: torch.Tensor | None, widths: torch.Tensor, perm: Sequence[int],
                     offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A head's (N, K, 2) pixel points (and (N, K) confidences) on images, averaged with its points on the same
    images mirrored (``mirrored``, ``mirrored_conf``), mapped back: landmarks permuted by ``perm``, x → W - 1 - x
    (``widths`` (N,)), less the (K, 2) ``offset`` that the mirrored copies' labels were calibrated by (a head
    fitted on them puts a mirrored image's points ``offset`` away from where the originals' labels would).
    Torch only: :meth:`LandmarkHead.predict` and the ONNX graph run it."""
    back = mirrored[:, list(perm)]
    back = torch.stack([widths.to(back.dtype)[:, None] - 1 - back[..., 0], back[..., 1]], dim=-1) - offset
    out = (points + back) / 2
    if conf is None or mirrored_conf is None:
        return out, None
    return out, (conf + mirrored_conf[:, list(perm)]) / 2


def mirror_points(points: np.ndarray, widths: Sequence[int], perm: Sequence[int]) -> np.ndarray:
    """(N, K, 2) pixel points of the mirrored images (widths ``W`` per image): x → W - 1 - x, landmarks permuted
    (NaN stays NaN)."""
    out = np.array(points, dtype=np.float32)[:, list(perm)]
    out[..., 0] = np.asarray(widths, np.float32)[:, None] - 1 - out[..., 0]
    return out


BIAS_LIMIT = 0.1  # an apparent labelling bias above this × the object's length is the head failing, not a bias


def calibrate(seen: np.ndarray, labels: np.ndarray, *, extent: float) -> np.ndarray:
    """The (K, 2) offset to add to the labels before mirroring them (:func:`mirror_points`), so that a mirrored
    image's labels sit where the originals teach a head to put them.

    Annotators place left and right points with a bias of their own (on AFLW the eyes' labels sit about 1.3 px of
    136 right of where a head trained on the originals finds them in the mirrored faces); mirrored as they are,
    the bias flips sign and the copies disagree with the originals by twice it, which at large training sets costs
    more than the copies bring (aflw-val, 500 faces: 5.84 NME without copies, 6.32 with). ``seen``: a head fitted
    on the originals, its points on the mirrored images mapped back (:func:`mirror_points` again); ``labels``: the
    originals' (N, K, 2) points. Per landmark, x only (a left-right flip keeps y): the mean of ``seen - labels``,
    shrunk towards 0 by its sampling noise (× max(0, 1 - se²/mean²), se its standard error), so that a few
    images' noisy errors do not move the labels; 0 with fewer than two images.

    A labelling bias is a small part of the object. Where any landmark's offset exceeds :data:`BIAS_LIMIT` ×
    ``extent`` (the labelled objects' median length), the head fitted on the originals could not read the mirrored
    images (an orientation or a place in the frame the labels never show: openfield's mouse, whose first 6
    labelled frames all face left, gave 21-40 px offsets in a 96 px crop), which says nothing about the labels:
    every offset is 0 then, and so it is without an extent (one landmark)."""
    d = np.asarray(seen, np.float64)[..., 0] - np.asarray(labels, np.float64)[..., 0]  # (N, K)
    out = np.zeros((d.shape[1], 2), np.float32)
    for j in range(d.shape[1]):
        v = d[np.isfinite(d[:, j]), j]
        if len(v) < 2 or not np.any(v):
            continue
        mean, se2 = v.mean(), v.var(ddof=1) / len(v)
        out[j, 0] = mean * max(0.0, 1.0 - se2 / mean**2) if mean != 0 else 0.0
    if not np.isfinite(extent) or np.abs(out).max() > BIAS_LIMIT * extent:
        return np.zeros_like(out)
    return out


def calibrate_reading(model: HyperlandModel, state: Any, fmaps: torch.Tensor, pts: np.ndarray,
                      sizes: Sequence[tuple[int, int]], perm: Sequence[int]) -> np.ndarray:
    """:func:`calibrate` for a fitted method ``state`` (its ``locate``) read on mirrored images' descriptor maps
    ``fmaps``, against the originals' (N, K, 2) pixel ``pts`` (image sizes (H, W) ``sizes``): the offset of
    :func:`average_mirrored` and of the mirrored copies' labels."""
    seen = normalised_to_pixels(model, state.locate(fmaps)[0], sizes).numpy()
    return calibrate(mirror_points(seen, [w for _, w in sizes], perm), pts, extent=median_extent(pts))


__all__ = [
    "BIAS_LIMIT",
    "average_mirrored",
    "calibrate",
    "calibrate_reading",
    "mirror_image",
    "mirror_images",
    "mirror_points",
    "name_pairs",
    "resolve",
]
