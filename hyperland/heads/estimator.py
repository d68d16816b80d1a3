"""LandmarkHead: fit a landmark detector on a few annotated images on top of a frozen HyperlandModel.

The front end of the head methods (:mod:`.methods`: one module each, :mod:`.ridge` the default): it checks the
options, encodes the images (descriptors), draws the validation split, makes the few-shot warped copies and hands
descriptor maps and normalised targets to the method's ``fit``; the method's fitted ``State`` locates landmarks.
Descriptors (``descriptor=``): the model's descriptor PCA where it ships one (fitted on its own unlabelled
training images), else its learned projection (models trained with the dense objective), else a PCA of the
hypercolumn fitted on the labelled images (:mod:`hyperland.features`); the projection is part of the fitted (and
saved) head.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ..errors import BackboneMismatchError, InvalidKeypointsError, InvalidOptionError
from ..features import Features
from ..geometry import normalised_to_pixels, pixels_to_normalised
from ..images import Images, as_list, image_size, load_image
from ..metrics import nme
from .checks import check_landmark_names, check_points, split_validation, warn_outside
from .descriptors import DescriptorMixin
from .framing import fit_framed, predict_framed
from .methods import MODULES, check_params, check_reads
from .mirror import average_mirrored, calibrate_reading, mirror_image, mirror_images, mirror_points
from .mirror import resolve as resolve_mirror
from .options import AUGMENT, DEFAULT_METHOD, SPLIT
from .paper import paper_options
from .persistence import PersistenceMixin
from .regressor import Loss
from .warped import WarpCache

if TYPE_CHECKING:
    from ..model import HyperlandModel

Method = Literal["ridge", "regressor", "prototype"]
MIRROR_CALIBRATION = 200  # labelled images that calibrate predict's mirrored reading when a fit adds no copies
ValData = tuple[Images | Features, Any]


class LandmarkHead(DescriptorMixin, PersistenceMixin, BaseEstimator):
    """K landmarks from hypercolumns. Hyperparameters here (each method's own in its module's ``OPTIONS``: an
    option the chosen method does not read is an error at ``fit``); fitted state in attributes ending with ``_``.

    * ``method``: ``"ridge"`` (default; ``readout_grid``, ``refine``, ``prior_centre``: ``"auto"`` chooses on
      held-out images whether the refinement's prior sits on the readout's estimate or on the labelled mean
      shape, ``"shape"`` keeps it on the mean shape, for objects anywhere in the frame, ``"mixture"`` uses an even
      mixture of the readout's prior and a broad one around the mean shape; ``val_blocks``: from 50 labelled images
      on, its single validation split is one run of the labelled images in the order given, for video frames),
      ``"regressor"`` (the DVE-style soft-argmax regressor: ``steps`` or ``epochs`` (× ``epoch_size`` maps),
      ``batch_size``, ``lr``,
      ``weight_decay``, ``betas``, ``final_lr``, ``loss``, ``loss_scale``, ``n_intermediate``, ``softmax_scale``;
      :meth:`paper` is the paper's recipe) or ``"prototype"`` (training-free; ``softmax_scale``, ``window``, ``prior``).
    * descriptors: ``descriptor`` (``"auto"``: ``"model_pca"``, else ``"learned"``, else ``"pca"``), ``layers``,
      ``n_components`` (of a ``"pca"`` fitted on the labelled images), ``pool`` (default 1 for the ridge head, 2
      otherwise), ``grid`` (extraction grid, cells per side; default the finest layer's).
    * warped copies (ridge, regressor): ``n_augment`` TPS-warped copies (``tps``, ``rotation``, ``scale``,
      ``translate``) of every training image, extracted once; with ``augment="auto"`` (default) of at most
      ``augment_max`` of them, a seeded random subset of a larger set (``True``: of all, ``False``: none).
    * mirrored copies (ridge, regressor; :mod:`.mirror`): fits on at most ``mirror_max`` images add a left-right
      flipped copy of each (and of its warps) with left and right landmarks swapped: ``mirror="auto"`` pairs them
      by name (``fit(landmark_names=)``: ``left_eye`` ↔ ``right_eye``; no pair, no copies), a list of ``[i, j]``
      index pairs names them, ``False`` turns them off. The copies' labels are calibrated on the originals.
      ``mirror_predict``: ``predict`` averages each image's reading with its mirror's, mapped back (``"auto"``:
      where the fit calibrated a mirrored reading: with its mirrored copies, or above ``mirror_max`` on
      :data:`MIRROR_CALIBRATION` of its images; ``True``: wherever the pairs are known; twice the prediction cost).
    * validation split (regressor, prototype): ``val_fraction`` of the labelled images when at least ``min_val``
      are left over, or ``fit(val=)``; the regressor keeps its weights best there.
    * ``framing="object"`` (:mod:`.framing`): a coarse head finds the object in the whole frame (``frame_size``
      px), a fine head reads a crop ``frame_margin`` × its length wide (``frame_crop`` px), turned to the labelled
      shapes' common orientation (``frame_align``), fitted on crops rotated by up to ± ``frame_rotation`` degrees;
      its first crop is read in ``frame_turns`` orientations (``"auto"``: 8 where the labelled orientations span
      more than 90 degrees, else 1); ``frame_prior`` is the (ridge) coarse head's ``prior_centre``.
    """

    def __init__(
        self, n_landmarks: int = 5, *, method: Method = DEFAULT_METHOD,  # type: ignore[assignment]
        layers: Sequence[int] | None = None, descriptor: Literal["auto", "model_pca", "learned", "pca"] = "auto",
        readout_grid: int = 8, refine: bool | Literal["auto"] = "auto",
        prior_centre: Literal["auto", "shape", "mixture"] = "auto", val_blocks: bool = False, n_intermediate: int = 50,
        softmax_scale: float = 10.0, n_components: int | None = 128, pool: int | None = None,
        augment: bool | Literal["auto"] = "auto", augment_max: int = 100, n_augment: int = 8, tps: float = 0.05,
        rotation: float = 10.0, scale: tuple[float, float] = (0.9, 1.1), translate: float = 0.1,
        mirror: Literal[False, "auto"] | Sequence[Sequence[int]] = "auto", mirror_max: int = 1000,
        mirror_predict: bool | Literal["auto"] = "auto",
        grid: int | None = None, epochs: int | None = None, epoch_size: int | None = None, steps: int | None = None,
        batch_size: int = 32, lr: float = 3e-3, weight_decay: float | Literal["auto"] = "auto",
        betas: tuple[float, float] = (0.9, 0.999), final_lr: float = 0.0, loss: Loss = "mse",
        loss_scale: float = 1.0, val_fraction: float = 0.1, min_val: int = 10, window: int | None = 3,
        prior: bool = True, framing: Literal["none", "object"] = "none", frame_size: int = 160,
        frame_margin: float = 1.3, frame_rotation: float = 30.0, frame_crop: int | None = None,
        frame_turns: int | Literal["auto"] = "auto", frame_prior: Literal["auto", "shape", "mixture"] = "mixture",
        frame_align: bool = True,
        random_state: int | None = None, progress: bool | None = None,
    ) -> None:
        self.n_landmarks, self.method, self.layers, self.descriptor = n_landmarks, method, layers, descriptor
        self.readout_grid, self.refine, self.n_intermediate = readout_grid, refine, n_intermediate
        self.prior_centre, self.val_blocks = prior_centre, val_blocks
        self.softmax_scale, self.n_components, self.pool, self.augment = softmax_scale, n_components, pool, augment
        self.augment_max, self.n_augment, self.tps, self.rotation = augment_max, n_augment, tps, rotation
        self.scale, self.translate, self.grid, self.epochs = scale, translate, grid, epochs
        self.mirror, self.mirror_max, self.mirror_predict = mirror, mirror_max, mirror_predict
        self.epoch_size, self.steps, self.batch_size, self.lr = epoch_size, steps, batch_size, lr
        self.weight_decay, self.betas, self.final_lr, self.loss = weight_decay, betas, final_lr, loss
        self.loss_scale, self.val_fraction, self.min_val, self.window = loss_scale, val_fraction, min_val, window
        self.prior, self.framing, self.frame_size, self.frame_margin = prior, framing, frame_size, frame_margin
        self.frame_rotation, self.frame_crop, self.frame_turns = frame_rotation, frame_crop, frame_turns
        self.frame_prior, self.frame_align = frame_prior, frame_align
        self.random_state, self.progress = random_state, progress
        check_params(self.get_params(deep=False))  # LandmarkHead(0) etc.: a clear error now, not in fit()

    @classmethod
    def paper(cls, n_landmarks: int = 5, *, few_shot: bool, epochs: int | None = None,
              **overrides: Any) -> LandmarkHead:
        """The regressor of Cheng et al. (2021) as one configured head: see :func:`hyperland.heads.paper_options`
        for the values and what deviates on CPU. ``epochs`` replaces the paper's 1,000 (few-shot) or 200;
        ``overrides`` any other hyperparameter (e.g. ``random_state``)."""
        opts = paper_options(few_shot=few_shot)
        if epochs is not None:
            opts["epochs"] = epochs
        return cls(n_landmarks, **{**opts, **overrides})

    @classmethod
    def check_options(cls, options: Mapping[str, Any], *, where: str = "LandmarkHead") -> None:
        """InvalidOptionError for an unknown option, a bad value, or one set away from its default that the
        chosen method (``options["method"]``, else the default) does not read."""
        check_params(options, where=where)
        defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items()}
        check_reads(options, defaults=defaults, where=where)

    # ------------------------------------------------------------------ fitting
    def fit(self, model: HyperlandModel, images: Images | None = None, points: Any = None, *,
            features: Features | None = None, val: ValData | None = None,
            landmark_names: Sequence[str] | None = None, warp_cache: WarpCache | None = None) -> LandmarkHead:
        """Fit on images (or precomputed ``features`` of them; pass both to augment few-shot fits without
        re-extracting the originals) and (N, K, 2) pixel points, NaN where missing; ``landmark_names``: K names
        (e.g. :func:`hyperland.data.landmark_names` of the samples), kept as ``landmark_names_`` and saved;
        ``warp_cache``: a :class:`.warped.WarpCache` shared by fits of one seed on overlapping images (the few-shot
        warped copies of an image it holds are not warped and encoded again; the result is the same)."""
        options = self.get_params(deep=False)
        self.check_options(options)  # set_params may have changed them since __init__
        if images is None and features is None:
            raise InvalidKeypointsError("fit() got neither images nor features. Pass images, features=, or both.")
        items = as_list(images) if images is not None else None
        n = len(features) if features is not None else len(items)  # type: ignore[arg-type]
        if items is not None and len(items) != n:
            raise InvalidKeypointsError(f"Got {len(items)} images but {n} feature maps. Expected one per image.")
        pts = check_points(points, n=n, k=self.n_landmarks, what="points")
        self.landmark_names_ = check_landmark_names(landmark_names, k=self.n_landmarks)
        resolve_mirror(self.mirror, names=self.landmark_names_, k=self.n_landmarks)  # bad pairs: an error now
        if self.mirror_predict is True and self._predict_perm(self.landmark_names_) is None:
            raise InvalidOptionError("mirror_predict=True averages each reading with the mirrored image's, which needs "
                                     "the left/right landmark pairs and an unframed ridge or regressor head: pass "
                                     "landmark_names with left/right twins or mirror=[[i, j], ...], or set "
                                     "mirror_predict='auto'.")
        sizes = features.sizes if features is not None else [image_size(im) for im in items]  # type: ignore[union-attr]
        warn_outside(pts, sizes)
        seed = self.random_state if self.random_state is not None else int(np.random.default_rng().integers(2**31))
        if self.framing != "none":
            fit_framed(self, model, items, pts, seed=seed)  # its coarse_ and fine_ heads
            return self
        module = MODULES[self.method]  # the options it reads say whether it splits and warps (no method names here)
        splits, warps = set(SPLIT) <= set(module.OPTIONS), set(AUGMENT) <= set(module.OPTIONS)
        rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        train, held = np.arange(n), np.arange(0)
        if val is None and splits:
            train, held = split_validation(n, self.val_fraction, self.min_val, rng, points=pts)
        if features is None:
            features = self.encode_for(model, items, fit_on=[items[i] for i in train], seed=seed)  # type: ignore[index, arg-type]
        self._check_features(model, features)
        self.model_, self.projection_, self.layers_ = model, features.projection, features.layers
        self.learned_, self.fingerprint_, self.grid_ = features.learned, model.fingerprint, features.grid
        self.n_features_in_ = features.channels
        val_pair = self._val_pair(model, features, pts, sizes, held, val) if splits else None
        maps = features.maps if len(train) == n else features.maps[train]
        tr_pts, tr_sizes, groups = pts[train], [sizes[i] for i in train], np.arange(len(train))
        tr_items = [items[i] for i in train] if items is not None else None
        warp_rows = self._warp_rows(len(train), seed) if warps and tr_items is not None else None
        cache = (warp_cache if warp_cache is not None else WarpCache()) if warp_rows is not None else None
        # (K, 2) px added to the labels before mirroring them, and taken off predict's mirrored reading
        self.mirror_offset_: np.ndarray | None = None
        perm = self._mirror_perm(len(train), self.landmark_names_)
        if perm is not None and tr_items is not None:
            tr_items = [load_image(im) for im in tr_items]  # decoded once: the warps and the mirrors read them
        maps, tr_pts, tr_sizes, groups = self._warped(model, cache, maps, tr_items, tr_pts, tr_sizes, groups, seed,
                                                      rows=warp_rows)
        if perm is not None and tr_items is not None:
            # a mirrored copy of every training image (left and right landmarks swapped), and its warps, in its
            # original's group; first the head without them (the mirror=False fit), which calibrates the copies'
            # labels (mirror.calibrate)
            plain = module.fit(maps, pixels_to_normalised(model, torch.from_numpy(tr_pts), tr_sizes), options,
                               groups=groups, val=val_pair, rng=copy.deepcopy(rng), generator=_copy(gen), seed=seed)
            n0 = len(train)  # the labelled images themselves come first
            flipped = mirror_images([load_image(im) for im in tr_items])  # (tensors already: no decoding)
            fmaps = self._encode(model, flipped).maps
            sizes0, widths = tr_sizes[:n0], [w for _, w in tr_sizes[:n0]]
            self.mirror_offset_ = offset = calibrate_reading(model, plain, fmaps, tr_pts[:n0], sizes0, perm)
            mpts = mirror_points(tr_pts[:n0] + offset, widths, perm)
            mmaps, mpts, msizes, mgroups = self._warped(model, cache, fmaps, flipped, mpts, sizes0, groups[:n0], seed,
                                                        rows=warp_rows)
            maps, tr_pts = torch.cat([maps, mmaps]), np.concatenate([tr_pts, mpts])
            tr_sizes, groups = tr_sizes + msizes, np.concatenate([groups, mgroups])
        targets = pixels_to_normalised(model, torch.from_numpy(tr_pts), tr_sizes)
        self.state_ = module.fit(maps, targets, options, groups=groups, val=val_pair, rng=rng, generator=gen,
                                 seed=seed)
        pairs = self._predict_perm(self.landmark_names_) if perm is None and tr_items is not None else None
        if pairs is not None and tr_items is not None:
            # too many images for mirrored copies (mirror_max): predict's averaging with mirrored images is
            # calibrated on a seeded subset of them, flipped and read by the fitted head
            n0 = len(train)
            rows = np.sort(np.random.default_rng([seed, n0, 2]).choice(n0, min(n0, MIRROR_CALIBRATION), replace=False))
            fmaps = self._encode(model, mirror_images([load_image(tr_items[i]) for i in rows])).maps
            self.mirror_offset_ = calibrate_reading(model, self.state_, fmaps, tr_pts[rows],
                                                   [tr_sizes[i] for i in rows], pairs)
        return self

    def _warped(self, model: HyperlandModel, cache: WarpCache | None, maps: torch.Tensor, items: list | None,
                pts: np.ndarray, sizes: list, groups: np.ndarray, seed: int, *, rows: np.ndarray | None
                ) -> tuple[torch.Tensor, np.ndarray, list, np.ndarray]:
        """The training rows (maps, pixel points, sizes, groups) with ``n_augment`` warped copies of each of the
        images ``rows`` (of the first ``len(items)``; None: no copies) appended, encoded once."""
        if cache is None or items is None or rows is None:
            return maps, pts, sizes, groups
        copies, apts = cache.warped([items[i] for i in rows], pts[rows],
                                    encode=lambda ims: self._encode(model, ims).maps,
                                    encoding=self._encoding_key(model), n=self.n_augment, tps=self.tps,
                                    rotation=self.rotation, scale=self.scale, translate=self.translate, seed=seed)
        return (torch.cat([maps, copies]), np.concatenate([pts, apts]),
                sizes + [sizes[i] for i in rows for _ in range(self.n_augment)],
                np.concatenate([groups, np.repeat(groups[rows], self.n_augment)]))

    def _warp_rows(self, n_train: int, seed: int) -> np.ndarray | None:
        """The training images that get warped copies (sorted indices), None when none does: all with
        ``augment=True``, up to ``augment_max`` with ``"auto"`` (a random subset, drawn from ``seed``, of a larger
        set: the copies' share of the rows shrinks as labels grow, but never to nothing)."""
        if self.n_augment == 0 or self.augment is False or n_train == 0:
            return None
        if self.augment is True or n_train <= self.augment_max:
            return np.arange(n_train)
        if self.augment_max == 0:
            return None
        pick = np.random.default_rng([seed, n_train]).choice(n_train, self.augment_max, replace=False)
        return np.sort(pick)

    def _mirror_perm(self, n_train: int, names: Sequence[str] | None) -> list[int] | None:
        """The landmark permutation of the mirrored copies that a fit on ``n_train`` training images named
        ``names`` adds (:func:`.mirror.resolve`), or None when it adds none."""
        if not set(AUGMENT) <= set(MODULES[self.method].OPTIONS) or n_train > self.mirror_max:
            return None
        return resolve_mirror(self.mirror, names=names, k=self.n_landmarks)

    def reads_images(self, n_labelled: int, *, landmark_names: Sequence[str] | None = None) -> bool:
        """Whether :meth:`fit` on ``n_labelled`` images (named ``landmark_names``) reads the images themselves
        (framing, few-shot warps, mirrored copies) and not only their ``features=``: when False, a caller holding
        the features may pass ``images=None``."""
        module = MODULES[self.method]
        if self.framing != "none":
            return True
        if not set(AUGMENT) <= set(module.OPTIONS):
            return False
        held = round(self.val_fraction * n_labelled) if set(SPLIT) <= set(module.OPTIONS) else 0  # at most
        if self._mirror_perm(n_labelled - held, landmark_names) is not None or self.mirrors_at_predict(landmark_names):
            return True
        return self._warp_rows(max(n_labelled - held, 0), 0) is not None

    def _val_pair(self, model: HyperlandModel, features: Features, pts: np.ndarray, sizes: list,
                  held: np.ndarray, val: ValData | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Validation maps and normalised targets: ``val`` (images or features, points), else the ``held`` ones."""
        if val is not None:
            vx, vp = val
            vf = vx if isinstance(vx, Features) else self._encode(model, vx)
            self._check_features(model, vf)
            maps, vsizes = vf.maps, vf.sizes
            vpts = check_points(vp, n=len(vf), k=self.n_landmarks, what="val points", allow_all_nan=True)
        else:
            maps, vpts, vsizes = features.maps[held], pts[held], [sizes[i] for i in held]
        if not np.isfinite(vpts).any():  # no validation image, or none labelled: keep the last weights
            return None
        return maps, pixels_to_normalised(model, torch.from_numpy(vpts), vsizes)

    @property
    def selection_(self) -> dict[str, Any]:
        """The ridge head's choices on held-out labelled images (head.json ``selection``)."""
        return self.state_.selection  # type: ignore[no-any-return]

    @property
    def history_(self) -> dict[str, Any] | None:
        """The regressor's training record (head.json ``history``)."""
        return self.state_.history  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ inference
    def predict(self, images: Images | None = None, *, model: HyperlandModel | None = None,
                features: Features | None = None, mirror_features: Features | None = None,
                return_confidence: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """(M, K, 2) landmarks in the pixel frame of each image as passed in; with ``return_confidence`` also
        (M, K) confidences in [0, 1] (ridge and prototype heads). A head that averages with mirrored images
        (:meth:`mirrors_at_predict`) reads them from ``images``, or from ``mirror_features``: the features of the
        images flipped left to right (:func:`.mirror.mirror_image`), with ``features``."""
        self._require_fitted()
        model = model or self.model_
        if model.fingerprint != self.fingerprint_ and not getattr(self, "backbone_override_", False):
            raise BackboneMismatchError(f"This head was fitted on backbone {self.fingerprint_}; got "
                                        f"{model.fingerprint}. Pass the model it was fitted with.")
        if self.framing != "none":
            if images is None:
                raise InvalidKeypointsError("A framed head predicts from images (it crops them), not features=.")
            out, conf = predict_framed(self, model, images)
            return (out, self._confidence(conf)) if return_confidence else out
        if features is None:
            if images is None:
                raise InvalidKeypointsError("predict() got neither images nor features.")
            features = self._encode(model, images)
        elif not getattr(self, "backbone_override_", False):
            self._check_features(model, features)
        pts, cf = self._locate(model, features)
        mirror = self._predict_mirror()
        if mirror is not None:
            if mirror_features is None:
                if images is None:
                    raise InvalidKeypointsError(
                        "This head averages each reading with the mirrored image's (mirror_predict="
                        f"{self.mirror_predict!r}): pass the images, or mirror_features= (the features of the images "
                        "flipped left to right: hyperland.heads.mirror.mirror_image), or set mirror_predict=False.")
                mirror_features = self.encode_mirrored(model, as_list(images))
            if len(mirror_features) != len(features):
                raise InvalidKeypointsError(f"Got {len(mirror_features)} mirror_features for {len(features)} images. "
                                            "Expected one per image.")
            self._check_features(model, mirror_features)
            mout, mconf = self._locate(model, mirror_features)
            widths = torch.tensor([w for _, w in features.sizes])
            pts, cf = average_mirrored(pts, cf, mout, mconf, widths, mirror[0], torch.from_numpy(mirror[1]))
        if return_confidence:
            return pts.numpy(), self._confidence(None if cf is None else cf.numpy())
        return pts.numpy()

    def _locate(self, model: HyperlandModel, features: Features) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pixel points (M, K, 2) and confidences (M, K) or None of the fitted state, 256 maps at a time."""
        parts = [self.state_.locate(features.maps[i:i + 256]) for i in range(0, len(features), 256)]  # bounded memory
        out = normalised_to_pixels(model, torch.cat([xy for xy, _ in parts]), features.sizes)
        confs = [c for _, c in parts if c is not None]
        return out, (torch.cat(confs) if len(confs) == len(parts) else None)

    def encode_mirrored(self, model: HyperlandModel, items: list) -> Features:
        """This head's features of ``items`` (images) flipped left to right (:func:`.mirror.mirror_image`, 64
        decoded at a time): the ``mirror_features`` of :meth:`predict`."""
        parts = [self._encode(model, [mirror_image(im) for im in items[i:i + 64]]) for i in range(0, len(items), 64)]
        return replace(parts[0], maps=torch.cat([f.maps for f in parts]), sizes=[s for f in parts for s in f.sizes])

    def _predict_mirror(self) -> tuple[list[int], np.ndarray] | None:
        """(landmark permutation, (K, 2) px calibration offset) when :meth:`predict` averages each reading with the
        mirrored image's, else None."""
        offset = getattr(self, "mirror_offset_", None)
        perm = self._predict_perm(getattr(self, "landmark_names_", None))
        if perm is None or (self.mirror_predict == "auto" and offset is None):
            return None
        return perm, (np.zeros((self.n_landmarks, 2), np.float32) if offset is None else np.asarray(offset, np.float32))

    def mirrors_at_predict(self, landmark_names: Sequence[str] | None) -> bool:
        """Whether a fit of this head on images named ``landmark_names`` may average its readings with mirrored
        images' (``mirror_predict`` not False, left/right pairs known, an unframed head that reads mirrored copies):
        callers that hold precomputed features then also need ``mirror_features`` for :meth:`predict`."""
        return self._predict_perm(landmark_names) is not None

    def _predict_perm(self, landmark_names: Sequence[str] | None) -> list[int] | None:
        """The landmark permutation of :meth:`mirrors_at_predict` (None where it is False)."""
        if self.mirror_predict is False or self.framing != "none" or \
                not set(AUGMENT) <= set(MODULES[self.method].OPTIONS):
            return None
        return resolve_mirror(self.mirror, names=landmark_names, k=self.n_landmarks)

    def _confidence(self, conf: np.ndarray | None) -> np.ndarray:
        if conf is None:
            raise InvalidOptionError(f"return_confidence=True: the {self.method} head has no per-landmark confidence. "
                                     "Use method='ridge' (the default) or 'prototype'.")
        return conf

    def score(self, images: Images | None = None, points: Any = None, *, features: Features | None = None,
              eyes: tuple[int, int] = (0, 1)) -> float:
        """Mean inter-ocular NME in percent (missing landmarks excluded)."""
        pred = self.predict(images, features=features)
        assert isinstance(pred, np.ndarray)
        gt = check_points(points, n=len(pred), k=self.n_landmarks, what="points", allow_all_nan=True)
        return 100.0 * float(nme(pred, gt, eyes=eyes))


def _copy(gen: torch.Generator) -> torch.Generator:
    out = torch.Generator()
    out.set_state(gen.get_state())
    return out


__all__ = ["LandmarkHead"]
