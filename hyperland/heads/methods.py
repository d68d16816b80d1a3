"""The head methods by name, and the option rules of the whole head derived from them.

Every method is a module with the same parts (scikit-learn's one module per estimator):

* ``OPTIONS`` — the rules of the options it reads besides :data:`.options.COMMON`;
* ``fit(maps, targets, options, *, groups, val, rng, generator, seed) -> State`` on descriptor maps and
  normalised targets (the front end, :class:`.estimator.LandmarkHead`, encodes, splits and augments);
* ``State`` — the fitted state: ``locate(maps) -> (points, confidence | None)`` (torch only, also run by the
  ONNX graph), ``tensors()`` and ``State.from_tensors(tensors, cfg, options=, where=)`` for head.safetensors;
* ``POOL`` (the default pooling of its descriptor grid), ``CONFIDENCE`` (whether ``locate`` returns one) and
  ``FORMATS`` (the head formats that hold its state).

An option that the chosen method does not read is an error (:func:`check_reads`), not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..errors import InvalidOptionError
from . import prototype, regressor, ridge
from .options import COMMON, DEFAULT_METHOD, METHODS, Rule, check_rules

MODULES: dict[str, ModuleType] = {"ridge": ridge, "regressor": regressor, "prototype": prototype}
RULES: dict[str, Rule] = {**COMMON}  # every option of LandmarkHead (a test checks them against its signature)
for _module in MODULES.values():
    RULES.update(_module.OPTIONS)


def reads(name: str) -> frozenset[str]:
    """The options that method ``name`` reads."""
    return frozenset(COMMON) | frozenset(MODULES[name].OPTIONS)


def check_params(params: Mapping[str, Any], *, where: str = "LandmarkHead") -> None:
    """InvalidOptionError for the first unknown option or bad value in ``params`` (any subset of the options)."""
    check_rules(params, RULES, where=where)


def check_reads(params: Mapping[str, Any], *, defaults: Mapping[str, Any], where: str = "LandmarkHead") -> None:
    """An option set away from its default that the chosen method never reads is an error, not a silent no-op."""
    name = params.get("method", DEFAULT_METHOD)
    own = reads(name if name in MODULES else DEFAULT_METHOD)
    unused = sorted(k for k, v in params.items() if k not in own and k in defaults
                    and _normal(v) != _normal(defaults[k]))
    if unused:
        readers = sorted(m for m in METHODS if any(k in reads(m) for k in unused))
        raise InvalidOptionError(f"{where}: method={name!r} does not read {unused} (used by method "
                                 f"{' / '.join(repr(m) for m in readers)}). Drop them, or choose that method.")


def _normal(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


__all__ = ["MODULES", "RULES", "check_params", "check_reads", "reads"]
