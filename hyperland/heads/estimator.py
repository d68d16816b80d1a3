"""LandmarkHead: fit a landmark detector on a few annotated images on top of a frozen HyperlandModel.

Methods (one module each in :mod:`hyperland.heads`):

* ``"ridge"`` (default, :mod:`.ridge`): a global ridge readout, refined per landmark by a per-cell logistic
  classifier on the descriptor map and a Gaussian prior; every setting is chosen on held-out labelled images and recorded in ``selection_``.
* ``"regressor"`` (:mod:`.regressor`): the DVE-style soft-argmax regressor of the paper's protocol.
* ``"prototype"``: training-free: the mean descriptor of each landmark, located by cosine correlation.

Descriptors (``descriptor=``): the model's learned projection where it has one (models trained with the dense
objective), else a PCA of the hypercolumn fitted on the labelled images (:mod:`hyperland.features`); the
projection is part of the fitted (and saved) head.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ..errors import BackboneMismatchError, InvalidKeypointsError, InvalidOptionError
from ..features import Features, Projection, encode, fit_projection
from ..images import Images, as_list, image_size
from . import prototype, ridge
from .cells import CellClassifier, fit_cell_classifiers, shape_prior
from .checks import augment_images, check_landmark_names, check_points, split_validation, warn_outside
from .framing import fit_framed, predict_framed
from .geometry import normalised_to_pixels, pixels_to_normalised
from .params import DEFAULT_METHOD, check_head_params, check_method_reads, option_defaults
from .persistence import PersistenceMixin
from .regressor import Loss, Schedule, fit_regressor, predict_normalised, schedule_for

if TYPE_CHECKING:
    from ..model import HyperlandModel

logger = logging.getLogger(__name__)
Method = Literal["ridge", "regressor", "prototype"]
Descriptor = Literal["auto", "learned", "pca"]
Framing = Literal["none", "object"]
ValData = tuple[Images | Features, Any]


class LandmarkHead(PersistenceMixin, BaseEstimator):
    """K landmarks from hypercolumns. Hyperparameters here; fitted state in attributes ending with ``_``.

    ``method="ridge"`` (default): ``readout_grid`` (pooled grid of the ridge readout), ``refine`` (True, False or
    "auto": chosen on held-out labelled images; the classifier's ``C`` and the prior are always chosen there);
    ``pool`` defaults to 1 (the full descriptor grid) for it and to 2 for the other methods.

    Few-shot fits (``augment="auto"``: at most ``augment_max`` training images) add ``n_augment`` TPS-warped
    copies of every training image, extracted once. A validation split (``val_fraction`` of the labelled
    images, when at least ``min_val`` images are left over, or ``val=``) picks the best weights.
    ``steps=None`` chooses ``clip(20 · N / batch_size, 150, 1500)`` Adam steps (N counts augmented copies)
    with a cosine decay; ``epochs`` overrides it (the paper used 1,000 epochs few-shot, 200 on full sets).
    ``weight_decay="auto"`` is ``clip(0.5 / N labelled, 1e-5, 1e-2)``. ``softmax_scale`` defaults to 10, not
    the paper's 100: on projected random-r18 features 100 saturates the softmax (see docs/head.md).
    ``epoch_size`` (with ``epochs``): an epoch is ``max(N, epoch_size)`` maps, i.e. few training maps are
    repeated up to it. ``loss`` ("mse" or "smooth_l1") on coordinates × ``loss_scale``, Adam ``betas`` and the
    cosine's ``final_lr`` (fraction of ``lr``) shape the regressor's training. ``grid`` (cells per side, e.g.
    48) extracts the hypercolumn on that grid (bilinear resizing of every layer) instead of the finest
    layer's; ``translate`` adds U(±translate) shifts (fraction of the half-side) to the few-shot warps.
    :meth:`paper` returns the paper's recipe as one configured head.

    ``framing="object"`` (:mod:`.framing`): for objects anywhere in a larger frame. A coarse head of the same
    method reads the whole frame (resized to ``frame_size`` px, no border crop), a fine head reads a crop
    ``frame_margin`` × the object's length wide around it (``frame_crop`` px, default the model's input size),
    fitted on shifted, scaled and rotated (± ``frame_rotation`` degrees) crops of the labelled frames; it reads
    each crop in ``frame_turns`` orientations (4: quarter turns, for objects seen from above) and keeps the most
    confident.
    """

    def __init__(
        self,
        n_landmarks: int = 5,
        *,
        method: Method = DEFAULT_METHOD,  # type: ignore[assignment]
        layers: Sequence[int] | None = None,
        descriptor: Descriptor = "auto",
        readout_grid: int = 8,
        refine: bool | Literal["auto"] = "auto",
        n_intermediate: int = 50,
        softmax_scale: float = 10.0,
        n_components: int | None = 128,
        pool: int | None = None,
        augment: bool | Literal["auto"] = "auto",
        augment_max: int = 100,
        n_augment: int = 8,
        tps: float = 0.05,
        rotation: float = 10.0,
        scale: tuple[float, float] = (0.9, 1.1),
        translate: float = 0.0,
        grid: int | None = None,
        epochs: int | None = None,
        epoch_size: int | None = None,
        steps: int | None = None,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float | Literal["auto"] = "auto",
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.0,
        loss: Loss = "mse",
        loss_scale: float = 1.0,
        val_fraction: float = 0.1,
        min_val: int = 10,
        window: int | None = 3,
        prior: bool = True,
        framing: Framing = "none",
        frame_size: int = 160,
        frame_margin: float = 1.3,
        frame_rotation: float = 30.0,
        frame_crop: int | None = None,
        frame_turns: int = 1,
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.n_landmarks = n_landmarks
        self.method = method
        self.layers = layers
        self.descriptor = descriptor
        self.readout_grid = readout_grid
        self.refine = refine
        self.n_intermediate = n_intermediate
        self.softmax_scale = softmax_scale
        self.n_components = n_components
        self.pool = pool
        self.augment = augment
        self.augment_max = augment_max
        self.n_augment = n_augment
        self.tps = tps
        self.rotation = rotation
        self.scale = scale
        self.translate = translate
        self.grid = grid
        self.epochs = epochs
        self.epoch_size = epoch_size
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.final_lr = final_lr
        self.loss = loss
        self.loss_scale = loss_scale
        self.val_fraction = val_fraction
        self.min_val = min_val
        self.window = window
        self.prior = prior
        self.framing = framing
        self.frame_size = frame_size
        self.frame_margin = frame_margin
        self.frame_rotation = frame_rotation
        self.frame_crop = frame_crop
        self.frame_turns = frame_turns
        self.random_state = random_state
        self.progress = progress
        check_head_params(self.get_params(deep=False))  # LandmarkHead(0) etc.: a clear error now, not in fit()

    @classmethod
    def paper(cls, n_landmarks: int = 5, *, few_shot: bool, epochs: int | None = None,
              **overrides: Any) -> LandmarkHead:
        """The regressor of Cheng et al. (2021) as one configured head: see :func:`hyperland.heads.paper_options`
        for the values and what deviates on CPU. ``epochs`` replaces the paper's 1,000 (few-shot) or 200;
        ``overrides`` any other hyperparameter (e.g. ``random_state``)."""
        from .paper import paper_options

        opts = paper_options(few_shot=few_shot)
        if epochs is not None:
            opts["epochs"] = epochs
        return cls(n_landmarks, **{**opts, **overrides})

    # ------------------------------------------------------------------ fitting
    def fit(self, model: HyperlandModel, images: Images | None = None, points: Any = None, *,
            features: Features | None = None, val: ValData | None = None,
            landmark_names: Sequence[str] | None = None) -> LandmarkHead:
        """Fit on images (or precomputed ``features`` of them; pass both to augment few-shot fits without
        re-extracting the originals) and (N, K, 2) pixel points, NaN where missing; ``landmark_names``: K names
        (e.g. :func:`hyperland.data.landmark_names` of the samples), kept as ``landmark_names_`` and saved."""
        params = self.get_params(deep=False)
        check_head_params(params)  # set_params may have changed them since __init__
        check_method_reads(params, option_defaults())  # e.g. steps= on the ridge head: an error, not a silent no-op
        if images is None and features is None:
            raise InvalidKeypointsError("fit() got neither images nor features. Pass images, features=, or both.")
        items = as_list(images) if images is not None else None
        n = len(features) if features is not None else len(items)  # type: ignore[arg-type]
        if items is not None and len(items) != n:
            raise InvalidKeypointsError(f"Got {len(items)} images but {n} feature maps. Expected one per image.")
        pts = check_points(points, n=n, k=self.n_landmarks, what="points")
        self.landmark_names_ = check_landmark_names(landmark_names, k=self.n_landmarks)
        sizes = features.sizes if features is not None else [image_size(im) for im in items]  # type: ignore[union-attr]
        warn_outside(pts, sizes)
        seed = self.random_state if self.random_state is not None else int(np.random.SeedSequence().entropy % 2**31)
        if self.framing != "none":
            fit_framed(self, model, items, pts, seed=seed)  # its coarse_ and fine_ heads
            return self
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        if val is None and self.method != "ridge":  # the ridge head holds out its own folds (ridge.select)
            train_idx, val_idx = split_validation(n, self.val_fraction, self.min_val, rng, points=pts)
        else:
            train_idx, val_idx = np.arange(n), np.arange(0)
        if features is None:
            features = self.encode_for(model, items, fit_on=[items[i] for i in train_idx], seed=seed)  # type: ignore[index, arg-type]
        self._check_features(model, features)
        self.model_, self.projection_, self.layers_ = model, features.projection, features.layers
        self.learned_ = features.learned
        self.fingerprint_, self.grid_ = model.fingerprint, features.grid
        self.n_features_in_ = features.channels
        if self.method == "ridge":
            return self._fit_ridge(model, items, features, pts, sizes, gen, rng)
        tr_maps, tr_pts = features.maps[train_idx], pts[train_idx]
        tr_sizes = [sizes[i] for i in train_idx]
        if self.method == "prototype":
            norm = pixels_to_normalised(model, torch.from_numpy(tr_pts), tr_sizes)
            self.prototypes_, self.prior_mean_, self.prior_std_ = prototype.fit_prototypes(tr_maps, norm)
            return self
        val_pair = self._val_pair(model, features, pts, sizes, val_idx, val)
        if self._augments(len(train_idx)) and items is not None and self.n_augment > 0:
            af, apts = self._augmented(model, [items[i] for i in train_idx], tr_pts, gen)
            tr_maps, tr_pts, tr_sizes = torch.cat([tr_maps, af.maps]), np.concatenate([tr_pts, apts]), tr_sizes + af.sizes
        targets = pixels_to_normalised(model, torch.from_numpy(tr_pts), tr_sizes)
        self.regressor_, self.history_ = fit_regressor(self, tr_maps, targets, n_labelled=len(train_idx),
                                                       val=val_pair, generator=gen, seed=seed)
        return self

    # ------------------------------------------------------------------ descriptors
    @property
    def pool_(self) -> int:
        """Average-pooling of the descriptor grid: ``pool``, or 1 for the ridge head and 2 for the others."""
        return int(self.pool) if self.pool is not None else (1 if self.method == "ridge" else 2)

    def uses_learned(self, model: HyperlandModel) -> bool:
        if self.descriptor == "learned" and model.projection is None:
            raise InvalidOptionError(f"descriptor='learned': model '{model.name}' has no learned projection. Use "
                                     "descriptor='pca' (or 'auto').")
        return self.descriptor == "learned" or (self.descriptor == "auto" and model.projection is not None
                                                and self.layers is None)

    def encode_for(self, model: HyperlandModel, images: Images, *, fit_on: Images | None = None,
                   seed: int | None = 0) -> Features:
        """Features of ``images`` for this (unfitted) head: the learned projection, or a PCA fitted on ``fit_on``."""
        if self.uses_learned(model):
            return encode(model, images, learned=True, pool=self.pool_, size=self._size, progress=self.progress)
        proj = None
        if self.n_components:
            proj = fit_projection(model, fit_on if fit_on is not None else images, n_components=self.n_components,
                                  layers=self.layers, random_state=seed, progress=self.progress)
        return encode(model, images, layers=self.layers, projection=proj, pool=self.pool_, size=self._size,
                      progress=self.progress)

    def _encode(self, model: HyperlandModel, images: Images) -> Features:
        """Features of ``images`` as this fitted head reads them."""
        return encode(model, images, **self._encoding, progress=self.progress)

    @property
    def _encoding(self) -> dict[str, Any]:
        """The options of :func:`~hyperland.features.encode` (and ``encode_batch``) this fitted head reads with."""
        if getattr(self, "learned_", False):
            return {"learned": True, "pool": self.pool_, "size": self._size}
        return {"layers": self.layers_, "projection": self.projection_, "pool": self.pool_, "size": self._size}

    @property
    def _size(self) -> tuple[int, int] | None:
        """The extraction grid (``grid`` × ``grid``), or None for the finest selected layer's grid."""
        return None if self.grid is None else (int(self.grid), int(self.grid))

    # ------------------------------------------------------------------ ridge head
    def _fit_ridge(self, model: HyperlandModel, items: list | None, features: Features, pts: np.ndarray,
                   sizes: list, gen: torch.Generator, rng: np.random.Generator) -> LandmarkHead:
        n, maps, grid = len(features), features.maps, (int(features.maps.shape[-2]), int(features.maps.shape[-1]))
        targets = pixels_to_normalised(model, torch.from_numpy(pts), sizes)
        groups = np.arange(n)
        if self._augments(n) and items is not None and self.n_augment > 0:
            af, apts = self._augmented(model, items, pts, gen)
            maps = torch.cat([maps, af.maps])
            targets = torch.cat([targets, pixels_to_normalised(model, torch.from_numpy(apts), af.sizes)])
            groups = np.concatenate([groups, np.repeat(np.arange(n), self.n_augment)])
        pooled = ridge.readout_inputs(maps, self.readout_grid).numpy()
        choice = ridge.select(maps, pooled, targets, groups, refine_mode=self.refine, rng=rng)
        self.readout_ = ridge.fit_readout(pooled, targets)
        self.classifier_ = fit_cell_classifiers(maps, targets, [choice.C], rng=rng)[0].matrix
        self.prior_mean_, self.prior_std_ = shape_prior(targets, grid, groups=groups)
        self.selection_ = {**choice.as_dict(), "ridge_alpha": self.readout_.alpha, "n_train_maps": len(maps),
                           "n_labelled": n}
        return self

    def _locate(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch of descriptor maps → normalised points (B, K, 2) and confidences (B, K) (None: regressor).
        Torch only: :meth:`predict` runs it batch by batch, the ONNX graph (:meth:`to_onnx`) as is."""
        if self.method == "ridge":
            choice = ridge.Choice.from_dict(self.selection_)
            return ridge.predict(self.readout_, CellClassifier(self.classifier_, choice.C),
                                 (self.prior_mean_, self.prior_std_), choice, maps, readout_grid=self.readout_grid)
        if self.method == "prototype":
            return prototype.locate(self.prototypes_, maps, scale=self.softmax_scale, window=self.window,
                                    prior=(self.prior_mean_, self.prior_std_) if self.prior else None)
        return predict_normalised(self.regressor_, maps), None

    def _augments(self, n_train: int) -> bool:
        return bool(self.augment) if self.augment != "auto" else n_train <= self.augment_max

    def _augmented(self, model: HyperlandModel, items: list, pts: np.ndarray,
                   gen: torch.Generator) -> tuple[Features, np.ndarray]:
        """``n_augment`` TPS/affine-warped copies of every image (points moved with them), encoded."""
        imgs, apts = augment_images(items, pts, n=self.n_augment, tps=self.tps, rotation=self.rotation,
                                    scale=self.scale, translate=self.translate, generator=gen)
        return self._encode(model, imgs), apts

    def _schedule(self, n: int, n_labelled: int | None = None) -> Schedule:
        return schedule_for(self, n, n_labelled)

    def _val_pair(self, model: HyperlandModel, features: Features, pts: np.ndarray, sizes: list,
                  val_idx: np.ndarray, val: ValData | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if val is not None:
            vx, vp = val
            vf = vx if isinstance(vx, Features) else self._encode(model, vx)
            self._check_features(model, vf)
            maps, vsizes = vf.maps, vf.sizes
            vpts = check_points(vp, n=len(vf), k=self.n_landmarks, what="val points", allow_all_nan=True)
        else:
            maps, vpts, vsizes = features.maps[val_idx], pts[val_idx], [sizes[i] for i in val_idx]
        if not np.isfinite(vpts).any():  # no validation image, or none labelled: keep the last weights
            return None
        return maps, pixels_to_normalised(model, torch.from_numpy(vpts), vsizes)

    def _check_features(self, model: HyperlandModel, features: Features) -> None:
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

    # ------------------------------------------------------------------ inference
    def predict(self, images: Images | None = None, *, model: HyperlandModel | None = None,
                features: Features | None = None, return_confidence: bool = False
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """(M, K, 2) landmarks in the pixel frame of each image as passed in; with ``return_confidence`` also
        (M, K) confidences in [0, 1] (the share of the landmark's posterior in its peak window: ridge and
        prototype heads)."""
        self._require_fitted()
        model = model or self.model_
        if model.fingerprint != self.fingerprint_ and not getattr(self, "backbone_override_", False):
            raise BackboneMismatchError(f"This head was fitted on backbone {self.fingerprint_}; got "
                                        f"{model.fingerprint}. Pass the model it was fitted with.")
        if self.framing != "none":
            if images is None:
                raise InvalidKeypointsError("A framed head predicts from images (it crops them), not features=.")
            out, conf = predict_framed(self, model, images)
            return (out, _confidence(conf)) if return_confidence else out
        if features is None:
            if images is None:
                raise InvalidKeypointsError("predict() got neither images nor features.")
            features = self._encode(model, images)
        elif not getattr(self, "backbone_override_", False):
            self._check_features(model, features)
        parts = [self._locate(features.maps[i:i + 256]) for i in range(0, len(features), 256)]  # bounded memory
        out = normalised_to_pixels(model, torch.cat([xy for xy, _ in parts]), features.sizes).numpy()
        if return_confidence:
            conf = [c for _, c in parts if c is not None]
            return out, _confidence(torch.cat(conf).numpy() if len(conf) == len(parts) else None)
        return out

    def score(self, images: Images | None = None, points: Any = None, *, features: Features | None = None,
              eyes: tuple[int, int] = (0, 1)) -> float:
        """Mean inter-ocular NME in percent (missing landmarks excluded)."""
        from ..metrics import nme

        pred = self.predict(images, features=features)
        assert isinstance(pred, np.ndarray)
        gt = check_points(points, n=len(pred), k=self.n_landmarks, what="points", allow_all_nan=True)
        return 100.0 * float(nme(pred, gt, eyes=eyes))


def _confidence(conf: np.ndarray | None) -> np.ndarray:
    if conf is None:
        raise InvalidOptionError("return_confidence=True: the regressor head has no per-landmark confidence. Use "
                                 "method='ridge' (the default) or 'prototype'.")
    return conf


def _key(p: Projection | None) -> str | None:
    return None if p is None else p.key


__all__ = ["LandmarkHead"]
