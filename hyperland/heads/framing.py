"""Framing: find the object in the whole frame, then place its landmarks in a crop around it.

A head with ``framing="object"`` is two heads of the same method fitted from the same labels:

* the **coarse** head reads the whole frame (no border crop, resized to ``frame_size`` pixels: :func:`frame_model`
  is the same backbone with that preprocessing) and finds the object's centre (the centre of its landmarks'
  bounding box, its only landmark: an orientation-free target, unlike the parts themselves);
* the **fine** head reads a square crop centred on the landmarks' bounding box, ``frame_margin`` × the object's
  length (its largest landmark distance) wide, resampled to the model's own input size, so that its grid cells are
  a few pixels of the object rather than of the frame. With ``frame_align`` (the default) every crop is turned to
  one orientation: the labelled shapes are aligned into a reference shape (:func:`reference_shape`, generalised
  Procrustes) and each training crop is turned by its object's orientation relative to it (:func:`orientations`).
  It is fitted on those crops with random shifts and scales (as large as the coarse stage's errors) and rotations
  (± ``frame_rotation`` degrees), at every training-set size, and at prediction it runs twice: on the crop the
  coarse head gives, read in :func:`crop_turns` orientations, then on the crop around each of the most confident
  of those readings (:data:`TURN_CANDIDATES`), turned to its orientation; each frame keeps the best pair.

Crop geometry (pixel centres at integers): crop pixel ``u`` ↔ frame point ``c + side · R(angle) · ((u + 0.5) / S
- 0.5)``; crops are sampled bilinearly from the full-resolution frame (zeros outside it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidKeypointsError
from ..geometry import fit_similarity, similarity_angle
from ..images import Images, as_list, load_image
from .methods import MODULES, reads
from .options import AUGMENT

if TYPE_CHECKING:
    from ..model import HyperlandModel
    from .estimator import LandmarkHead

EXTENT_CLIP = (0.6, 1.6)  # a predicted object length is clipped to this range × the labelled median
FINE_TRANSLATE = 0.25  # the fine head's training crops: shifts of U(±0.25) half-sides (the coarse stage's error)
FINE_SCALE = (0.85, 1.2)  # ... and scales (the object's length as the coarse stage sees it)
ALIGN_ITERATIONS = 5  # generalised Procrustes rounds for the reference shape (frame_align)
FREE_TURNS = 8  # frame_turns="auto" for an object that turns freely: readings 45 degrees apart (within ± 30)
FREE_SPAN = 90.0  # ... which the labelled orientations show by spanning more than this many degrees


def frame_model(model: HyperlandModel, size: int) -> HyperlandModel:
    """The same backbone (projection and PCA) reading the whole frame resized to ``size`` × ``size``, no border."""
    from ..model import HyperlandModel

    view = HyperlandModel(replace(model.config, resize=int(size), border=0), model.backbone,
                          projection=model.projection, pca=model.pca)
    return view.to(model.device)


def centre_extent(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the centre of the labelled points' bounding box (N, 2) and their largest pairwise distance
    (N,), the object's length whatever its orientation; NaN-aware (NaN where no point is labelled)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        c = (np.nanmin(points, axis=1) + np.nanmax(points, axis=1)) / 2
        d = np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)
        ext = np.nanmax(d.reshape(len(points), -1), axis=1)
    return c.astype(np.float32), ext.astype(np.float32)


def boxes(points: np.ndarray, *, margin: float, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop centres (N, 2) and sides (N,) around (N, K, 2) points: the object's length, clipped to
    :data:`EXTENT_CLIP` × ``extent`` (the labelled median), times ``margin``."""
    c, e = centre_extent(points)
    e = np.clip(np.nan_to_num(e, nan=extent), EXTENT_CLIP[0] * extent, EXTENT_CLIP[1] * extent)
    return c, (margin * e).astype(np.float32)


def _frame(centres: np.ndarray, sides: np.ndarray, angles: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2) centres and (N, 2, 2) matrices ``side · R(angle)``: frame = c + M a, a in [-0.5, 0.5]²."""
    t = np.deg2rad(angles)
    cos, sin = np.cos(t), np.sin(t)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (N, 2, 2)
    m = rot * sides[:, None, None]
    return torch.from_numpy(centres).float(), torch.from_numpy(m).float()


def to_crop(points: np.ndarray, centres: np.ndarray, sides: np.ndarray, angles: np.ndarray, size: int) -> np.ndarray:
    """(N, K, 2) frame pixels → crop pixels."""
    c, m = _frame(centres, sides, angles)
    a = torch.linalg.solve(m.unsqueeze(1), (torch.from_numpy(points).float() - c[:, None]).unsqueeze(-1))
    return ((a.squeeze(-1) + 0.5) * size - 0.5).numpy()


def from_crop(points: np.ndarray, centres: np.ndarray, sides: np.ndarray, angles: np.ndarray, size: int) -> np.ndarray:
    """(N, K, 2) crop pixels → frame pixels."""
    c, m = _frame(centres, sides, angles)
    a = (torch.from_numpy(np.asarray(points, np.float32)) + 0.5) / size - 0.5
    return (c[:, None] + torch.einsum("nij,nkj->nki", m, a)).numpy()


def crop(frames: Sequence[torch.Tensor], centres: np.ndarray, sides: np.ndarray, angles: np.ndarray,
         size: int) -> list[torch.Tensor]:
    """Square crops (3, size, size) in [0, 1] of (3, H, W) frames, bilinear, zeros outside the frame."""
    c, m = _frame(centres, sides, angles)
    u = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    a = torch.stack(torch.meshgrid(u, u, indexing="xy"), -1)  # (S, S, 2) as (x, y)
    out = []
    for img, ci, mi in zip(frames, c, m):
        h, w = img.shape[-2:]
        xy = ci + a @ mi.T  # frame pixels (S, S, 2)
        g = torch.stack([(2 * xy[..., 0] + 1) / w - 1, (2 * xy[..., 1] + 1) / h - 1], -1)
        out.append(F.grid_sample(img.unsqueeze(0).float(), g.unsqueeze(0), mode="bilinear", padding_mode="zeros",
                                 align_corners=False)[0])
    return out


def load_frames(images: Images) -> list[torch.Tensor]:
    """Full-resolution (3, H, W) float frames in [0, 1]."""
    return [load_image(im) for im in as_list(images)]


def object_crops(frames: Sequence[torch.Tensor], points: np.ndarray, *, margin: float, extent: float,
                 size: int, angles: np.ndarray | None = None) -> tuple[list[torch.Tensor], np.ndarray]:
    """The crop around every labelled frame's own landmarks, turned by ``angles`` (degrees; None: not turned),
    and the points in it."""
    c, side = boxes(points, margin=margin, extent=extent)
    angles = np.zeros(len(c), np.float32) if angles is None else angles.astype(np.float32)
    return crop(frames, c, side, angles, size), to_crop(points, c, side, angles, size).astype(np.float32)


def _filled(points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, 2) points with NaN as zeros and their (N, K) weights (0 where unlabelled), as torch."""
    known = np.isfinite(points).all(-1)
    return torch.from_numpy(np.where(known[..., None], points, 0.0)).float(), torch.from_numpy(known).float()


def reference_shape(points: np.ndarray, *, iterations: int = ALIGN_ITERATIONS) -> np.ndarray | None:
    """The labelled shapes' mean after similarity alignment (generalised Procrustes), (K, 2), centred, unit RMS
    radius, turned so that the labelled frames' orientations relative to it average 0 (their circular mean): the
    orientation the fine head reads in. None where no frame has two labelled landmarks (no orientation)."""
    x, w = _filled(points)
    complete = w.sum(-1)
    if len(points) == 0 or float(complete.max()) < 2:
        return None
    first = int(complete.argmax())
    ref, known = x[first].clone(), w[first].clone()
    count = w.sum(0)
    for _ in range(iterations):
        ref = _normalised(ref, known)
        aligned = fit_similarity(x, ref.expand_as(x), w * known)
        mean = (w.unsqueeze(-1) * aligned).sum(0) / count.clamp_min(1).unsqueeze(-1)
        ref = torch.where(count.unsqueeze(-1) > 0, mean, ref)
        known = (count > 0).float()
    ref = _normalised(ref, known)
    angle = similarity_angle(ref.expand_as(x), x, w)[complete >= 2]
    t = float(torch.atan2(torch.sin(angle).mean(), torch.cos(angle).mean()))  # the orientations' circular mean
    turn = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (ref @ turn.T).numpy().astype(np.float32)


def _normalised(shape: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``shape`` (K, 2) centred on its ``w``-weighted mean, unit weighted RMS radius."""
    centred = shape - (w.unsqueeze(-1) * shape).sum(0) / w.sum()
    return centred / (w * (centred ** 2).sum(-1)).sum().div(w.sum()).sqrt().clamp_min(1e-12)


def orientations(points: np.ndarray, reference: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Each frame's orientation (N,) in degrees: the angle of the similarity transform that brings ``reference``
    (K, 2) closest to its (N, K, 2) points, each weighted by ``weights`` (N, K) (default 1; 0 where unlabelled);
    0 where fewer than two landmarks are labelled (no orientation)."""
    x, w = _filled(points)
    two = (w.sum(-1) >= 2).numpy()
    if weights is not None:
        w = w * torch.from_numpy(np.nan_to_num(np.asarray(weights, np.float32)))
    ref = torch.from_numpy(reference).float().expand_as(x)
    angle = np.degrees(similarity_angle(ref, x, w).numpy())
    return np.where(two, angle, 0.0).astype(np.float32)


def median_extent(points: np.ndarray) -> float:
    """The median object length of labelled frames (NaN if no frame has two labelled points)."""
    _, e = centre_extent(points)
    e = e[np.isfinite(e) & (e > 0)]
    return float(np.median(e)) if len(e) else math.nan



def fine_crops(frames: Sequence[torch.Tensor], points: np.ndarray, *, margin: float, extent: float, size: int,
               align: bool) -> tuple[list[torch.Tensor], np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The fine head's training crops and the points in them, the reference shape and each frame's orientation
    (None, None unaligned). Aligned (``frame_align``): each labelled object turned to the reference shape's
    orientation, so that the fine head learns one orientation (± ``frame_rotation``) however it turns in the frame."""
    reference = reference_shape(points) if align else None
    angles = None if reference is None else orientations(points, reference)
    crops, crop_points = object_crops(frames, points, margin=margin, extent=extent, size=size, angles=angles)
    return crops, crop_points, reference, angles


def crop_turns(option: int | str, angles: np.ndarray | None) -> int:
    """How many orientations the first fine crop is read in: ``frame_turns``, or for ``"auto"``
    :data:`FREE_TURNS` where the labelled orientations (aligned heads) span more than :data:`FREE_SPAN` degrees (an
    animal seen from above turns freely: openfield's pool spans 178 degrees and never shows the mouse facing
    right), else 1 (faces: their roll, a few degrees, is read by the aligned second pass)."""
    if option != "auto":
        return int(option)
    if angles is None or len(angles) == 0:
        return 1
    return FREE_TURNS if float(np.ptp(angles)) > FREE_SPAN else 1


# ---------------------------------------------------------------------- the framed head
CHUNK = 64  # frames decoded at a time by predict_framed
# the fine head reads the coarse crop in frame_turns_ orientations, then the crop around each of the most confident
# TURN_CANDIDATES readings, turned to its orientation; each frame keeps the pair of readings whose confidences'
# geometric means add up highest. On openfield's validation (pool CV 4 blocks × 3 seeds, orientation CV 2 folds × 3
# seeds, 20 frames; the first readings' mean confidence alone: 5.27 / 10.39 px) 3.15 / 5.46 px; all 8: 3.15 / 5.43
TURN_CANDIDATES = 3
CONF_FLOOR = 1e-3  # added to confidences before their log


def crop_size(head: LandmarkHead, model: HyperlandModel) -> int:
    """The side of the fine head's crops in pixels: ``frame_crop``, else the model's input size."""
    return int(head.frame_crop) if head.frame_crop is not None else int(model.config.input_size)


def stage_models(head: LandmarkHead, model: HyperlandModel) -> tuple[HyperlandModel, HyperlandModel]:
    """The coarse (whole frame) and fine (crop) views of ``model`` for this head, built once per model."""
    cache = getattr(head, "_stage_models", None)
    if cache is None or cache[0] is not model:
        cache = (model, frame_model(model, head.frame_size), frame_model(model, crop_size(head, model)))
        head._stage_models = cache
    return cache[1], cache[2]


def fit_framed(head: LandmarkHead, model: HyperlandModel, images: Images | None, points: np.ndarray, *,
               seed: int) -> None:
    """Fit ``head.coarse_`` on whole frames and ``head.fine_`` on shifted, scaled and rotated crops around the
    labelled landmarks (see the module docstring)."""
    if images is None:
        raise InvalidKeypointsError("framing='object' fits from images (it crops them), not from features=.")
    extent = median_extent(points)
    if not math.isfinite(extent):
        raise InvalidKeypointsError("framing='object' needs at least one image with two labelled landmarks (the "
                                    "object's extent). Label more points, or use framing='none'.")
    coarse_model, fine_model = stage_models(head, model)
    frames = load_frames(images)
    params = {**head.get_params(deep=False), "framing": "none"}
    # the coarse head learns the object's centre only: the one point the fine stage uses, so that its validation
    # choices are made on it (learning the K parts beside it, choices made on all K + 1 points, lost the mouse
    # more often on openfield's validation frames: 15.5 / 7.0 / 47.6 px against 10.5 / 5.3 / 42.6; lfwnet-val,
    # 50 shots: 10.43 against 10.22 NME)
    centre, _ = centre_extent(points)
    # ... under a prior that never rests on its readout alone (frame_prior="mixture": an even mixture with a broad
    # Gaussian around the labelled centres): a readout of absolute position from the whole frame puts the object
    # where the labelled frames had it. Validation, 50-shot / 20- and 60-frame fits: openfield's pool (4 blocks of 20
    # frames held out in turn) 33.5 / 6.7 px -> 19.8 / 6.6 ("shape", no readout at all: 13.3 / 6.6), lfwnet-val
    # 9.63 -> 9.56 NME ("shape": 14.49; whole web images hold other faces, the readout knows which one is labelled)
    cparams = {**params, "n_landmarks": 1}
    if "prior_centre" in reads(head.method) and head.refine is not False:
        cparams["prior_centre"] = head.frame_prior
    # ... chosen, from 50 labelled frames on, on a split that is one run of consecutive labelled frames (frames of
    # one video are alike: a random split keeps each held-out frame's neighbours in training and flatters the
    # readout). Openfield's orientation CV at 60 frames: the coarse centre 30.4 -> 17.3 px off (results.md §6)
    if "val_blocks" in reads(head.method):
        cparams["val_blocks"] = True
    # mirrored copies only where the pairs are given (mirror=[[i, j], ...]), never by name ("auto"): an object
    # anywhere, mirrored, sits elsewhere in the frame and faces the other way. On openfield's pool (4 blocks of 20
    # frames held out in turn) they hurt both stages: 19.8 / 6.6 -> 28.3 / 13.6 px at 20 / 60 frames; in 4 fits of
    # blocks 0 and 3 the coarse centre error was worse in 3, the fine stage mirrored alone in 4 (aflw's crops gain)
    mirrors = set(AUGMENT) <= reads(head.method)
    pairs = mirrors and head.mirror not in (False, "auto")
    if mirrors:
        cparams["mirror"] = [] if pairs else False  # the centre of a mirrored object is the mirror's centre
    coarse = type(head)(**cparams).fit(coarse_model, frames, centre[:, None])
    crops, crop_points, reference, angles = fine_crops(frames, points, margin=head.frame_margin, extent=extent,
                                                        size=crop_size(head, model), align=head.frame_align)
    # geometric augmentation at every training-set size: shifted, scaled and rotated copies of every crop (for
    # the methods that read few-shot warps)
    fine_params = dict(params)
    if mirrors:
        fine_params["mirror"] = head.mirror if pairs else False
        fine_params.update(augment=True, rotation=head.frame_rotation, translate=FINE_TRANSLATE, scale=FINE_SCALE,
                           n_augment=max(2, head.n_augment))
    fine = type(head)(**fine_params).fit(fine_model, crops, crop_points, landmark_names=head.landmark_names_)
    head.coarse_, head.fine_, head.frame_extent_, head.frame_reference_ = coarse, fine, extent, reference
    head.frame_turns_ = crop_turns(head.frame_turns, angles)
    head.model_, head.fingerprint_, head.layers_, head.grid_ = model, model.fingerprint, fine.layers_, fine.grid_
    head.projection_, head.learned_, head.n_features_in_ = None, fine.learned_, fine.n_features_in_


def predict_framed(head: LandmarkHead, model: HyperlandModel, images: Images) -> tuple[np.ndarray, np.ndarray | None]:
    """(M, K, 2) frame pixels and (M, K) confidences (None for the regressor) of a framed head, decoding
    :data:`CHUNK` frames at a time (full-resolution frames are large)."""
    items = as_list(images)
    parts = [_predict_chunk(head, model, items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
    conf = None if parts[0][1] is None else np.concatenate([c for _, c in parts])  # type: ignore[misc]
    return np.concatenate([p for p, _ in parts]), conf


def _read(head: LandmarkHead, fine_model: HyperlandModel, frames: list[torch.Tensor], c: np.ndarray,
          side: np.ndarray, angles: np.ndarray, size: int, with_conf: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The fine head's reading of the crops (centre ``c``, side ``side``, turned by ``angles`` degrees), in frame
    pixels."""
    angles = angles.astype(np.float32)
    out = head.fine_.predict(crop(frames, c, side, angles, size), model=fine_model, return_confidence=with_conf)
    local, conf = out if with_conf else (out, None)
    return from_crop(local, c, side, angles, size), conf


def _score(conf: np.ndarray | None, n: int) -> np.ndarray:
    """(N,) a reading's score: the mean log confidence over landmarks (the geometric mean: one landmark lost to a
    look-alike weighs in, which the arithmetic mean hides); zeros for a method without confidences."""
    if conf is None:
        return np.zeros(n, np.float32)
    return np.nanmean(np.log(np.asarray(conf, np.float32) + CONF_FLOOR), axis=1)


def _predict_chunk(head: LandmarkHead, model: HyperlandModel, items: list) -> tuple[np.ndarray, np.ndarray | None]:
    coarse_model, fine_model = stage_models(head, model)
    frames = load_frames(items)
    n, size = len(frames), crop_size(head, model)
    with_conf = bool(MODULES[head.method].CONFIDENCE)
    reference = head.frame_reference_
    # first pass: the typical object length around the coarse head's object centre, read in ``frame_turns_``
    # orientations (every 45 degrees for 8)
    c = head.coarse_.predict(frames, model=coarse_model)[:, -1]
    side = np.full(n, head.frame_margin * head.frame_extent_, np.float32)
    turns = head.frame_turns_
    firsts = [_read(head, fine_model, frames, c, side, np.full(n, 360.0 * t / turns, np.float32), size, with_conf)
              for t in range(turns)]
    first_points = np.stack([p for p, _ in firsts], 1)  # (N, T, K, 2)
    first_conf = np.stack([cf for _, cf in firsts], 1) if with_conf else None  # type: ignore[misc]  # (N, T, K)
    first_scores = np.stack([_score(cf, n) for _, cf in firsts], 1)  # (N, T)
    # second pass, from each frame's TURN_CANDIDATES most confident first readings: the crop around that reading,
    # turned to its orientation (aligned heads); each frame keeps the pair whose two readings score best together
    ranked = np.argsort(-first_scores, axis=1, kind="stable")[:, :TURN_CANDIDATES if with_conf else 1]
    rows = np.arange(n)
    best_points = best_conf = None
    best = np.full(n, -np.inf)
    for pick in ranked.T:
        points = first_points[rows, pick]
        conf = None if first_conf is None else first_conf[rows, pick]
        c, side = boxes(points, margin=head.frame_margin, extent=head.frame_extent_)
        angles = np.zeros(n, np.float32) if reference is None else orientations(points, reference, conf)
        points, conf = _read(head, fine_model, frames, c, side, angles, size, with_conf)
        score = first_scores[rows, pick] + _score(conf, n)
        better = score > best
        best = np.where(better, score, best)
        best_points = points if best_points is None else np.where(better[:, None, None], points, best_points)
        if conf is not None:
            best_conf = conf if best_conf is None else np.where(better[:, None], conf, best_conf)
    return np.asarray(best_points, np.float32), best_conf


__all__ = ["boxes", "centre_extent", "crop", "crop_size", "crop_turns", "fine_crops", "fit_framed", "frame_model",
           "from_crop", "load_frames", "median_extent", "object_crops", "orientations", "predict_framed",
           "reference_shape", "stage_models", "to_crop"]
