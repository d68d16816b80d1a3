"""Where a saved head's model lives: the ``model`` record of head.json, written at save and resolved at load.

The record is ``{"source", "name", "resize", "border"}``: ``source`` is what :func:`hyperland.load` reads (a
manifest name, ``hf-hub:org/name@commit``, ``timm:ARCH`` or a model directory), ``resize``/``border`` the
preprocessing the head was fitted with (``load(..., resize=, border=)`` may have changed them). A model directory
is stored relative to the head's folder (``../models/adapted``), so that a project folder can move as a whole and
no machine path ends up in a shared head; only a directory on another drive stays absolute. The backbone's
fingerprint (head.json ``fingerprint``) is checked after loading, so a reference that now names other weights
is refused rather than used. Heads saved before this record (hyperland <= 0.1: a bare model name) still resolve.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelNotFoundError

if TYPE_CHECKING:
    from ..model import HyperlandModel

_KEYS = {"source": (str, type(None)), "name": (str,), "resize": (int,), "border": (int,)}


def model_reference(model: HyperlandModel, head_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``model`` record of head.json for a head saved into ``head_dir``."""
    source = getattr(model, "source", None)
    if source is not None and os.path.isabs(source):
        try:
            source = Path(os.path.relpath(source, Path(head_dir).resolve())).as_posix()
            source = source if source.startswith(".") or "/" in source else f"./{source}"  # never a bare name
        except ValueError:  # another drive (Windows): keep the absolute path
            pass
    return {"source": source, "name": model.name, "resize": model.config.resize, "border": model.config.border}


def valid_reference(value: Any) -> bool:
    """head.json ``model``: null, a model name (old heads) or the record written by :func:`model_reference`."""
    if value is None or (isinstance(value, str) and value):
        return True
    return (isinstance(value, dict) and set(value) == set(_KEYS)
            and all(isinstance(value[k], t) and not isinstance(value[k], bool) for k, t in _KEYS.items())
            and (value["source"] is None or bool(value["source"])) and bool(value["name"]))


def recorded_source(value: Any, head_dir: str | os.PathLike) -> tuple[str | None, dict[str, int]]:
    """(source for :func:`hyperland.load`, its resize/border overrides) from a valid ``model`` record; a relative
    directory is resolved against ``head_dir``."""
    if value is None or isinstance(value, str):
        return value, {}
    source = value["source"]
    if source is not None and not source.startswith(("hf-hub:", "timm:")) and (
            source.startswith(".") or "/" in source or os.sep in source):
        source = os.path.normpath(os.path.join(Path(head_dir).resolve(), source))
    return source, {"resize": value["resize"], "border": value["border"]}


def resolve_model(value: Any, head_dir: str | os.PathLike, *, device: Any = None) -> HyperlandModel:
    """Load the model a head records; an unresolvable record raises ModelNotFoundError naming ``model=`` /
    ``--model``."""
    from ..loading import load

    source, overrides = recorded_source(value, head_dir)
    if source is None:
        raise ModelNotFoundError(f"The head in '{head_dir}' records no loadable model (it was fitted on a model "
                                 "built by hand). Pass the model it was fitted with as model=MODEL.")
    try:
        return load(source, device=device, resize=overrides.get("resize"), border=overrides.get("border"))
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"The head in '{head_dir}' was fitted on model '{source}', which cannot be loaded "
                                 f"here ({exc}) Pass that model explicitly as model=MODEL.") from exc


__all__ = ["model_reference", "recorded_source", "resolve_model", "valid_reference"]
