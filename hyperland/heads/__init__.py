"""Landmark heads on hypercolumn descriptors: one module per method, a front end, persistence, baselines.

* :mod:`.estimator` — :class:`LandmarkHead`, the scikit-learn-style front end (fit / predict / score / save / load)
* the methods (:mod:`.methods`: name → module, each owning its options, fit and fitted state):
  :mod:`.ridge` (the default: global ridge readout + per-landmark refinement by a cell classifier, :mod:`.cells`),
  :mod:`.regressor` (the DVE-style soft-argmax regressor of the paper's protocol; :mod:`.paper` its recipe,
  :func:`paper_options`) and :mod:`.prototype` (training-free)
* :mod:`.options` — the rules of the options every method shares (no torch: the CLI reads :data:`METHODS`)
* :mod:`.checks` — input checks, validation splits, few-shot augmentation; :mod:`.framing` — framed heads
* :mod:`.io` — ``head.json`` + ``head.safetensors``; :mod:`.persistence` — save / load / Hub / ONNX methods of the head
* :mod:`.onnx_export` — one ONNX graph from images to landmarks (``LandmarkHead.to_onnx``, ``hyperland export``)
* :mod:`.baselines` — the estimators printed beside every evaluation (mean shape, HOG → ridge, ridge probe,
  pixel classifier)

``LandmarkHead`` is imported on first use, so that the CLI lists the methods without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import DEFAULT_METHOD, METHODS

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


__all__ = ["DEFAULT_METHOD", "METHODS", "LandmarkHead", "paper_options"]
