"""hyperland.errors is the one list of error classes; the package exports every one of them."""

from __future__ import annotations

import inspect

import hyperland
from hyperland import errors


def _error_classes() -> set[str]:
    return {name for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, errors.HyperlandError) and obj.__module__ == errors.__name__}


def test_every_error_class_is_listed_and_exported() -> None:
    classes = _error_classes()
    assert "HyperlandError" in classes and "ShapeMismatchError" in classes
    assert set(errors.__all__) == classes
    assert classes <= set(hyperland.__all__)
    for name in classes:
        assert getattr(hyperland, name) is getattr(errors, name)


def test_value_errors_stay_value_errors() -> None:
    """Callers that catch ValueError around bad options, shapes or data keep working."""
    for cls in (errors.InvalidOptionError, errors.ShapeMismatchError, errors.DatasetError,
                errors.TrainConfigError, errors.InvalidImageError, errors.InvalidKeypointsError):
        assert issubclass(cls, ValueError) and issubclass(cls, errors.HyperlandError)
