"""Typed exceptions. Every message says what was received, what was expected and how to fix it."""

from __future__ import annotations

from typing import Any


class HyperlandError(Exception):
    """Base class of every error hyperland raises on purpose."""


class ModelNotFoundError(HyperlandError, LookupError):
    """A model name, repo or directory that does not resolve to a model."""


class WeightsNotPublishedError(ModelNotFoundError):
    """A manifest entry whose weights are not published yet; the message says how to reproduce them."""


class OfflineModeError(ModelNotFoundError):
    """Offline (HF_HUB_OFFLINE / local_files_only) and the files are not in the cache."""


class HeadNotFoundError(HyperlandError, LookupError):
    """A path that holds no saved head (no head.json + head.safetensors)."""


class ChecksumMismatchError(HyperlandError):
    """A file whose sha256 differs from the pinned or recorded one: a download (the bad file is removed from the
    cache), a model folder's model.safetensors (config.json) or a saved head's head.safetensors (head.json)."""


class ManifestError(HyperlandError, ValueError):
    """weights_manifest.json (or a model config.json) failed validation."""


class WeightsMismatchError(HyperlandError):
    """A weights file whose keys or shapes do not match the architecture (strict loading)."""


class InvalidImageError(HyperlandError, ValueError):
    """An image that cannot be read or has the wrong shape, type or values."""


class InvalidKeypointsError(HyperlandError, ValueError):
    """Keypoints of the wrong shape, count or values."""


class InvalidLayerError(HyperlandError, ValueError):
    """Feature layers that the architecture does not have."""


class InvalidOptionError(HyperlandError, ValueError):
    """An option value outside its allowed set or range (normalize=, batch_size=, ...), options that exclude each
    other, or a command-line flag of that kind."""


class ShapeMismatchError(HyperlandError, ValueError):
    """Tensors whose shapes (or dtypes) disagree with each other or with those declared before them (a streamed
    file's rows, dense descriptors and their cells' coordinates)."""


class NotFittedError(HyperlandError, AttributeError):
    """A head used before fit(). Subclasses AttributeError like scikit-learn's NotFittedError."""


class BackboneMismatchError(HyperlandError):
    """A head loaded with a different backbone than it was fitted on."""


class DatasetError(HyperlandError, ValueError):
    """An annotation file or dataset layout that cannot be read."""


class CheckpointError(HyperlandError):
    """A training checkpoint or run directory that cannot be resumed or exported."""


class TrainConfigError(HyperlandError, ValueError):
    """A training recipe, config file or flag with an invalid value."""


class OutputError(HyperlandError, OSError):
    """An output file or folder that cannot be written (disk full, permissions, a file where a folder belongs)."""


class ExportError(HyperlandError):
    """A fitted head that cannot be exported (e.g. to ONNX), or whose exported graph disagrees with it."""


class MissingDependencyError(HyperlandError, ImportError):
    """An optional dependency (an extra such as ``hyperland[viz]``) that a feature needs is not installed."""


__all__ = [
    "BackboneMismatchError",
    "CheckpointError",
    "ChecksumMismatchError",
    "DatasetError",
    "ExportError",
    "HeadNotFoundError",
    "HyperlandError",
    "InvalidImageError",
    "InvalidKeypointsError",
    "InvalidLayerError",
    "InvalidOptionError",
    "ManifestError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NotFittedError",
    "OfflineModeError",
    "OutputError",
    "ShapeMismatchError",
    "TrainConfigError",
    "WeightsMismatchError",
    "WeightsNotPublishedError",
]


def optional_import(module: str, *, needed_for: str, name: str, extra: str, package: str) -> Any:
    """``module`` imported, or a MissingDependencyError that says what needs it and how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{needed_for} needs {name}, which is not installed. Install it with "
                                     f'pip install "hyperland[{extra}]" (or pip install {package}).') from exc
