"""Save / load a fitted LandmarkHead: ``head.json`` (hyperparameters, backbone fingerprint, shapes, the ridge
head's validated choices, the regressor's history) and ``head.safetensors`` (PCA projection and the method
state's own tensors: ``State.tensors()`` / ``State.from_tensors()`` of the method's module, :mod:`.methods`).
Format 3 holds the ridge head's cell classifier and shape prior; format-1 heads (hyperland 0.1) and format-2
prototype / regressor heads still load; a head format that its method no longer reads (``FORMATS``: a format-2
ridge head had development linear filters) is refused with a message that says how to refit.
The estimator class is passed in: this module imports no estimator code."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .._io import atomic_write_bytes, atomic_write_text
from ..errors import (
    BackboneMismatchError,
    HeadNotFoundError,
    InvalidKeypointsError,
    InvalidOptionError,
    WeightsMismatchError,
)
from ..features import Projection
from ..integrity import check_finite, verify_recorded_sha256
from .framing import crop_turns, stage_models
from .methods import MODULES, check_params
from .options import DEFAULT_METHOD, Rule, boolean, integer, layer_list, number
from .reference import model_reference, recorded_source, resolve_model, valid_reference

if TYPE_CHECKING:
    from ..model import HyperlandModel
    from .estimator import LandmarkHead

logger = logging.getLogger(__name__)
HEAD_CONFIG = "head.json"
HEAD_WEIGHTS = "head.safetensors"
HEAD_FORMAT = 3
READS_FORMATS = (1, 2, 3)


def save_head(head: LandmarkHead, path: str | os.PathLike) -> Path:
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    if head.framing != "none":  # two whole heads in sub-folders; this level keeps the object's extent
        save_head(head.coarse_, d / "coarse")
        save_head(head.fine_, d / "fine")
        tensors = {"frame.extent": torch.tensor([head.frame_extent_], dtype=torch.float32)}
        if head.frame_reference_ is not None:  # the aligned fine head's orientation
            tensors["frame.reference"] = torch.from_numpy(np.asarray(head.frame_reference_, np.float32))
        tensors["frame.turns"] = torch.tensor([head.frame_turns_], dtype=torch.float32)
    else:  # the PCA projection, then the method's state
        tensors = {} if head.projection_ is None else {"projection.mean": head.projection_.mean,
                                                       "projection.components": head.projection_.components}
        tensors.update(head.state_.tensors())
    params = head.get_params()
    params["layers"] = None if params["layers"] is None else list(params["layers"])
    params["scale"] = list(params["scale"])
    params["betas"] = list(params["betas"])
    params.pop("progress", None)  # a display choice of the session that fitted it, not of the head
    cfg: dict[str, Any] = {
        "format": HEAD_FORMAT, "params": params, "fingerprint": head.fingerprint_,
        "model": model_reference(head.model_, d),
        "layers": list(head.layers_), "grid": list(head.grid_), "n_features_in": head.n_features_in_,
        "explained_variance": None if head.projection_ is None else head.projection_.explained,
        "history": getattr(head, "history_", None), "learned": bool(getattr(head, "learned_", False)),
        "selection": getattr(head, "selection_", None), "landmarks": getattr(head, "landmark_names_", None),
        "mirror_offset": (None if getattr(head, "mirror_offset_", None) is None
                          else np.asarray(head.mirror_offset_, np.float32).tolist()),  # what calibrated the copies
    }
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": "pt"})
    cfg["weights_sha256"] = hashlib.sha256(data).hexdigest()  # verified by load_head
    atomic_write_bytes(d / HEAD_WEIGHTS, data)
    atomic_write_text(d / HEAD_CONFIG, json.dumps(cfg, indent=2) + "\n")
    return d


def load_head(cls: type[LandmarkHead], path: str | os.PathLike, *, model: HyperlandModel | None = None,
              device: Any = None, allow_backbone_mismatch: bool = False,
              n_landmarks: int | None = None) -> LandmarkHead:
    """Read a saved head; without ``model``, load the model its head.json records (:mod:`.reference`) on
    ``device``."""
    d = Path(path)
    if not (d / HEAD_CONFIG).is_file() or not (d / HEAD_WEIGHTS).is_file():
        raise HeadNotFoundError(f"'{d}' is not a saved head: expected {HEAD_CONFIG} and {HEAD_WEIGHTS} in it "
                                "(written by LandmarkHead.save or hyperland fit --out).")
    try:
        cfg = json.loads((d / HEAD_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(d / HEAD_WEIGHTS))
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise WeightsMismatchError(f"Cannot read the head in '{d}' ({exc}). Save it again.") from exc
    if isinstance(cfg, dict) and cfg.get("format") == 2 and isinstance(cfg.get("params"), dict):
        cfg["params"].pop("filter_alpha", None)  # development heads: the ridge head's linear filters (refused below)
    check_head_json(cfg, source=d / HEAD_CONFIG, versions=READS_FORMATS)  # format, keys, types, hyperparameters
    params = dict(cfg["params"])
    if cfg["format"] == 1:  # hyperland 0.1: regressor default, PCA descriptors, pool 2
        params.setdefault("method", "regressor")
        params.setdefault("descriptor", "pca")
    method = params.get("method", DEFAULT_METHOD)
    if cfg["format"] not in MODULES[method].FORMATS:
        raise WeightsMismatchError(
            f"The {method} head in '{d}' was saved by an older (development) version of hyperland in head format "
            f"{cfg['format']}, whose {method} head this version cannot run. Refit it on the same images: "
            "LandmarkHead(...).fit(model, images, points).save(path), or `hyperland fit` on the CLI.")
    verify_recorded_sha256(d / HEAD_WEIGHTS, cfg.get("weights_sha256"), record=d / HEAD_CONFIG)
    check_finite(tensors, path=d / HEAD_WEIGHTS)
    if model is None:
        model = resolve_model(cfg.get("model"), d, device=device)
    params["scale"] = tuple(params["scale"])
    if "betas" in params:
        params["betas"] = tuple(params["betas"])
    head = cls(**params)
    k = head.n_landmarks
    if n_landmarks is not None and n_landmarks != k:
        raise InvalidKeypointsError(f"The head in '{d}' predicts {k} landmarks; expected n_landmarks={n_landmarks}.")
    if cfg["fingerprint"] != model.fingerprint:
        source, _ = recorded_source(cfg.get("model"), d)
        msg = (f"The head in '{d}' was fitted on backbone {cfg['fingerprint']} ({source}); the model "
               f"given is {model.fingerprint} ({model.name}).")
        if not allow_backbone_mismatch:
            raise BackboneMismatchError(msg + " Pass the model it was fitted on as model=MODEL, or pass "
                                        "allow_backbone_mismatch=True.")
        logger.warning("%s Loading anyway (allow_backbone_mismatch=True).", msg)
    head.backbone_override_ = allow_backbone_mismatch
    proj = None
    if "projection.components" in tensors:
        proj = Projection(tensors["projection.mean"], tensors["projection.components"],
                          float(cfg.get("explained_variance") or 1.0))
    if head.framing != "none":
        return _load_framed(head, d, cfg, tensors, model, allow=allow_backbone_mismatch)
    head.model_, head.projection_, head.layers_ = model, proj, tuple(cfg["layers"])
    head.fingerprint_, head.grid_ = cfg["fingerprint"], tuple(cfg["grid"])
    head.n_features_in_, head.learned_ = int(cfg["n_features_in"]), bool(cfg.get("learned", False))
    state = MODULES[head.method].State  # the method's fitted state, from its own tensors
    head.state_ = state.from_tensors(tensors, cfg, options=head.get_params(deep=False), where=str(d))
    head.landmark_names_ = cfg.get("landmarks")  # names for CSV columns etc., or None
    offset = cfg.get("mirror_offset")
    head.mirror_offset_ = None if offset is None else np.asarray(offset, np.float32)
    return head


def _load_framed(head: LandmarkHead, d: Path, cfg: dict, tensors: dict[str, torch.Tensor],
                 model: HyperlandModel, *, allow: bool) -> LandmarkHead:
    """A framed head: its coarse and fine heads from the sub-folders, read with the model's two views."""
    extent = tensors.get("frame.extent")
    if extent is None or tuple(extent.shape) != (1,):
        raise WeightsMismatchError(f"'{d}': a framed head needs 'frame.extent' in {HEAD_WEIGHTS}. Save it again.")
    coarse_model, fine_model = stage_models(head, model)
    k = head.n_landmarks
    head.coarse_ = load_head(type(head), d / "coarse", model=coarse_model, allow_backbone_mismatch=allow)
    if head.coarse_.n_landmarks not in (1, k + 1):  # the object's centre (earlier versions: the K parts, then it)
        raise WeightsMismatchError(f"'{d / 'coarse'}' predicts {head.coarse_.n_landmarks} points; a framed head of "
                                   f"{k} landmarks needs a coarse head of 1 (the object's centre). Save it again.")
    head.fine_ = load_head(type(head), d / "fine", model=fine_model, n_landmarks=k, allow_backbone_mismatch=allow)
    head.frame_extent_ = float(extent[0])
    reference = tensors.get("frame.reference")  # absent in heads saved before frame_align: crops read unturned
    if reference is not None and tuple(reference.shape) != (k, 2):
        raise WeightsMismatchError(f"'{d}': 'frame.reference' in {HEAD_WEIGHTS} has shape {tuple(reference.shape)}; "
                                   f"a framed head of {k} landmarks needs ({k}, 2). Save it again.")
    head.frame_reference_ = None if reference is None else reference.numpy().astype(np.float32)
    turns = tensors.get("frame.turns")  # absent before frame_turns="auto": the option itself
    head.frame_turns_ = crop_turns(head.frame_turns, None) if turns is None else int(turns.reshape(-1)[0])
    head.model_, head.fingerprint_, head.projection_ = model, cfg["fingerprint"], None
    head.layers_, head.grid_, head.n_features_in_ = tuple(cfg["layers"]), tuple(cfg["grid"]), int(cfg["n_features_in"])
    head.learned_ = bool(cfg.get("learned", False))
    head.landmark_names_ = cfg.get("landmarks")
    return head


def check_head_json(cfg: Any, *, source: str | os.PathLike, versions: Sequence[int]) -> None:
    """A saved head's head.json (perhaps edited by hand): keys, types and hyperparameters, as one clear error."""
    def bad(what: str) -> WeightsMismatchError:
        return WeightsMismatchError(f"{source}: {what}. This head.json was edited or damaged: restore it, or fit "
                                    "and save the head again.")

    if not isinstance(cfg, dict):
        raise bad(f"expected a JSON object, got {type(cfg).__name__}")
    if cfg.get("format") not in versions:
        raise WeightsMismatchError(f"{source}: head format {cfg.get('format')!r}; this hyperland reads formats "
                                   f"{tuple(versions)}. Refit the head (`hyperland fit`, or LandmarkHead.fit) and "
                                   "save it again with this version.")
    types: dict[str, Rule] = {
        "params": (lambda v: isinstance(v, dict), "an object"),
        "fingerprint": (lambda v: isinstance(v, str) and bool(v), "a backbone fingerprint string"),
        "layers": (lambda v: layer_list(v) and v is not None, "a list of feature indices"),
        "grid": (lambda v: isinstance(v, list) and len(v) == 2 and all(integer(1)(i) for i in v), "[H, W]"),
        "n_features_in": (integer(1), "an integer >= 1"),
    }
    for key, (check, expected) in types.items():
        if key not in cfg:
            raise bad(f"missing key '{key}' ({expected})")
        if not check(cfg[key]):
            raise bad(f"'{key}' is {cfg[key]!r}; expected {expected}")
    names = cfg.get("landmarks")
    k = cfg["params"].get("n_landmarks", 5)
    if names is not None and not (isinstance(names, list) and len(names) == k and all(isinstance(n, str) and n
                                                                                        for n in names)):
        raise bad(f"'landmarks' is {names!r}; expected null or {k} landmark names")
    optional: dict[str, Rule] = {  # may be absent or null in older heads
        "model": (valid_reference, 'a model name or {"source", "name", "resize", "border"}'),
        "explained_variance": (number(0.0, hi=1.0 + 1e-6), "a number in [0, 1]"),
        "history": (lambda v: isinstance(v, dict), "an object"),
        "learned": (boolean, "true or false"),
        "selection": (lambda v: isinstance(v, dict), "an object"),
        "mirror_offset": (lambda v: isinstance(v, list) and len(v) == k and all(
            isinstance(r, list) and len(r) == 2 and all(number(-math.inf)(x) for x in r) for r in v),
            f"{k} [dx, dy] pixel offsets"),
    }
    for key, (check, expected) in optional.items():
        if cfg.get(key) is not None and not check(cfg[key]):
            raise bad(f"'{key}' is {cfg[key]!r}; expected null or {expected}")
    sha = cfg.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise bad(f"'weights_sha256' is {sha!r}; expected 64 hex digits")
    try:
        check_params(cfg["params"], where=f"{source}: params")
    except InvalidOptionError as exc:
        raise bad(str(exc).removeprefix(f"{source}: ")) from exc


__all__ = ["HEAD_CONFIG", "HEAD_WEIGHTS", "check_head_json", "load_head", "save_head"]
