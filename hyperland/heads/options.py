"""The rules of LandmarkHead's options that every method shares, and the pieces the methods' own rules are built of.

A rule is ``(check, expected)``: ``check(value)`` is True for a valid value and ``expected`` says what is valid,
for the error message ("steps=-1. Expected null or an integer >= 1"), as scikit-learn's
``_parameter_constraints``. Each method module (:mod:`.ridge`, :mod:`.regressor`, :mod:`.prototype`) keeps the
rules of the options it reads in its ``OPTIONS``; :data:`COMMON` holds those every method reads (the landmarks,
descriptors and framing), :data:`AUGMENT` and :data:`SPLIT` two groups that some methods read. No torch here: the
CLI lists :data:`METHODS` before it imports anything heavy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidOptionError

Rule = tuple[Callable[[Any], bool], str]

METHODS: tuple[str, ...] = ("ridge", "regressor", "prototype")  # one module each in hyperland.heads
DEFAULT_METHOD = "ridge"  # LandmarkHead's default, and so the CLI's (hyperland fit --method)


def integer(lo: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def number(lo: float, *, strict: bool = False, hi: float = math.inf) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and (v > lo if strict else v >= lo) and v < hi)
    return ok


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def layer_list(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and len(v) > 0 and all(integer(0)(i) for i in v))


def _mirror(v: Any) -> bool:
    """``False``, ``"auto"`` or a list of [i, j] landmark index pairs (i != j, no index twice)."""
    if v is False or v == "auto":
        return True
    if not isinstance(v, (list, tuple)):
        return False
    flat = [i for p in v if isinstance(p, (list, tuple)) and len(p) == 2 for i in p]
    return (len(flat) == 2 * len(v) and all(integer(0)(i) for i in flat) and len(flat) == len(set(flat)))


def _scale(v: Any) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 2 and all(number(0.0, strict=True)(x) for x in v)
            and v[0] <= v[1])


COMMON: dict[str, Rule] = {
    "n_landmarks": (integer(1), "an integer >= 1 (the number of landmarks K)"),
    "method": (lambda v: v in METHODS, f"one of {list(METHODS)}"),
    "layers": (layer_list, "null or a non-empty list of feature indices such as [1, 2, 3, 4]"),
    "descriptor": (lambda v: v in ("auto", "model_pca", "learned", "pca"), '"auto", "model_pca", "learned" or "pca"'),
    "n_components": (optional(integer(1)), "null or an integer >= 1"),
    "pool": (optional(integer(1)), "null (1 for the ridge head, 2 otherwise) or an integer >= 1"),
    "grid": (optional(integer(1)), "null (the finest layer's grid) or an integer >= 1 (cells per side, e.g. 48)"),
    "framing": (lambda v: v in ("none", "object"), '"none" or "object"'),
    "frame_size": (integer(32), "an integer >= 32 (pixels of the whole frame the coarse head reads)"),
    "frame_margin": (number(0.0, strict=True), "a number > 0 (crop side / the object's length)"),
    "frame_rotation": (number(0.0, hi=180.0 + 1e-9), "a number in [0, 180] (degrees)"),
    "frame_crop": (optional(integer(32)), "null (the model's input size) or an integer >= 32 (pixels)"),
    "frame_prior": (lambda v: v in ("auto", "shape", "mixture"), '"auto", "shape" or "mixture" (the ridge coarse '
                    "head's prior_centre)"),
    "frame_align": (lambda v: isinstance(v, bool), "true or false (fine crops turned to the labelled orientation)"),
    "frame_turns": (lambda v: v == "auto" or integer(1)(v),
                    '"auto" or an integer >= 1 (orientations the first crop is read in: 1, or 8 for every 45 degrees)'),
    "random_state": (optional(integer(0)), "null or an integer >= 0"),
    "progress": (lambda v: v is None or isinstance(v, bool), "null, true or false"),
}
AUGMENT: dict[str, Rule] = {  # few-shot warped copies of the training images (the front end makes them)
    "augment": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    "augment_max": (integer(0), "an integer >= 0"),
    "n_augment": (integer(0), "an integer >= 0"),
    "tps": (number(0.0), "a number >= 0"),
    "rotation": (number(0.0), "a number >= 0 (degrees)"),
    "scale": (_scale, "two numbers 0 < low <= high, e.g. [0.9, 1.1]"),
    "translate": (number(0.0), "a number >= 0 (fraction of the half-side)"),
    "mirror": (_mirror, 'false, "auto" (left/right pairs from the landmark names) or a list of [i, j] '
               "landmark index pairs that swap in a mirrored image"),
    "mirror_max": (integer(0), "an integer >= 0 (fits on more labelled images add no mirrored copies)"),
    "mirror_predict": (lambda v: isinstance(v, bool) or v == "auto",
                       'true, false or "auto" (average each reading with the mirrored image\'s: "auto" where the fit '
                       "added mirrored copies)"),
}
SPLIT: dict[str, Rule] = {  # a validation split of the labelled images (the front end draws it)
    "val_fraction": (number(0.0, hi=1.0), "a number in [0, 1)"),
    "min_val": (integer(0), "an integer >= 0"),
}
SOFTMAX_SCALE: Rule = (number(0.0, strict=True), "a number > 0")


def check_rules(params: Mapping[str, Any], rules: Mapping[str, Rule], *, where: str) -> None:
    """InvalidOptionError for the first name of ``params`` not in ``rules``, or the first value its rule refuses."""
    if not isinstance(params, Mapping):
        raise InvalidOptionError(f"{where}: expected an object of hyperparameters, got {type(params).__name__}.")
    unknown = sorted(set(params) - set(rules))
    if unknown:
        raise InvalidOptionError(f"{where}: unknown option(s) {unknown}. Known: {sorted(rules)}.")
    for name, value in params.items():
        check, expected = rules[name]
        if not check(value):
            raise InvalidOptionError(f"{where}: {name}={value!r}. Expected {expected}.")


__all__ = ["AUGMENT", "COMMON", "DEFAULT_METHOD", "METHODS", "SOFTMAX_SCALE", "SPLIT", "Rule", "boolean",
           "check_rules", "integer", "layer_list", "number", "optional"]
