"""Anything image-like → validated float RGB tensors (3, H, W) in [0, 1].

Accepted: file paths (str / os.PathLike), PIL images of any mode (EXIF orientation applied), numpy arrays
(HW or HWC with 1, 3 or 4 channels; uint8, uint16 or float in [0, 1]), torch tensors (CHW or BCHW with 1 or
3 channels; uint8 or float in [0, 1]) and lists/tuples mixing these, of any sizes. A folder or a glob pattern
(``"faces/"``, ``"faces/*.jpg"``) stands for its image files in sorted order, the same way in Python and on the
command line (:func:`expand_paths`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImageError

ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
Images = ImageLike | Sequence[ImageLike]

_INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.int32): 65535.0}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MIN_SIDE = 8  # model.preprocess refuses smaller images: they hold no landmark information
MAX_PIXELS_ENV = "HYPERLAND_MAX_IMAGE_PIXELS"  # overrides PIL's decompression-bomb limit (0: no limit)
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _describe(x: Any) -> str:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


def _shrink(img: Image.Image, max_side: int | None) -> Image.Image:
    """Each side above ``max_side`` resized down to ``max_side`` (antialiased), EXIF orientation applied."""
    orient = img.getexif().get(0x0112, 1)
    if max_side is not None and (img.width > max_side or img.height > max_side) and img.mode not in _WIDE_MODES:
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGBA" if img.mode == "P" and "transparency" in img.info else "RGB")
        img = img.resize((min(img.width, max_side), min(img.height, max_side)), Image.Resampling.BILINEAR,
                         reducing_gap=2.0)
    return img.transpose(_TRANSPOSE[orient]) if orient in _TRANSPOSE else img


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _from_pil(img: Image.Image, *, source: str, max_side: int | None = None) -> torch.Tensor:
    if img.width == 0 or img.height == 0:
        raise InvalidImageError(f"{source}: image has zero size {img.size}. Expected at least 1x1 pixels.")
    try:
        img = _shrink(img, max_side)
        if img.mode in _WIDE_MODES:
            arr = np.asarray(img)
            scale = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
            if img.mode == "F":
                scale = 1.0
            return _from_numpy(arr.astype(np.float32) / scale, source=source)
        if img.mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
        if img.mode != "RGB":
            img = img.convert("RGB")
        arr = np.asarray(img)
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data surfaces on decode
        raise InvalidImageError(f"{source}: cannot decode image ({exc}). Re-export or replace the file.") from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def open_image(p: Path) -> Image.Image:
    """Image.open with the decompression-bomb limit of HYPERLAND_MAX_IMAGE_PIXELS, as an InvalidImageError."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if raw:
        if not raw.isdigit():
            raise InvalidImageError(f"{MAX_PIXELS_ENV}={raw!r}: expected a whole number of pixels (0: no limit).")
        Image.MAX_IMAGE_PIXELS = int(raw) or None
    try:
        return Image.open(p)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(
            f"'{p}' is refused as a possible decompression bomb: {exc} If you trust the file, raise the limit: set "
            f"the environment variable {MAX_PIXELS_ENV} to its pixel count (0 for no limit), or "
            "PIL.Image.MAX_IMAGE_PIXELS in Python.") from exc


def _from_path(path: str | os.PathLike, *, max_side: int | None = None) -> torch.Tensor:
    p = Path(path)
    if not p.is_file():
        raise InvalidImageError(f"Image file not found: '{p}'. Check the path (relative paths start at {Path.cwd()}).")
    if p.stat().st_size == 0:
        raise InvalidImageError(f"Image file is empty (0 bytes): '{p}'.")
    try:
        with open_image(p) as img:
            if max_side is not None and img.format == "JPEG":
                img.draft(img.mode, (max_side, max_side))  # DCT-domain downscale: never decodes the full size
            img.load()
            return _from_pil(img, source=str(p), max_side=max_side)
    except UnidentifiedImageError as exc:
        raise InvalidImageError(f"'{p}' is not an image PIL can read ({exc}).") from exc
    except OSError as exc:
        raise InvalidImageError(f"'{p}': cannot decode image ({exc}). The file may be truncated or corrupt.") from exc


def _check_values(t: torch.Tensor, *, source: str) -> torch.Tensor:
    if t.numel() == 0:
        raise InvalidImageError(f"{source}: image has zero size {tuple(t.shape)}. Expected at least 1x1 pixels.")
    if not torch.isfinite(t).all():
        raise InvalidImageError(f"{source}: image contains NaN or inf pixels. Expected finite values in [0, 1].")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise InvalidImageError(
            f"{source}: float pixel values span [{lo:g}, {hi:g}]. Expected [0, 1]: divide 8-bit data by 255 "
            "or pass a uint8 array."
        )
    return t.clamp_(0.0, 1.0)


def _channels_to_rgb(t: torch.Tensor, *, source: str) -> torch.Tensor:
    c = t.shape[0]
    if c == 1:
        return t.expand(3, -1, -1).contiguous()
    if c == 3:
        return t
    if c == 4:
        return t[:3].contiguous()
    raise InvalidImageError(f"{source}: got {c} channels. Expected 1 (grey), 3 (RGB) or 4 (RGBA).")


def _from_numpy(arr: np.ndarray, *, source: str = "numpy array") -> torch.Tensor:
    desc = f"{source} ({_describe(arr)})"
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InvalidImageError(f"{desc}: expected an HW or HWC array.")
    if arr.dtype.kind in "ui":
        if arr.dtype not in _INT_MAX:
            raise InvalidImageError(f"{desc}: unsupported integer dtype. Use uint8, uint16 or float in [0, 1].")
        t = torch.from_numpy(arr.astype(np.float32) / _INT_MAX[arr.dtype])
    elif arr.dtype.kind == "f":
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    elif arr.dtype.kind == "b":
        t = torch.from_numpy(arr.astype(np.float32))
    else:
        raise InvalidImageError(f"{desc}: unsupported dtype. Use uint8, uint16 or float in [0, 1].")
    if arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        raise InvalidImageError(
            f"{desc}: got {arr.shape[-1]} channels. numpy images are HWC; this looks channels-first: "
            "pass arr.transpose(1, 2, 0) or a torch tensor."
        )
    t = t.permute(2, 0, 1)
    return _channels_to_rgb(_check_values(t.clone(), source=desc), source=desc)


def _from_tensor_chw(t: torch.Tensor, *, source: str) -> torch.Tensor:
    desc = f"{source} ({_describe(t)})"
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif t.is_floating_point():
        t = t.float()
    else:
        raise InvalidImageError(f"{desc}: unsupported dtype. Use uint8 or float in [0, 1].")
    if t.shape[0] not in (1, 3, 4):
        raise InvalidImageError(
            f"{desc}: expected channels first (C, H, W) with C in (1, 3, 4). For HWC data use "
            "tensor.permute(2, 0, 1)."
        )
    return _channels_to_rgb(_check_values(t.clone(), source=desc), source=desc)


def load_image(image: ImageLike, *, max_side: int | None = None, min_side: int = 1) -> torch.Tensor:
    """Read one image into a float32 RGB tensor (3, H, W) with values in [0, 1].

    ``max_side``: files and PIL images with a side longer than this are decoded straight to at most ``max_side``
    on that side (JPEG DCT draft, then an antialiased resize; each side on its own, so the aspect ratio may
    change), so memory stays bounded whatever the photo size; :meth:`HyperlandModel.preprocess` passes twice its
    resize. Arrays and tensors are already in memory and are not resized. ``min_side``: images with a shorter
    side are refused (:meth:`HyperlandModel.preprocess` passes :data:`MIN_SIDE`).
    """
    t = _load(image, max_side=max_side)
    if min(t.shape[-2:]) < min_side:
        where = f"'{image}'" if isinstance(image, (str, os.PathLike)) else _describe(image)
        raise InvalidImageError(f"{where}: image of {t.shape[-1]}x{t.shape[-2]} pixels. Expected at least "
                                f"{min_side}x{min_side}: smaller images hold no landmark information.")
    return t


def _load(image: ImageLike, *, max_side: int | None) -> torch.Tensor:
    if isinstance(image, (str, os.PathLike)):
        return _from_path(image, max_side=max_side)
    if isinstance(image, Image.Image):
        return _from_pil(image, source="PIL image", max_side=max_side)
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3:
            raise InvalidImageError(f"Tensor of shape {tuple(image.shape)}: expected one image (C, H, W).")
        return _from_tensor_chw(image, source="tensor")
    raise InvalidImageError(
        f"Cannot read an image from a {type(image).__name__}. Expected a path, a PIL image, a numpy array "
        "or a torch tensor."
    )


def _expands(item: Any) -> bool:
    """True for a path that stands for several images: an existing folder, or a glob pattern (``*``, ``?``,
    ``[``) that is not itself an existing file."""
    if not isinstance(item, (str, os.PathLike)):
        return False
    text = os.fspath(item)
    return os.path.isdir(text) or (any(c in text for c in "*?[") and not os.path.exists(text))


def _images_in(item: str | os.PathLike) -> list[str]:
    """The image files a folder (not recursive) or a glob pattern (``**`` recurses) stands for, sorted."""
    text = os.fspath(item)
    folder = os.path.isdir(text)
    found = (os.path.join(text, name) for name in os.listdir(text)) if folder else glob.iglob(text, recursive=True)
    files = sorted(f for f in found if Path(f).suffix.lower() in IMAGE_SUFFIXES and os.path.isfile(f))
    if not files:
        what = f"Folder '{text}' holds no image files" if folder else f"Pattern '{text}' matches no image files"
        raise InvalidImageError(f"{what} (relative paths start at {Path.cwd()}). Expected files ending in "
                                f"{', '.join(IMAGE_SUFFIXES)}; check the path, or list the image files themselves.")
    return files


def expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Image paths with every folder replaced by its image files (sorted by name, not recursive) and every glob
    pattern by the image files it matches (sorted; ``**`` recurses); other paths are kept in place, unchecked.
    A folder without images or a pattern without matches raises :class:`InvalidImageError`. Every command that
    takes images and every library call that takes paths (``extract``, ``sample``, ``LandmarkHead.fit`` /
    ``predict``) expands them this way."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise InvalidImageError("Got an empty list of images. Pass at least one image file, folder or pattern.")
    out: list[str] = []
    for item in items:
        out.extend(_images_in(item) if _expands(item) else [os.fspath(item)])
    return out


def is_single(images: Images) -> bool:
    """True when ``images`` holds one image (as opposed to a list, a BCHW batch, a folder or a glob pattern)."""
    if isinstance(images, torch.Tensor):
        return images.ndim == 3
    return not isinstance(images, (list, tuple)) and not _expands(images)


def as_list(images: Images) -> list[ImageLike]:
    """Split ``images`` into a list of single images without decoding them (folders and glob patterns become
    their image files: :func:`expand_paths`)."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 4:
            return list(images.unbind(0))
        if images.ndim == 3:
            return [images]
        raise InvalidImageError(
            f"Tensor of shape {tuple(images.shape)}: expected (C, H, W) or (B, C, H, W)."
        )
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InvalidImageError("Got an empty list of images. Pass at least one image.")
        return [x for im in images for x in (_images_in(im) if _expands(im) else [im])]
    if isinstance(images, (str, os.PathLike)) and _expands(images):
        return [*_images_in(images)]
    return [images]  # type: ignore[list-item]  # not a sequence here


def image_size(image: ImageLike) -> tuple[int, int]:
    """(H, W) of one image, reading only the header of files."""
    if isinstance(image, (str, os.PathLike)):
        try:
            with open_image(Path(image)) as img:
                w, h = img.size
                orient = img.getexif().get(0x0112, 1)
        except (OSError, UnidentifiedImageError) as exc:
            raise InvalidImageError(f"'{image}': cannot read image header ({exc}).") from exc
        return (w, h) if orient in (5, 6, 7, 8) else (h, w)
    if isinstance(image, Image.Image):
        w, h = ImageOps.exif_transpose(image).size
        return h, w
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    if isinstance(image, torch.Tensor):
        return int(image.shape[-2]), int(image.shape[-1])
    raise InvalidImageError(f"Cannot read an image from a {type(image).__name__}.")


__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS_ENV", "MIN_SIDE", "ImageLike", "Images", "as_list", "expand_paths",
           "image_size", "is_single", "load_image", "open_image"]
