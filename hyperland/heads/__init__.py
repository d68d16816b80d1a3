"""Landmark heads on hypercolumn descriptors: one module per method, shared geometry, persistence.

* :mod:`.estimator` — :class:`LandmarkHead`, the scikit-learn-style estimator (fit / predict / score / save / load)
* :mod:`.ridge` — the default method: global ridge readout + per-landmark filter refinement
* :mod:`.regressor` — the DVE-style soft-argmax regressor of the paper's protocol
* :mod:`.paper` — the paper's regressor recipe as an option set (:func:`paper_options`, ``LandmarkHead.paper``)
* :mod:`.geometry` — pixel ↔ normalised coordinates and soft-argmax, shared with :mod:`hyperland.match`
* :mod:`.checks` — input checks, validation splits, few-shot augmentation
* :mod:`.io` — ``head.json`` + ``head.safetensors``
"""

from .estimator import METHODS, LandmarkHead
from .paper import paper_options

__all__ = ["METHODS", "LandmarkHead", "paper_options"]
