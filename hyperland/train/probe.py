"""The periodic probe of a training run (every ``probe_every`` epochs, rank 0, one ``{"probe": {...}}`` line in
``RUN/metrics.jsonl``): honest progress signals that, unlike the MoCo loss, do not depend on the queue.

* Landmark probe (:func:`run_probe`, needs labelled validation faces: an MTFL root with ``val_count >= 4``):
  the first half of up to ``probe_images`` validation faces is the labelled set, the second half the test set.
  Reported NME (%): ``head_nme`` — the default :class:`hyperland.heads.LandmarkHead` (ridge readout + refinement;
  no few-shot augmentation, to stay fast) on the model as it would be exported (the dense projection included
  when the run has one, and the descriptor PCA fitted on 512 of its training images that heads read by default:
  :func:`hyperland.train.pca.training_pca`); ``ridge_probe_nme`` — RidgeCV on the raw hypercolumn pooled to 8×8
  (:func:`hyperland.heads.baselines.pooled_hypercolumn`); ``mean_shape_nme`` — the fit half's mean shape: the
  evaluation protocol (:func:`hyperland.evaluate.run_sweep`, one network pass) on one labelled subset. Faces are
  the validation images resized to ``resize`` × ``resize`` (whole image, or the run's ``data_crop`` box).
* Held-out views (:mod:`hyperland.train.retrieval`, any data with ``val_count >= 2``): instance retrieval
  ``retrieval_top1`` and, with the dense term, dense matching ``dense_match`` on two fixed views per image.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..backbone import create_backbone
from ..config import ModelConfig
from .config import TrainConfig
from .data import DataSplit
from .retrieval import HeldOutViews

if TYPE_CHECKING:
    from ..data import Sample
    from ..model import HyperlandModel
    from .moco import MoCo

logger = logging.getLogger(__name__)
_warned: set[str] = set()
_NO_LANDMARKS = ("the landmark probe needs labelled validation faces (an MTFL root with --val-count >= 4 and "
                 "--probe-images >= 4).")


def _skip(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        logger.warning("Probe part skipped: %s", reason)


def snapshot_model(moco: MoCo, config: ModelConfig, *, dense_layers: tuple[int, ...] = ()) -> HyperlandModel:
    """A CPU float32 :class:`HyperlandModel` of the query backbone (and the dense projection, when the run has
    one), as :func:`hyperland.train.export.export_run` would write it; training is not touched."""
    from ..hub import projection_conv
    from ..model import HyperlandModel

    backbone = create_backbone(config, seed=None)
    backbone.load_state_dict({k: v.detach().float().cpu()
                              for k, v in moco.encoder_q.backbone.state_dict().items()}, strict=True)
    projection = None
    if moco.dense is not None:
        proj = moco.dense.proj.state_dict()
        projection = projection_conv(proj["weight"], proj["bias"])
        config = replace(config, projection_layers=tuple(dense_layers))
    return HyperlandModel(config, backbone, projection=projection)


def run_probe(model: HyperlandModel, samples: list[Sample], *, max_images: int = 200) -> dict[str, Any] | None:
    """Landmark NME (%) of the default head, the ridge probe and the mean shape on the second half of
    ``samples[:max_images]``, fitted on the first half (one labelled subset of the evaluation protocol,
    :func:`hyperland.evaluate.run_sweep`); None (logged once) with fewer than 4 samples."""
    if len(samples) < 4 or max_images < 4:
        _skip(_NO_LANDMARKS)
        return None
    from ..evaluate import run_sweep
    from ..protocol import Subset

    t0 = time.perf_counter()
    samples = samples[:max_images]
    half = len(samples) // 2
    [run] = run_sweep(model, samples[:half], samples[half:], subsets=[Subset("all", 0, np.arange(half))],
                      methods=("ridge",), baselines=("mean_shape", "ridge_probe"), image_size=model.config.resize,
                      head_options={"augment": False}, confidence=False, progress=False)
    nme = {r["method"]: float(r["nme"]) for r in run["results"]}
    return {"head_nme": nme["ridge"], "ridge_probe_nme": nme["ridge probe"], "mean_shape_nme": nme["mean shape"],
            "n_fit": half, "n_test": len(samples) - half, "landmark_seconds": round(time.perf_counter() - t0, 2)}


class Probe:
    """Everything the trainer's periodic probe reports, for one run: ``probe(moco)`` → record or None."""

    def __init__(self, config: TrainConfig, split: DataSplit, model_config: ModelConfig, *,
                 dense_grid: int | None = None) -> None:
        self.config = config
        self.split = split
        self.model_config = model_config
        self.dense_grid = dense_grid
        self._views: HeldOutViews | None = None

    def views(self) -> HeldOutViews | None:
        """The fixed held-out views, made on first use (the same for every epoch of the run)."""
        n = min(len(self.split.val), self.config.probe_images)
        if n < 2:
            _skip("held-out retrieval needs validation images (--val-count >= 2 and --probe-images >= 2).")
            return None
        if self._views is None:
            self._views = HeldOutViews.build(self.split.val[:n], self.config, grid=self.dense_grid)
        return self._views

    @torch.no_grad()
    def __call__(self, moco: MoCo) -> dict[str, Any] | None:
        record: dict[str, Any] = {}
        views = self.views()
        if views is not None:
            t0 = time.perf_counter()
            record.update(views.score(moco))
            record["retrieval_seconds"] = round(time.perf_counter() - t0, 2)
        if min(len(self.split.val_samples), self.config.probe_images) >= 4:
            from .pca import PCA_IMAGES, training_pca

            model = snapshot_model(moco, self.model_config, dense_layers=tuple(self.config.dense_layers))
            model = training_pca(model, self.split.train, n_images=PCA_IMAGES)
            record.update(run_probe(model, self.split.val_samples, max_images=self.config.probe_images) or {})
        else:
            _skip(_NO_LANDMARKS)
        return record or None


__all__ = ["Probe", "run_probe", "snapshot_model"]
