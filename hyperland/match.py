"""Keypoint transfer between images by hypercolumn correspondence.

Each source point's descriptor (``model.sample``) is correlated (cosine similarity) with every cell of each
destination hypercolumn; the transferred point is the soft-argmax of ``scale`` × similarity over the grid,
restricted to a window around the best cell (argmax + local soft-argmax refinement), so two similar
parts far apart do not average into a point between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import InvalidKeypointsError
from .geometry import correlation_soft_argmax, normalised_to_pixels
from .images import ImageLike, Images, as_list, image_size, is_single

if TYPE_CHECKING:
    from .model import HyperlandModel


@torch.no_grad()
def match(
    model: HyperlandModel,
    src_image: ImageLike,
    src_points: Any,
    dst_images: Images,
    *,
    layers: Sequence[int] | None = None,
    scale: float = 100.0,
    window: int | None = 3,
    batch_size: int = 32,
    progress: bool | None = None,
) -> np.ndarray:
    """Transfer (K, 2) pixel points of ``src_image`` to each destination image: (M, K, 2), or (K, 2) for one.

    NaN source points stay NaN in the output.
    """
    pts = np.asarray(src_points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise InvalidKeypointsError(f"src_points has shape {pts.shape}. Expected (K, 2) pixel (x, y) with K >= 1.")
    missing = ~np.isfinite(pts).all(axis=1)
    if missing.all():
        raise InvalidKeypointsError("Every source point is NaN. Give at least one finite (x, y).")
    desc = model.sample(src_image, np.nan_to_num(pts), layers=layers)  # (K, C)
    single = is_single(dst_images)
    items = as_list(dst_images)
    out = []
    for maps in model.iter_extract(items, layers=layers, batch_size=batch_size, progress=progress):
        out.append(correlation_soft_argmax(desc, maps, scale=scale, window=window))
    xy = torch.cat(out)
    res = normalised_to_pixels(model, xy, [image_size(im) for im in items]).cpu().numpy()
    res[:, missing] = np.nan
    return res[0] if single else res


__all__ = ["match"]
