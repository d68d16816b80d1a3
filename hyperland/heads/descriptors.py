"""How a LandmarkHead reads images: its descriptors (the model's descriptor PCA, its learned projection, or a PCA
of the hypercolumn fitted on the labelled images: :mod:`hyperland.features`), their pooling and extraction grid,
and the check that given features are encoded that way. A mixin of :class:`.estimator.LandmarkHead`, as
:mod:`.persistence` is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import BackboneMismatchError, InvalidOptionError
from ..features import Features, Projection, encode, fit_projection
from .methods import MODULES

if TYPE_CHECKING:
    from ..images import Images
    from ..model import HyperlandModel


class DescriptorMixin:
    """pool_ / descriptor_source / encode_for / encoding_ of a LandmarkHead (its hyperparameters and fitted state)."""

    method: str
    descriptor: str
    layers: Sequence[int] | None
    n_components: int | None
    pool: int | None
    grid: int | None
    progress: bool | None
    projection_: Projection | None
    layers_: tuple[int, ...]
    grid_: tuple[int, int]

    @property
    def pool_(self) -> int:
        """Average-pooling of the descriptor grid: ``pool``, or the method's default (1 ridge, 2 otherwise)."""
        return int(self.pool) if self.pool is not None else int(MODULES[self.method].POOL)

    def descriptor_source(self, model: HyperlandModel) -> str:
        """What this head reads with ``model``: ``"model_pca"`` (the model's descriptor PCA), ``"learned"`` (its
        learned projection) or ``"pca"`` (a PCA fitted on the labelled images). ``"auto"`` takes the first the model
        has, in that order, and ``"pca"`` when ``layers`` are chosen."""
        for source, has in (("model_pca", model.pca is not None), ("learned", model.projection is not None)):
            if self.descriptor == source and not has:
                what = "descriptor PCA" if source == "model_pca" else "learned projection"
                raise InvalidOptionError(f"descriptor={source!r}: model '{model.name}' has no {what}. Use "
                                         "descriptor='pca' (or 'auto').")
            if self.descriptor == source or (self.descriptor == "auto" and has and self.layers is None):
                return source
        return "pca"

    def encode_for(self, model: HyperlandModel, images: Images, *, fit_on: Images | None = None,
                   seed: int | None = 0) -> Features:
        """Features of ``images`` for this (unfitted) head: the model's PCA or learned projection, or a PCA fitted
        on ``fit_on``."""
        source = self.descriptor_source(model)
        if source == "learned":
            return encode(model, images, learned=True, pool=self.pool_, size=self._size, progress=self.progress)
        if source == "model_pca":
            return encode(model, images, layers=model.pca_layers, projection=model.pca, pool=self.pool_,
                          size=self._size, progress=self.progress)
        proj = None
        if self.n_components:
            proj = fit_projection(model, fit_on if fit_on is not None else images, n_components=self.n_components,
                                  layers=self.layers, random_state=seed, progress=self.progress)
        return encode(model, images, layers=self.layers, projection=proj, pool=self.pool_, size=self._size,
                      progress=self.progress)

    def _encode(self, model: HyperlandModel, images: Images) -> Features:
        """Features of ``images`` as this fitted head reads them."""
        return encode(model, images, **self.encoding_, progress=self.progress)

    @property
    def encoding_(self) -> dict[str, Any]:
        """The options of :func:`~hyperland.features.encode` (and ``encode_batch``) this fitted head reads with."""
        if getattr(self, "learned_", False):
            return {"learned": True, "pool": self.pool_, "size": self._size}
        return {"layers": self.layers_, "projection": self.projection_, "pool": self.pool_, "size": self._size}

    def _encoding_key(self, model: HyperlandModel) -> tuple[Any, ...]:
        """What makes two fitted heads' encodings of an image equal: the model's fingerprint and :attr:`encoding_`
        (its projection by its key)."""
        return (model.fingerprint, *sorted((k, _key(v) if isinstance(v, Projection) else v)
                                           for k, v in self.encoding_.items()))

    @property
    def _size(self) -> tuple[int, int] | None:
        """The extraction grid (``grid`` × ``grid``), or None for the finest selected layer's grid."""
        return None if self.grid is None else (int(self.grid), int(self.grid))

    def _check_features(self, model: HyperlandModel, features: Features) -> None:
        """BackboneMismatchError unless ``features`` come from ``model`` and, once the head is fitted, are encoded
        as it reads them (projection, layers, grid, learned or not)."""
        if features.fingerprint != model.fingerprint:
            raise BackboneMismatchError(f"Features were extracted with backbone {features.fingerprint}, the model "
                                        f"is {model.fingerprint}. Encode the images again with this model.")
        mine = getattr(self, "projection_", None)
        if hasattr(self, "layers_") and (_key(features.projection) != _key(mine) or features.layers != self.layers_
                                         or features.grid != self.grid_
                                         or features.learned != getattr(self, "learned_", False)):
            raise BackboneMismatchError(
                f"Features use projection {_key(features.projection)}, layers {features.layers} and grid "
                f"{features.grid}; this head needs projection {_key(mine)}, layers {self.layers_} and grid "
                f"{self.grid_}. Encode with encode(model, images, layers=head.layers_, projection=head.projection_, "
                "pool=head.pool_, learned=head.learned_)."
            )


def _key(p: Projection | None) -> str | None:
    return None if p is None else p.key


__all__ = ["DescriptorMixin"]
