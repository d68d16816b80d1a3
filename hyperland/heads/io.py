"""Save / load a fitted LandmarkHead: ``head.json`` (hyperparameters, backbone fingerprint, shapes, the ridge
head's validated choices) and ``head.safetensors`` (PCA projection; readout + filters, regressor weights or
prototypes). Format 3 holds the ridge head's cell classifier and shape prior; format-1 heads (hyperland 0.1) and
format-2 prototype / regressor heads still load; a format-2 ridge head (development linear filters) is refused
with a message that says how to refit.
The estimator class is passed in, so this module imports no head code at run time (no import cycle)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .._io import atomic_write_bytes, atomic_write_text
from ..errors import BackboneMismatchError, InvalidKeypointsError, WeightsMismatchError
from ..features import Projection
from ..integrity import check_finite, verify_recorded_sha256
from .params import check_head_json
from .reference import model_reference, recorded_source, resolve_model
from .regressor import IntermediateRegressor
from .ridge import Readout

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
    else:
        tensors = _fitted_tensors(head)
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
    }
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": "pt"})
    cfg["weights_sha256"] = hashlib.sha256(data).hexdigest()  # verified by load_head
    atomic_write_bytes(d / HEAD_WEIGHTS, data)
    atomic_write_text(d / HEAD_CONFIG, json.dumps(cfg, indent=2) + "\n")
    return d


def _fitted_tensors(head: LandmarkHead) -> dict[str, torch.Tensor]:
    """The fitted state of a (not framed) head: its PCA projection and its method's tensors."""
    tensors: dict[str, torch.Tensor] = {}
    if head.projection_ is not None:
        tensors["projection.mean"] = head.projection_.mean
        tensors["projection.components"] = head.projection_.components
    if head.method == "ridge":
        tensors["readout.coef"], tensors["readout.intercept"] = head.readout_.coef, head.readout_.intercept
        tensors["classifier"] = head.classifier_
        tensors["prior.mean"], tensors["prior.std"] = head.prior_mean_, head.prior_std_
    elif head.method == "prototype":
        tensors["prototypes"] = head.prototypes_
        tensors["prior.mean"], tensors["prior.std"] = head.prior_mean_, head.prior_std_
    else:
        tensors.update({f"regressor.{k}": v for k, v in head.regressor_.state_dict().items()})
    return tensors


def load_head(cls: type[LandmarkHead], path: str | os.PathLike, *, model: HyperlandModel | None = None,
              device: Any = None, allow_backbone_mismatch: bool = False,
              n_landmarks: int | None = None) -> LandmarkHead:
    """Read a saved head; without ``model``, load the model its head.json records (:mod:`.reference`) on
    ``device``."""
    d = Path(path)
    if not (d / HEAD_CONFIG).is_file() or not (d / HEAD_WEIGHTS).is_file():
        raise WeightsMismatchError(f"'{d}' is not a saved head: expected {HEAD_CONFIG} and {HEAD_WEIGHTS} in it "
                                   "(written by LandmarkHead.save).")
    try:
        cfg = json.loads((d / HEAD_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(d / HEAD_WEIGHTS))
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise WeightsMismatchError(f"Cannot read the head in '{d}' ({exc}). Save it again.") from exc
    if isinstance(cfg, dict) and cfg.get("format") == 2 and isinstance(cfg.get("params"), dict):
        # development heads: their ridge head was refined by linear filters, since replaced by a cell classifier
        if cfg["params"].get("method", "ridge") == "ridge":
            raise WeightsMismatchError(
                f"The ridge head in '{d}' was saved by a development version of hyperland (head format 2, linear "
                "filters), which this version cannot run. Refit it on the same images: "
                "LandmarkHead(...).fit(model, images, points).save(path), or `hyperland fit` on the CLI.")
        cfg["params"].pop("filter_alpha", None)
    check_head_json(cfg, source=d / HEAD_CONFIG, versions=READS_FORMATS)  # format, keys, types, hyperparameters
    verify_recorded_sha256(d / HEAD_WEIGHTS, cfg.get("weights_sha256"), record=d / HEAD_CONFIG)
    check_finite(tensors, path=d / HEAD_WEIGHTS)
    if model is None:
        model = resolve_model(cfg.get("model"), d, device=device)
    params = dict(cfg["params"])
    params["scale"] = tuple(params["scale"])
    if "betas" in params:
        params["betas"] = tuple(params["betas"])
    if cfg["format"] == 1:  # hyperland 0.1: regressor default, PCA descriptors, pool 2
        params.setdefault("method", "regressor")
        params.setdefault("descriptor", "pca")
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
    c = int(cfg["n_features_in"])
    if head.framing != "none":
        return _load_framed(head, d, cfg, tensors, model, allow=allow_backbone_mismatch)
    head.model_, head.projection_, head.layers_ = model, proj, tuple(cfg["layers"])
    head.fingerprint_, head.grid_, head.n_features_in_ = cfg["fingerprint"], tuple(cfg["grid"]), c
    head.learned_ = bool(cfg.get("learned", False))
    if head.method == "ridge":
        names = ("readout.coef", "readout.intercept", "classifier", "prior.mean", "prior.std")
        coef, icpt, clf, pmean, pstd = (tensors.get(n) for n in names)
        sel = cfg.get("selection")
        if coef is None or icpt is None or clf is None or pmean is None or pstd is None \
                or not isinstance(sel, dict) or not {"refine", "centre", "tau", "prior_std", "C"} <= set(sel) \
                or tuple(icpt.shape) != (2 * k,) or coef.shape[0] != 2 * k or tuple(clf.shape) != (c + 1, k + 1) \
                or tuple(pmean.shape) != (k, 2) or tuple(pstd.shape) != (k,):
            raise WeightsMismatchError(f"'{d}': the ridge head's readout/classifier/prior/selection do not match "
                                       f"head.json (K={k}, C={c}). Save it again.")
        head.readout_ = Readout(coef, icpt, list(sel.get("ridge_alpha") or []))
        head.classifier_, head.selection_ = clf, sel
        head.prior_mean_, head.prior_std_ = pmean, pstd
    elif head.method == "prototype":
        protos = tensors.get("prototypes")
        if protos is None or tuple(protos.shape) != (k, c):
            raise WeightsMismatchError(f"'{d}': prototypes of shape {None if protos is None else tuple(protos.shape)}; "
                                       f"head.json says ({k}, {c}).")
        head.prototypes_ = protos
        if "prior.mean" not in tensors or tuple(tensors["prior.mean"].shape) != (k, 2):
            raise WeightsMismatchError(f"'{d}': the prototype head has no (K, 2) 'prior.mean'. Save it again.")
        head.prior_mean_, head.prior_std_ = tensors["prior.mean"], tensors["prior.std"]
    else:
        net = IntermediateRegressor(c, k, n_intermediate=head.n_intermediate, softmax_scale=head.softmax_scale)
        state = {key[len("regressor."):]: v for key, v in tensors.items() if key.startswith("regressor.")}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsMismatchError(f"'{d}': regressor weights do not match head.json (K={k}, C={c}): "
                                       f"{str(exc).splitlines()[0]}") from exc
        head.regressor_ = net.eval()
    if cfg.get("history"):
        head.history_ = cfg["history"]
    head.landmark_names_ = cfg.get("landmarks")  # names for CSV columns etc., or None
    return head


def _load_framed(head: LandmarkHead, d: Path, cfg: dict, tensors: dict[str, torch.Tensor],
                 model: HyperlandModel, *, allow: bool) -> LandmarkHead:
    """A framed head: its coarse and fine heads from the sub-folders, read with the model's two views."""
    from .framing import stage_models

    extent = tensors.get("frame.extent")
    if extent is None or tuple(extent.shape) != (1,):
        raise WeightsMismatchError(f"'{d}': a framed head needs 'frame.extent' in {HEAD_WEIGHTS}. Save it again.")
    coarse_model, fine_model = stage_models(head, model)
    k = head.n_landmarks
    head.coarse_ = load_head(type(head), d / "coarse", model=coarse_model, n_landmarks=k + 1,
                             allow_backbone_mismatch=allow)
    head.fine_ = load_head(type(head), d / "fine", model=fine_model, n_landmarks=k, allow_backbone_mismatch=allow)
    head.frame_extent_ = float(extent[0])
    head.model_, head.fingerprint_, head.projection_ = model, cfg["fingerprint"], None
    head.layers_, head.grid_, head.n_features_in_ = tuple(cfg["layers"]), tuple(cfg["grid"]), int(cfg["n_features_in"])
    head.learned_ = bool(cfg.get("learned", False))
    head.landmark_names_ = cfg.get("landmarks")
    return head


__all__ = ["HEAD_CONFIG", "HEAD_WEIGHTS", "load_head", "save_head"]
