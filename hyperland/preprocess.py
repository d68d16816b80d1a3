"""Preprocessing of a :class:`~hyperland.config.ModelConfig`: images → network input, and pixel ↔ input coordinates.

Pure functions of the config and tensors (after timm's ``data/config.py`` + ``transforms_factory.py``); the model's
:meth:`~hyperland.model.HyperlandModel.preprocess`, ``prepare``, ``to_input_coords`` and ``from_input_coords`` call
them. The network sees each whole image resized to ``resize`` × ``resize`` (antialiased bilinear), ``border``
pixels cropped from every side, then normalised by the config's mean/std.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .images import MIN_SIDE, Images, as_list, load_image

Size = tuple[int, int]
Stats = tuple[torch.Tensor, torch.Tensor]  # (1, 3, 1, 1) mean and std


def channel_stats(config: ModelConfig, *, device: torch.device | str | None = None) -> Stats:
    """The config's per-channel mean and std as (1, 3, 1, 1) float32 tensors."""
    return (torch.tensor(config.mean, device=device).view(1, 3, 1, 1),
            torch.tensor(config.std, device=device).view(1, 3, 1, 1))


def resize_crop(x: torch.Tensor, config: ModelConfig, *, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 3, h, w) in [0, 1] → resized to ``resize`` (antialiased bilinear) and border-cropped, (B, 3, S, S);
    moved to ``device`` first when given."""
    r, b = config.resize, config.border
    if device is not None:
        x = x.to(device)
    if torch.compiler.is_compiling() or tuple(x.shape[-2:]) != (r, r):  # traced: any size (identity at r × r)
        x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
    return x[..., b:r - b, b:r - b] if b else x


def normalize(x: torch.Tensor, stats: Stats) -> torch.Tensor:
    """(x - mean) / std with ``stats`` from :func:`channel_stats`."""
    mean, std = stats
    return (x - mean) / std


def denormalize(x: torch.Tensor, stats: Stats) -> torch.Tensor:
    """Inverse of :func:`normalize`: x * std + mean (e.g. to display a network input)."""
    mean, std = stats
    return x * std + mean


def prepare(x: torch.Tensor, config: ModelConfig, *, stats: Stats | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 3, h, w) RGB in [0, 1], one size → normalised (B, 3, S, S) network input (:func:`resize_crop`, then
    :func:`normalize`; ``stats`` default: :func:`channel_stats` of ``config``); pure tensor ops."""
    x = resize_crop(x, config, device=device)
    return normalize(x, stats if stats is not None else channel_stats(config, device=x.device))


def preprocess(images: Images, config: ModelConfig, *, stats: Stats | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Images → normalised (B, 3, S, S) input (:func:`prepare`) on ``device``.

    Each image is decoded to at most twice ``resize`` per side (:func:`~hyperland.images.load_image`); images of one
    size are resized in one batched call, mixed sizes one by one.
    """
    loaded = [load_image(im, max_side=2 * config.resize, min_side=MIN_SIDE) for im in as_list(images)]
    if len({tuple(t.shape) for t in loaded}) == 1:
        return prepare(torch.stack(loaded), config, stats=stats, device=device)
    return torch.cat([prepare(t.unsqueeze(0), config, stats=stats, device=device) for t in loaded], dim=0)


def to_input_coords(points: torch.Tensor, sizes: Sequence[Size], config: ModelConfig) -> torch.Tensor:
    """(B, K, 2) pixel (x, y) in each original image of ``sizes`` (H, W) → pixel coordinates of the network input."""
    r, b = config.resize, config.border
    hw = torch.tensor(sizes, dtype=points.dtype, device=points.device).view(-1, 1, 2)
    scale = r / hw.flip(-1)  # (x scale, y scale)
    return (points + 0.5) * scale - 0.5 - b


def from_input_coords(points: torch.Tensor, sizes: Sequence[Size] | torch.Tensor, config: ModelConfig
                      ) -> torch.Tensor:
    """Inverse of :func:`to_input_coords` (``sizes`` may also be a (B or 1, 2) tensor of (H, W))."""
    r, b = config.resize, config.border
    hw = torch.as_tensor(sizes, dtype=points.dtype, device=points.device).view(-1, 1, 2)
    scale = hw.flip(-1) / r
    return (points + b + 0.5) * scale - 0.5


__all__ = ["Size", "Stats", "channel_stats", "denormalize", "from_input_coords", "normalize", "prepare",
           "preprocess", "resize_crop", "to_input_coords"]
