"""hyperland: object landmarks from self-supervised hypercolumn features."""

__version__ = "0.1.0"

from .config import ModelConfig  # noqa: E402
from .errors import (  # noqa: E402
    BackboneMismatchError,
    CheckpointError,
    ChecksumMismatchError,
    DatasetError,
    HyperlandError,
    InvalidImageError,
    InvalidKeypointsError,
    InvalidLayerError,
    InvalidOptionError,
    ManifestError,
    ModelNotFoundError,
    NotFittedError,
    OfflineModeError,
    TrainConfigError,
    WeightsMismatchError,
    WeightsNotPublishedError,
)
from . import metrics  # noqa: E402
from .heads import LandmarkHead  # noqa: E402
from .images import load_image  # noqa: E402
from .loading import DEFAULT_MODEL, list_models, load  # noqa: E402
from .manifest import ManifestEntry, load_manifest  # noqa: E402
from .match import match  # noqa: E402
from .model import HyperlandModel  # noqa: E402

__all__ = [
    "DEFAULT_MODEL",
    "BackboneMismatchError",
    "CheckpointError",
    "ChecksumMismatchError",
    "DatasetError",
    "HyperlandError",
    "HyperlandModel",
    "InvalidImageError",
    "InvalidKeypointsError",
    "InvalidLayerError",
    "InvalidOptionError",
    "LandmarkHead",
    "ManifestEntry",
    "ManifestError",
    "ModelConfig",
    "ModelNotFoundError",
    "NotFittedError",
    "OfflineModeError",
    "TrainConfigError",
    "WeightsMismatchError",
    "WeightsNotPublishedError",
    "__version__",
    "list_models",
    "load",
    "load_image",
    "load_manifest",
    "match",
    "metrics",
]
