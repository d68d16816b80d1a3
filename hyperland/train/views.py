"""Two augmented views per image, in two stages.

Worker side (DataLoader processes, uint8, CPU): decode, optional box crop, resize to ``resize`` ×
``resize`` and JPEG noise — each view re-encoded at a quality ~ U(jpeg_quality) with probability
``jpeg_p``. JPEG is a CPU codec, so it stays with the decode; the batch that leaves the worker is a
compact uint8 tensor (B, 2, 3, R, R).

Device side (:class:`ViewAugment`, per batch, on the training device through :mod:`hyperland.augment`):
RandomResizedCrop (scale 0.2–1) back to R, optional TPS / rotation / scale warp, colour jitter, PCA
lighting, optional blur, the border crop (136 → 96) and mean/std normalisation.

Randomness is derived, never carried: a worker seeds each sample from (seed, epoch, index) and the device
augmentation from (seed, step, rank), so a resumed run draws the same views whichever worker loads a
sample and wherever the run stopped.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler

from .. import augment
from ..data.base import crop_resize, open_rgb
from ..errors import DatasetError
from .config import TrainConfig
from .data import Item

logger = logging.getLogger(__name__)
MAX_SUBSTITUTES = 16


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence mixing), stable across processes and runs."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint32)
               .astype(np.uint64).dot(np.array([1 << 32, 1], dtype=np.uint64)) >> np.uint64(1))


def open_item(item: Item, size: int) -> Image.Image:
    """The same decode, crop and resize as evaluation (:func:`hyperland.data.base.load_sample`).

    No ``Image.draft``: a draft decode shrinks large JPEGs by 1/2–1/8 while the box stays in full-resolution
    pixels (the bug that fed mostly black views of every 400 px face to the first mtfl-r18).
    """
    img, _, _ = crop_resize(open_rgb(item.path), item.box, size)
    return img


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


class TwoViewDataset(Dataset):
    """Indexed by ``(epoch, index)`` (see :class:`ResumableSampler`); returns ((2, 3, R, R) uint8, substitutions).

    An unreadable image is skipped: the next index is loaded in its place, the substitution is counted in the
    second return value and logged once per file and worker.
    """

    def __init__(self, items: Sequence[Item], *, resize: int, jpeg_quality: tuple[int, int] = (30, 95),
                 jpeg_p: float = 1.0, seed: int = 0) -> None:
        if not items:
            raise DatasetError("TwoViewDataset got no images.")
        self.items = list(items)
        self.resize = int(resize)
        self.jpeg_quality = (int(jpeg_quality[0]), int(jpeg_quality[1]))
        self.jpeg_p = float(jpeg_p)
        self.seed = int(seed)
        self._warned: set[str] = set()

    @classmethod
    def from_config(cls, items: Sequence[Item], config: TrainConfig) -> TwoViewDataset:
        return cls(items, resize=config.resize, jpeg_quality=config.jpeg_quality, jpeg_p=config.jpeg_p,
                   seed=config.seed)

    def __len__(self) -> int:
        return len(self.items)

    def _views(self, img: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        views = []
        for _ in range(2):
            v = img
            if self.jpeg_p > 0 and rng.random() < self.jpeg_p:
                v = _jpeg(img, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
            views.append(np.asarray(v, dtype=np.uint8))
        # HWC → CHW in numpy: a strided torch copy of uint8 is ~20x slower on a busy CPU
        return torch.from_numpy(np.ascontiguousarray(np.stack(views).transpose(0, 3, 1, 2)))

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[torch.Tensor, int]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng(derived_seed(self.seed, epoch, index))
        for attempt in range(MAX_SUBSTITUTES):
            item = self.items[(index + attempt) % len(self.items)]
            try:
                img = open_item(item, self.resize)
            except (OSError, ValueError, SyntaxError) as exc:
                if str(item.path) not in self._warned:
                    self._warned.add(str(item.path))
                    logger.warning("Skipping unreadable image '%s' (%s)", item.path, exc)
                continue
            return self._views(img, rng), attempt
        raise DatasetError(f"{MAX_SUBSTITUTES} consecutive images from index {index} could not be read "
                           f"(last: '{item.path}'). Check the data folder.")


class ResumableSampler(DistributedSampler):
    """torch's DistributedSampler (same shuffling and rank split) that yields ``(epoch, index)`` and can start
    mid-epoch: ``set_epoch(epoch, skip_batches=k)`` drops the first k batches of this rank."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, batch_size: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = int(batch_size)
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:  # type: ignore[override]
        super().set_epoch(epoch)
        self.skip = int(skip_batches) * self.batch_size

    @property
    def batches_per_epoch(self) -> int:
        return super().__len__() // self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[: self.batches_per_epoch * self.batch_size]
        return iter([(self.epoch, i) for i in indices[self.skip:]])

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch * self.batch_size - self.skip)


class ViewAugment:
    """The device half of the face recipe: uint8 (B, 3, R, R) → normalised float (B, 3, S, S)."""

    def __init__(self, config: TrainConfig) -> None:
        self.c = config
        self.geometric = (config.tps > 0 or config.rotation > 0 or tuple(config.scale) != (1.0, 1.0)
                          or config.translate > 0)
        self._cache: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, batch: torch.Tensor, *, generator: torch.Generator | None = None, grid: int | None = None
                 ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Augmented, normalised views; with ``grid`` also the source location of every cell of a ``grid`` ×
        ``grid`` tiling of each view, (B, grid, grid, 2) in the normalised coordinates of the uint8 input."""
        c = self.c
        r, b = c.resize, c.border
        x = batch.float().div_(255)
        x, crop = augment.random_resized_crop(x, size=r, scale=c.crop_scale, ratio=c.crop_ratio,
                                              generator=generator, return_warp=True)
        w = None
        if self.geometric:
            w = augment.random_warp(x.shape[0], size=(r, r), tps=c.tps, rotation=c.rotation, scale=c.scale,
                                    translate=c.translate, generator=generator, device=x.device)
            x = w.images(x)
        if c.color_jitter > 0 or c.hue > 0:
            x = augment.color_jitter(x, brightness=c.color_jitter, contrast=c.color_jitter,
                                     saturation=c.color_jitter, hue=c.hue, generator=generator)
        if c.pca_lighting > 0:
            x = augment.pca_lighting(x, std=c.pca_lighting, generator=generator)
        if c.blur_p > 0:
            x = augment.gaussian_blur(x, p=c.blur_p, generator=generator)
        if b:
            x = x[..., b:r - b, b:r - b]
        mean, std = self._stats(x)
        x = (x - mean) / std
        if grid is None:
            return x
        s = r - 2 * b
        cells = augment.pixel_grid((s, s), (grid, grid), offset=b, frame=r, device=x.device)
        src = cells.reshape(1, -1, 2).expand(x.shape[0], -1, -1)
        if w is not None:
            src = w.source(src)
        src = crop.source(src)
        return x, src.reshape(x.shape[0], grid, grid, 2)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mean/std on the batch's device, made once per device (no host-to-device copy per step)."""
        key = (str(x.device), x.dtype)
        if key not in self._cache:
            self._cache[key] = (torch.tensor(self.c.mean, dtype=x.dtype).view(1, 3, 1, 1).to(x.device),
                                torch.tensor(self.c.std, dtype=x.dtype).view(1, 3, 1, 1).to(x.device))
        return self._cache[key]


__all__ = ["ResumableSampler", "TwoViewDataset", "ViewAugment", "derived_seed", "open_item"]
