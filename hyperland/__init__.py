"""hyperland: object landmarks from self-supervised hypercolumn features.

The public names below are imported on first use (PEP 562), so that ``import hyperland`` and the CLI's
``--help`` / ``--version`` / ``models`` do not import torch, timm or scikit-learn.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from . import errors
from ._defaults import DEFAULT_MODEL
from .errors import *  # noqa: F403  (the error classes; errors.__all__ is the one list of them)

_LAZY = {
    "ModelConfig": "config", "LandmarkHead": "heads", "load_image": "images", "list_models": "loading",
    "load": "loading", "ManifestEntry": "manifest", "load_manifest": "manifest", "HyperlandModel": "model",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import metrics
    from .config import ModelConfig
    from .heads import LandmarkHead
    from .images import load_image
    from .loading import list_models, load
    from .manifest import ManifestEntry, load_manifest
    from .match import match
    from .model import HyperlandModel


def __getattr__(name: str) -> Any:
    if name == "metrics":
        return importlib.import_module(".metrics", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hyperland' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"metrics", "match"})


class _Package(types.ModuleType):
    """``hyperland.match`` is the function, as with eager imports, although a submodule of that name exists:
    importing the submodule sets the package attribute, which this property ignores."""

    @property
    def match(self) -> Any:
        from .match import match

        return match

    @match.setter
    def match(self, value: Any) -> None:
        pass


sys.modules[__name__].__class__ = _Package


__all__ = [
    "DEFAULT_MODEL",
    "HyperlandModel",
    "LandmarkHead",
    "ManifestEntry",
    "ModelConfig",
    "__version__",
    "list_models",
    "load",
    "load_image",
    "load_manifest",
    "match",
    "metrics",
]
__all__ += errors.__all__
