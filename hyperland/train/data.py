"""Training image lists: a folder of images, a text file listing images, an MTFL root (hyperland.data), or a
video, whose ``video_frames`` evenly spaced frames are decoded once (PyAV) into ``RUN_DIR/frames`` as PNG files.

MTFL follows the data protocol of DESIGN.md: only images of ``training.txt`` without its last 2,000 lines
(the ``lfwnet`` test) are used, never AFLW; the last ``val_count`` of those (auto: 500) form the validation
hold-out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..data import Sample, centroid_box, read_mtfl
from ..data.base import Box
from ..data.mtfl import LFWNET_TEST
from ..errors import DatasetError
from ..images import IMAGE_SUFFIXES as IMAGE_EXTENSIONS  # one list of image file suffixes for every reader
from ..video import is_video
from .config import TrainConfig

VAL_AUTO_MAX, VAL_AUTO_FRACTION = 500, 0.1  # val_count=None: min(500, 10% of the images)


@dataclass(frozen=True)
class Item:
    path: Path
    box: Box | None = None


@dataclass(frozen=True)
class DataSplit:
    train: list[Item]
    val: list[Item]
    val_samples: list[Sample] = field(default_factory=list)  # labelled validation faces (MTFL) for the probe
    description: str = ""


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "mtfl" if (path / "training.txt").is_file() else "folder"
    if path.is_file():
        return "video" if is_video(path) else "list"
    raise DatasetError(f"Training data '{path}' does not exist. Pass a folder of images, a text file listing "
                       "image paths, an MTFL root (the folder with training.txt) or a video file.")


def _video(path: Path, config: TrainConfig, run_dir: Path | None) -> list[Item]:
    """``config.video_frames`` frames spread evenly over the video, as PNG files in ``run_dir/frames`` (written
    once, atomically, so a resumed run or another process reads the same frames)."""
    from .._io import atomic_write_bytes
    from ..video import iter_frames, video_info

    if run_dir is None:
        raise DatasetError(f"'{path}' is a video: its frames are decoded into the run directory. Pass --out.")
    info = video_info(path)
    step = max(1, (info.n_frames or config.video_frames) // config.video_frames)
    folder = run_dir / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for batch in iter_frames(path, step=step, stop=step * config.video_frames):
        for index, frame in zip(batch.indices, batch.frames):
            out = folder / f"frame_{index:07d}.png"
            if not out.is_file():
                buf = io.BytesIO()
                Image.fromarray(frame).save(buf, format="PNG")
                atomic_write_bytes(out, buf.getvalue())
            items.append(Item(out))
    return items


def _folder(path: Path) -> list[Item]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    return [Item(p) for p in files]


def _listing(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line.split()[0].replace("\\", "/"))
            items.append(Item(p if p.is_absolute() else path.parent / p))
    return items


def _mtfl(root: Path, config: TrainConfig) -> tuple[list[Item], list[Sample]]:
    samples = read_mtfl(root, "training", check_files=False)[:-LFWNET_TEST]
    if config.data_crop == "centroid":
        samples = [Sample(s.image, s.points, s.visible, s.meta, centroid_box(s.points)) for s in samples]
    return [Item(s.image, s.box) for s in samples], samples


def val_count(config: TrainConfig, n_images: int) -> int:
    """Images held out for validation: ``config.val_count``, or when None, min(500, 10% of the images): the
    same 500 of MTFL's 8,000 protocol images as before, 20 of a 200-image folder for adaptation."""
    if config.val_count is not None:
        return config.val_count
    return min(VAL_AUTO_MAX, int(VAL_AUTO_FRACTION * n_images))


def resolve_data(config: TrainConfig, *, run_dir: Path | None = None) -> DataSplit:
    """The training and validation items for ``config.data``; raises DatasetError when nothing is found.
    ``run_dir``: where a video's frames are decoded to."""
    if not config.data:
        raise DatasetError("No training data given. Pass --data (a folder of images, a list file, an MTFL root or "
                           "a video).")
    path = Path(config.data).expanduser()
    fmt = detect_format(path) if config.data_format == "auto" else config.data_format
    samples: list[Sample] = []
    if fmt == "mtfl":
        items, samples = _mtfl(path, config)
    elif fmt == "video":
        items = _video(path, config, run_dir)
    elif fmt == "folder":
        if not path.is_dir():
            raise DatasetError(f"data_format=folder but '{path}' is not a folder.")
        items = _folder(path)
    else:
        if not path.is_file():
            raise DatasetError(f"data_format=list but '{path}' is not a file.")
        items = _listing(path)
    if config.data_crop == "celeba":
        from ..data.celeba_mafl import ALIGNED_BOX

        items = [Item(it.path, ALIGNED_BOX) for it in items]
    elif config.data_crop == "centroid" and fmt != "mtfl":
        raise DatasetError(f"data_crop=centroid needs labelled points (an MTFL root); '{path}' is {fmt} data. "
                           "Use --data-crop none or celeba.")
    if not items:
        raise DatasetError(f"No images found in '{path}' (format {fmt}; extensions {', '.join(IMAGE_EXTENSIONS)}). "
                           "Check the path, or pass a text file listing the images.")
    n_val = val_count(config, len(items))
    if n_val >= len(items):
        raise DatasetError(f"val_count={n_val} leaves no training images out of {len(items)} in '{path}'. "
                           "Lower --val-count.")
    train, val = (items[:-n_val], items[-n_val:]) if n_val else (items, [])
    val_samples = samples[-n_val:] if (samples and n_val) else []
    if fmt == "mtfl":
        desc = (f"MTFL training.txt without its last {LFWNET_TEST} lines (the lfwnet test), no AFLW image: "
                f"{len(train)} train, {len(val)} val, crop {config.data_crop}")
    else:  # a name, never a machine path: the description travels into exported model cards
        desc = f"{fmt} '{path.name}' ({len(train)} train, {len(val)} val, crop {config.data_crop})"
    return DataSplit(train, val, val_samples, desc)


__all__ = ["IMAGE_EXTENSIONS", "DataSplit", "Item", "detect_format", "resolve_data", "val_count"]
