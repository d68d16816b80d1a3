"""The descriptor PCA of a trained model (:meth:`hyperland.HyperlandModel.with_pca`), fitted on its own training images:
what ``hyperland-train export`` ships and what the training probe's head reads, so that both see the model as a
user loads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .data import Item
from .views import open_item

if TYPE_CHECKING:
    from ..model import HyperlandModel

PCA_IMAGES = 512  # training images the descriptor PCA is fitted on (export --pca-images)


def training_pca(model: HyperlandModel, items: Sequence[Item], *, n_images: int = PCA_IMAGES, data: str = "",
                 progress: bool | None = None) -> HyperlandModel:
    """``model`` with its descriptor PCA (:meth:`~hyperland.HyperlandModel.with_pca`, 128 components of its layers)
    fitted on ``n_images`` of its training ``items``, drawn with seed 0 and read as the run read them (cropped to
    their box, resized to the model's ``resize``). No label is read."""
    pick = np.random.default_rng(0).choice(len(items), n_images, replace=False) if n_images < len(items) \
        else np.arange(len(items))
    images = [open_item(items[int(i)], model.config.resize) for i in pick]
    described = f"{len(images)} of the {len(items)} training images of {data or 'the run'} (seed 0), no label read"
    return model.with_pca(images, n_components=128, max_images=len(images), random_state=0, progress=progress,
                          data=described)


__all__ = ["PCA_IMAGES", "training_pca"]
