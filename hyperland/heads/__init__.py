"""Landmark heads on hypercolumn descriptors: one module per method, shared geometry, persistence.

* :mod:`.estimator` — :class:`LandmarkHead`, the scikit-learn-style estimator (fit / predict / score / save / load)
* :mod:`.ridge` — the default method: global ridge readout + per-landmark refinement by a cell classifier (:mod:`.cells`)
* :mod:`.regressor` — the DVE-style soft-argmax regressor of the paper's protocol
* :mod:`.paper` — the paper's regressor recipe as an option set (:func:`paper_options`, ``LandmarkHead.paper``)
* :mod:`.geometry` — pixel ↔ normalised coordinates and soft-argmax, shared with :mod:`hyperland.match`
* :mod:`.checks` — input checks, validation splits, few-shot augmentation
* :mod:`.params` — one rule table for every hyperparameter (constructor, saved heads, CLI options)
* :mod:`.io` — ``head.json`` + ``head.safetensors``; :mod:`.persistence` — save / load / Hub / ONNX methods of the head
* :mod:`.onnx_export` — one ONNX graph from images to landmarks (``LandmarkHead.to_onnx``, ``hyperland export``)

``LandmarkHead`` is imported on first use, so that the CLI can check options (:mod:`.params`, no torch) fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .params import METHODS

if TYPE_CHECKING:  # pragma: no cover
    from .estimator import LandmarkHead
    from .paper import paper_options


def __getattr__(name: str) -> Any:
    if name == "LandmarkHead":
        from .estimator import LandmarkHead

        return LandmarkHead
    if name == "paper_options":
        from .paper import paper_options

        return paper_options
    raise AttributeError(f"module 'hyperland.heads' has no attribute {name!r}")


__all__ = ["METHODS", "LandmarkHead", "paper_options"]
