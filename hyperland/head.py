"""LandmarkHead: fit a landmark detector on a few annotated images on top of a frozen HyperlandModel.

``method="regressor"`` is the DVE-style soft-argmax regressor of the paper's protocol (see
:mod:`hyperland.regressor`); ``method="prototype"`` is training-free: the mean (projected, L2-normalised)
descriptor of each landmark over the labelled images, located in a new image by argmax of the cosine
correlation refined by a local soft-argmax. Features are compact projected hypercolumns
(:mod:`hyperland.features`); the projection is part of the fitted (and saved) head.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator

from .errors import BackboneMismatchError, InvalidKeypointsError, NotFittedError
from .features import Features, Projection, encode, fit_projection
from .head_params import check_head_params
from .head_utils import augment_images, check_points, split_validation, warn_outside
from .images import Images, as_list, image_size
from .match import correlation_soft_argmax, gaussian_log_prior, normalised_to_pixels, pixels_to_normalised
from .regressor import IntermediateRegressor, Schedule, predict_normalised, train_regressor

if TYPE_CHECKING:
    from .model import HyperlandModel

logger = logging.getLogger(__name__)
Method = Literal["regressor", "prototype"]
ValData = tuple[Images | Features, Any]


class LandmarkHead(BaseEstimator):
    """K landmarks from hypercolumns. Hyperparameters here; fitted state in attributes ending with ``_``.

    Few-shot fits (``augment="auto"``: at most ``augment_max`` training images) add ``n_augment`` TPS-warped
    copies of every training image, extracted once. A validation split (``val_fraction`` of the labelled
    images, when at least ``min_val`` images are left over, or ``val=``) picks the best weights.
    ``steps=None`` chooses ``clip(20 · N / batch_size, 150, 1500)`` Adam steps (N counts augmented copies)
    with a cosine decay; ``epochs`` overrides it (the paper used 1,000 epochs few-shot, 200 on full sets).
    ``weight_decay="auto"`` is ``clip(0.5 / N labelled, 1e-5, 1e-2)``. ``softmax_scale`` defaults to 10, not
    the paper's 100: on projected random-r18 features 100 saturates the softmax (see docs/head.md).
    """

    def __init__(
        self,
        n_landmarks: int = 5,
        *,
        method: Method = "regressor",
        layers: Sequence[int] | None = None,
        n_intermediate: int = 50,
        softmax_scale: float = 10.0,
        n_components: int | None = 128,
        pool: int = 2,
        augment: bool | Literal["auto"] = "auto",
        augment_max: int = 100,
        n_augment: int = 8,
        tps: float = 0.05,
        rotation: float = 10.0,
        scale: tuple[float, float] = (0.9, 1.1),
        epochs: int | None = None,
        steps: int | None = None,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float | Literal["auto"] = "auto",
        val_fraction: float = 0.1,
        min_val: int = 10,
        window: int | None = 3,
        prior: bool = True,
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.n_landmarks = n_landmarks
        self.method = method
        self.layers = layers
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
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.min_val = min_val
        self.window = window
        self.prior = prior
        self.random_state = random_state
        self.progress = progress
        check_head_params(self.get_params(deep=False))  # LandmarkHead(0) etc.: a clear error now, not in fit()

    # ------------------------------------------------------------------ fitting
    def fit(self, model: HyperlandModel, images: Images | None = None, points: Any = None, *,
            features: Features | None = None, val: ValData | None = None) -> LandmarkHead:
        """Fit on images (or precomputed ``features`` of them; pass both to augment few-shot fits without
        re-extracting the originals) and (N, K, 2) pixel points, NaN where missing."""
        if self.method not in ("regressor", "prototype"):
            raise ValueError(f"method={self.method!r}. Expected 'regressor' or 'prototype'.")
        if images is None and features is None:
            raise InvalidKeypointsError("fit() got neither images nor features. Pass images, features=, or both.")
        items = as_list(images) if images is not None else None
        n = len(features) if features is not None else len(items)  # type: ignore[arg-type]
        if items is not None and len(items) != n:
            raise InvalidKeypointsError(f"Got {len(items)} images but {n} feature maps. Expected one per image.")
        pts = check_points(points, n=n, k=self.n_landmarks, what="points")
        sizes = features.sizes if features is not None else [image_size(im) for im in items]  # type: ignore[union-attr]
        warn_outside(pts, sizes)
        seed = self.random_state if self.random_state is not None else int(np.random.SeedSequence().entropy % 2**31)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        if val is None:
            train_idx, val_idx = split_validation(n, self.val_fraction, self.min_val, rng)
        else:
            train_idx, val_idx = np.arange(n), np.arange(0)
        if features is None:
            proj = None
            if self.n_components:
                proj = fit_projection(model, [items[i] for i in train_idx], n_components=self.n_components,  # type: ignore[index]
                                      layers=self.layers, random_state=seed, progress=self.progress)
            features = encode(model, items, layers=self.layers, projection=proj, pool=self.pool,
                              progress=self.progress)  # type: ignore[arg-type]
        self._check_features(model, features)
        self.model_, self.projection_, self.layers_ = model, features.projection, features.layers
        self.fingerprint_, self.grid_ = model.fingerprint, features.grid
        self.n_features_in_ = features.channels
        tr_maps, tr_pts = features.maps[train_idx], pts[train_idx]
        tr_sizes = [sizes[i] for i in train_idx]
        if self.method == "prototype":
            self.prototypes_ = self._prototypes(model, tr_maps, tr_pts, tr_sizes)
            norm = pixels_to_normalised(model, torch.from_numpy(tr_pts), tr_sizes)
            self.prior_mean_ = torch.nanmean(norm, dim=0)  # (K, 2)
            spread = torch.nanmean((norm - self.prior_mean_).pow(2).sum(-1), dim=0).nan_to_num(0.0)
            self.prior_std_ = (spread / 2 + PRIOR_MIN_STD ** 2).sqrt()  # (K,) per-axis
            return self
        val_pair = self._val_pair(model, features, pts, sizes, val_idx, val)
        if self._augments(len(train_idx)) and items is not None and self.n_augment > 0:
            imgs, apts = augment_images([items[i] for i in train_idx], tr_pts, n=self.n_augment, tps=self.tps,
                                        rotation=self.rotation, scale=self.scale, generator=gen)
            af = encode(model, imgs, layers=self.layers_, projection=self.projection_, pool=self.pool,
                        progress=self.progress)
            tr_maps = torch.cat([tr_maps, af.maps])
            tr_pts = np.concatenate([tr_pts, apts])
            tr_sizes = tr_sizes + af.sizes
        targets = pixels_to_normalised(model, torch.from_numpy(tr_pts), tr_sizes)
        torch.manual_seed(seed)
        net = IntermediateRegressor(features.channels, self.n_landmarks, n_intermediate=self.n_intermediate,
                                    softmax_scale=self.softmax_scale)
        sched = self._schedule(len(tr_maps), len(train_idx))
        hist = train_regressor(net, tr_maps, targets, sched, val=val_pair, generator=gen, progress=self.progress)
        self.history_ = {**hist, "steps": sched.steps, "weight_decay": sched.weight_decay,
                         "n_train_maps": len(tr_maps), "n_val": 0 if val_pair is None else len(val_pair[0])}
        self.regressor_ = net
        return self

    def _augments(self, n_train: int) -> bool:
        return bool(self.augment) if self.augment != "auto" else n_train <= self.augment_max

    def _schedule(self, n: int, n_labelled: int | None = None) -> Schedule:
        if self.steps is not None:
            steps = self.steps
        elif self.epochs is not None:
            steps = math.ceil(self.epochs * n / self.batch_size)
        else:
            steps = int(np.clip(math.ceil(EPOCHS_AUTO * n / self.batch_size), MIN_STEPS, MAX_STEPS))
        wd = self.weight_decay
        if wd == "auto":  # a fixed prior: its weight relative to the mean loss shrinks as 1/N labelled images
            wd = float(np.clip(WD_AUTO / max(1, n_labelled or n), 1e-5, 1e-2))
        return Schedule(steps=max(1, steps), batch_size=self.batch_size, lr=self.lr, weight_decay=float(wd))

    def _val_pair(self, model: HyperlandModel, features: Features, pts: np.ndarray, sizes: list,
                  val_idx: np.ndarray, val: ValData | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if val is not None:
            vx, vp = val
            vf = vx if isinstance(vx, Features) else encode(model, vx, layers=self.layers_, projection=self.projection_,
                                                            pool=self.pool, progress=self.progress)
            self._check_features(model, vf)
            vpts = check_points(vp, n=len(vf), k=self.n_landmarks, what="val points")
            return vf.maps, pixels_to_normalised(model, torch.from_numpy(vpts), vf.sizes)
        if len(val_idx) == 0:
            return None
        return features.maps[val_idx], pixels_to_normalised(model, torch.from_numpy(pts[val_idx]),
                                                             [sizes[i] for i in val_idx])

    def _prototypes(self, model: HyperlandModel, maps: torch.Tensor, pts: np.ndarray, sizes: list) -> torch.Tensor:
        grid = pixels_to_normalised(model, torch.from_numpy(pts), sizes)
        ok = torch.isfinite(grid).all(-1)  # (N, K)
        d = F.grid_sample(maps.float(), torch.nan_to_num(grid).unsqueeze(1), mode="bilinear",
                          padding_mode="border", align_corners=False).squeeze(2).transpose(1, 2)  # (N, K, C)
        d = F.normalize(d, dim=-1) * ok.unsqueeze(-1)
        return d.sum(0) / ok.sum(0).clamp_min(1).unsqueeze(-1)

    def _check_features(self, model: HyperlandModel, features: Features) -> None:
        if features.fingerprint != model.fingerprint:
            raise BackboneMismatchError(
                f"Features were extracted with backbone {features.fingerprint}, the model is {model.fingerprint}. "
                "Encode the images with this model (hyperland.features.encode)."
            )
        mine = getattr(self, "projection_", None)
        if hasattr(self, "layers_") and (_key(features.projection) != _key(mine) or features.layers != self.layers_
                                         or features.grid != self.grid_):
            raise BackboneMismatchError(
                f"Features use projection {_key(features.projection)}, layers {features.layers} and grid "
                f"{features.grid}; this head needs projection {_key(mine)}, layers {self.layers_} and grid "
                f"{self.grid_}. Encode with encode(model, images, layers=head.layers_, projection=head.projection_, "
                "pool=head.pool)."
            )

    # ------------------------------------------------------------------ inference
    def _require_fitted(self) -> None:
        if not hasattr(self, "fingerprint_"):
            raise NotFittedError("This LandmarkHead is not fitted yet. Call fit(model, images, points) or "
                                 "LandmarkHead.load(path, model=model) first.")

    def predict(self, images: Images | None = None, *, model: HyperlandModel | None = None,
                features: Features | None = None) -> np.ndarray:
        """(M, K, 2) landmarks in the pixel frame of each image as passed in."""
        self._require_fitted()
        model = model or self.model_
        if model.fingerprint != self.fingerprint_ and not getattr(self, "backbone_override_", False):
            raise BackboneMismatchError(f"This head was fitted on backbone {self.fingerprint_}; got "
                                        f"{model.fingerprint}. Pass the model it was fitted with.")
        if features is None:
            if images is None:
                raise InvalidKeypointsError("predict() got neither images nor features.")
            features = encode(model, images, layers=self.layers_, projection=self.projection_, pool=self.pool,
                              progress=self.progress)
        elif not getattr(self, "backbone_override_", False):
            self._check_features(model, features)
        if self.method == "prototype":
            lp = gaussian_log_prior(self.prior_mean_, self.prior_std_, features.grid) if self.prior else None
            xy = torch.cat([correlation_soft_argmax(self.prototypes_, features.maps[i:i + 64].float(),
                                                    scale=self.softmax_scale, window=self.window, log_prior=lp)
                            for i in range(0, len(features), 64)])
        else:
            xy = predict_normalised(self.regressor_, features.maps)
        return normalised_to_pixels(model, xy, features.sizes).numpy()

    def score(self, images: Images | None = None, points: Any = None, *, features: Features | None = None,
              eyes: tuple[int, int] = (0, 1)) -> float:
        """Mean inter-ocular NME in percent (missing landmarks excluded)."""
        from .metrics import nme

        pred = self.predict(images, features=features)
        gt = check_points(points, n=len(pred), k=self.n_landmarks, what="points", allow_all_nan=True)
        return 100.0 * float(nme(pred, gt, eyes=eyes))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write ``path/head.json`` and ``path/head.safetensors``."""
        from .head_io import save_head

        self._require_fitted()
        save_head(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, model: HyperlandModel, allow_backbone_mismatch: bool = False,
             n_landmarks: int | None = None) -> LandmarkHead:
        """Read a saved head for ``model``; a different backbone raises BackboneMismatchError unless allowed,
        and ``n_landmarks`` (when given) must match the saved K."""
        from .head_io import load_head

        return load_head(cls, path, model=model, allow_backbone_mismatch=allow_backbone_mismatch,
                         n_landmarks=n_landmarks)


def _key(p: Projection | None) -> str | None:
    return None if p is None else p.key


EPOCHS_AUTO = 20
MIN_STEPS = 150
MAX_STEPS = 1500
WD_AUTO = 0.5
PRIOR_MIN_STD = 0.1  # normalised units (5% of the input side): the spread assumed from a single labelled image

__all__ = ["LandmarkHead"]
