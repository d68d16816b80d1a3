"""Validation of LandmarkHead hyperparameters: one table of rules, used by the constructor (``LandmarkHead(0)``),
by head loading (an edited head.json) and by the CLI (``--options`` / ``--head-options`` JSON, before any
heavy work). Errors name the parameter, the value received and what is expected."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InvalidOptionError, WeightsMismatchError
from .reference import valid_reference

METHODS: tuple[str, ...] = ("ridge", "regressor", "prototype")
DEFAULT_METHOD = "ridge"  # LandmarkHead's default, and so the CLI's (hyperland fit --method)
LOSSES: tuple[str, ...] = ("mse", "smooth_l1")  # the regressor's losses (heads.regressor.landmark_loss)


def _int(lo: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _num(lo: float, *, strict: bool = False, hi: float = math.inf) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and (v > lo if strict else v >= lo) and v < hi)
    return ok


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _layers(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and all(_int(0)(i) for i in v))


def _betas(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(0.0, hi=1.0)(x) for x in v)


def _scale(v: Any) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(0.0, strict=True)(x) for x in v)
            and v[0] <= v[1])


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_landmarks": (_int(1), "an integer >= 1 (the number of landmarks K)"),
    "method": (lambda v: v in METHODS, f"one of {list(METHODS)}"),
    "layers": (_layers, "null or a non-empty list of feature indices such as [1, 2, 3, 4]"),
    "n_intermediate": (_int(1), "an integer >= 1"),
    "softmax_scale": (_num(0.0, strict=True), "a number > 0"),
    "descriptor": (lambda v: v in ("auto", "learned", "pca"), '"auto", "learned" or "pca"'),
    "readout_grid": (_int(1), "an integer >= 1 (cells)"),
    "refine": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    "n_components": (_optional(_int(1)), "null or an integer >= 1"),
    "pool": (_optional(_int(1)), "null (1 for the ridge head, 2 otherwise) or an integer >= 1"),
    "augment": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    "augment_max": (_int(0), "an integer >= 0"),
    "n_augment": (_int(0), "an integer >= 0"),
    "tps": (_num(0.0), "a number >= 0"),
    "rotation": (_num(0.0), "a number >= 0 (degrees)"),
    "scale": (_scale, "two numbers 0 < low <= high, e.g. [0.9, 1.1]"),
    "translate": (_num(0.0), "a number >= 0 (fraction of the half-side)"),
    "grid": (_optional(_int(1)), "null (the finest layer's grid) or an integer >= 1 (cells per side, e.g. 48)"),
    "epochs": (_optional(_int(1)), "null or an integer >= 1"),
    "epoch_size": (_optional(_int(1)), "null or an integer >= 1 (maps per epoch; few maps are repeated up to it)"),
    "steps": (_optional(_int(1)), "null or an integer >= 1"),
    "batch_size": (_int(1), "an integer >= 1"),
    "lr": (_num(0.0, strict=True), "a number > 0"),
    "weight_decay": (lambda v: v == "auto" or _num(0.0)(v), 'a number >= 0 or "auto"'),
    "betas": (_betas, "two numbers in [0, 1), e.g. [0.9, 0.999] (Adam's betas)"),
    "final_lr": (_num(0.0, hi=1.0 + 1e-12), "a number in [0, 1] (fraction of lr at the end of the cosine)"),
    "loss": (lambda v: v in LOSSES, f"one of {list(LOSSES)}"),
    "loss_scale": (_num(0.0, strict=True), "a number > 0 (multiplies coordinates before the loss)"),
    "val_fraction": (_num(0.0, hi=1.0), "a number in [0, 1)"),
    "min_val": (_int(0), "an integer >= 0"),
    "window": (_optional(_int(1)), "null or an integer >= 1 (cells)"),
    "prior": (_bool, "true or false"),
    "framing": (lambda v: v in ("none", "object"), '"none" or "object"'),
    "frame_size": (_int(32), "an integer >= 32 (pixels of the whole frame the coarse head reads)"),
    "frame_margin": (_num(0.0, strict=True), "a number > 0 (crop side / the object's length)"),
    "frame_rotation": (_num(0.0, hi=180.0 + 1e-9), "a number in [0, 180] (degrees)"),
    "frame_crop": (_optional(_int(32)), "null (the model's input size) or an integer >= 32 (pixels)"),
    "frame_turns": (_int(1), "an integer >= 1 (orientations each crop is read in: 1, or 4 for quarter turns)"),
    "random_state": (_optional(_int(0)), "null or an integer >= 0"),
    "progress": (lambda v: v is None or isinstance(v, bool), "null, true or false"),
}


_COMMON = {"n_landmarks", "method", "layers", "descriptor", "n_components", "pool", "grid", "random_state", "progress",
           "framing", "frame_size", "frame_margin", "frame_rotation", "frame_crop", "frame_turns"}
_AUGMENT = {"augment", "augment_max", "n_augment", "tps", "rotation", "scale", "translate"}
_SPLIT = {"val_fraction", "min_val"}
READS: dict[str, frozenset[str]] = {  # the options each method reads; setting any other one is an error at fit
    "ridge": frozenset(_COMMON | _AUGMENT | {"readout_grid", "refine"}),
    "regressor": frozenset(_COMMON | _AUGMENT | _SPLIT | {
        "n_intermediate", "softmax_scale", "epochs", "epoch_size", "steps", "batch_size", "lr", "weight_decay",
        "betas", "final_lr", "loss", "loss_scale"}),
    "prototype": frozenset(_COMMON | _SPLIT | {"softmax_scale", "window", "prior"}),
}


def check_method_reads(params: Mapping[str, Any], defaults: Mapping[str, Any], *, where: str = "LandmarkHead") -> None:
    """An option set away from its default that the chosen method never reads is an error, not a silent no-op."""
    method = params.get("method", DEFAULT_METHOD)
    unused = sorted(k for k, v in params.items() if k not in READS.get(method, READS[DEFAULT_METHOD])
                    and k in defaults and _normal(v) != _normal(defaults[k]))
    if unused:
        readers = sorted({m for m, reads in READS.items() for k in unused if k in reads})
        raise InvalidOptionError(f"{where}: method={method!r} does not read {unused} (used by method "
                                 f"{' / '.join(repr(m) for m in readers)}). Drop them, or choose that method.")


def _normal(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def option_defaults() -> dict[str, Any]:
    """LandmarkHead's defaults, from its signature."""
    import inspect

    from .estimator import LandmarkHead

    return {name: p.default for name, p in inspect.signature(LandmarkHead).parameters.items()}


def known_params() -> list[str]:
    """The hyperparameter names LandmarkHead accepts (from its signature)."""
    import inspect

    from .estimator import LandmarkHead

    return sorted(inspect.signature(LandmarkHead).parameters)


def check_head_params(params: Mapping[str, Any], *, where: str = "LandmarkHead",
                      known: Sequence[str] | None = None) -> None:
    """Raise InvalidOptionError for the first unknown name (not in ``known``, default the LandmarkHead
    signature) or bad value (by :data:`RULES`) in ``params``."""
    if not isinstance(params, Mapping):
        raise InvalidOptionError(f"{where}: expected an object of hyperparameters, got {type(params).__name__}.")
    known = known_params() if known is None else known
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidOptionError(f"{where}: unknown option(s) {unknown}. Known: {sorted(known)}.")
    for name, value in params.items():
        check, expected = RULES.get(name, (lambda v: True, ""))
        if not check(value):
            raise InvalidOptionError(f"{where}: {name}={value!r}. Expected {expected}.")


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
    types: dict[str, tuple[Callable[[Any], bool], str]] = {
        "params": (lambda v: isinstance(v, dict), "an object"),
        "fingerprint": (lambda v: isinstance(v, str) and bool(v), "a backbone fingerprint string"),
        "layers": (lambda v: _layers(v) and v is not None, "a list of feature indices"),
        "grid": (lambda v: isinstance(v, list) and len(v) == 2 and all(_int(1)(i) for i in v), "[H, W]"),
        "n_features_in": (_int(1), "an integer >= 1"),
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
    optional: dict[str, tuple[Callable[[Any], bool], str]] = {  # may be absent or null in older heads
        "model": (valid_reference, 'a model name or {"source", "name", "resize", "border"}'),
        "explained_variance": (_num(0.0, hi=1.0 + 1e-6), "a number in [0, 1]"),
        "history": (lambda v: isinstance(v, dict), "an object"),
        "learned": (_bool, "true or false"),
        "selection": (lambda v: isinstance(v, dict), "an object"),
    }
    for key, (check, expected) in optional.items():
        if cfg.get(key) is not None and not check(cfg[key]):
            raise bad(f"'{key}' is {cfg[key]!r}; expected null or {expected}")
    sha = cfg.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise bad(f"'weights_sha256' is {sha!r}; expected 64 hex digits")
    try:
        check_head_params(cfg["params"], where=f"{source}: params")
    except InvalidOptionError as exc:
        raise bad(str(exc).removeprefix(f"{source}: ")) from exc


FIT_FLAGS = {"n_landmarks": "the data", "method": "--method", "random_state": "--seed", "progress": "-q/--quiet"}
EVAL_FLAGS = {**FIT_FLAGS, "method": "--methods", "random_state": "--seeds", "layers": "--layers",
              "val_fraction": "the protocol"}


def parse_head_options(text: str | None, *, flag: str, own: Mapping[str, str] = FIT_FLAGS) -> dict[str, Any]:
    """A CLI JSON object of LandmarkHead options (``--options`` / ``--head-options``), checked now. ``own``: the
    options that the command sets itself (name → the flag that sets them), refused in the JSON."""
    if not text:
        return {}
    example = f"Example: {flag} '{{\"n_augment\": 4}}'."
    try:
        opts = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOptionError(f"{flag} is not valid JSON ({exc.msg}): {text!r}. {example}") from exc
    if not isinstance(opts, dict):
        raise InvalidOptionError(f"{flag} must be a JSON object, got {type(opts).__name__}: {text!r}. {example}")
    taken = [f"{k} (set by {own[k]})" for k in opts if k in own]
    if taken:
        raise InvalidOptionError(f"{flag} sets {', '.join(taken)}; drop them from the JSON.")
    check_head_params(opts, where=flag)
    return opts


def check_methods(methods: Sequence[str]) -> None:
    """``hyperland eval --methods`` checked before the dataset is read."""
    if not methods:
        raise InvalidOptionError(f"--methods is empty. Expected a comma-separated list of {list(METHODS)}.")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InvalidOptionError(f"--methods {','.join(methods)}: unknown {bad}. Expected a comma-separated list of "
                                 f"{list(METHODS)}.")


__all__ = [
    "DEFAULT_METHOD",
    "EVAL_FLAGS",
    "FIT_FLAGS",
    "LOSSES",
    "METHODS",
    "READS",
    "RULES",
    "check_head_json",
    "check_head_params",
    "check_method_reads",
    "check_methods",
    "known_params",
    "option_defaults",
    "parse_head_options",
]
