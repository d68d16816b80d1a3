"""The periodic probe of a training run (every ``probe_every`` epochs, rank 0, one ``{"probe": {...}}`` line in
``RUN/metrics.jsonl``): honest progress signals that, unlike the MoCo loss, do not depend on the queue.

* Landmark probe (:func:`run_probe`, needs labelled validation faces: an MTFL root with ``val_count >= 4``):
  the first half of up to ``probe_images`` validation faces is the labelled set, the second half the test set.
  Reported NME (%): ``head_nme`` — the default :class:`hyperland.heads.LandmarkHead` (ridge readout + refinement;
  no few-shot augmentation, to stay fast) on the model as it would be exported (the dense projection included
  when the run has one); ``ridge_probe_nme`` — RidgeCV on the raw hypercolumn pooled to 8×8
  (:func:`hyperland.heads.baselines.pooled_hypercolumn`; one network pass serves both, :mod:`hyperland.protocol`); ``mean_shape_nme`` — the fit half's mean shape. Faces are the
  validation images resized to ``resize`` × ``resize`` (whole image, or the run's ``data_crop`` box).
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
    from ..model import HyperlandModel

    backbone = create_backbone(config, seed=None)
    backbone.load_state_dict({k: v.detach().float().cpu()
                              for k, v in moco.encoder_q.backbone.state_dict().items()}, strict=True)
    projection = None
    if moco.dense is not None:
        conv = moco.dense.proj
        projection = torch.nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size=1)
        projection.load_state_dict({k: v.detach().float().cpu() for k, v in conv.state_dict().items()}, strict=True)
        config = replace(config, projection_layers=tuple(dense_layers))
    return HyperlandModel(config, backbone, projection=projection)


def run_probe(model: HyperlandModel, samples: list[Sample], *, max_images: int = 200) -> dict[str, Any] | None:
    """Landmark NME (%) of the default head, the ridge probe and the mean shape on the second half of
    ``samples[:max_images]``, fitted on the first half; None (logged once) with fewer than 4 samples."""
    if len(samples) < 4 or max_images < 4:
        _skip(_NO_LANDMARKS)
        return None
    from ..data import load_samples
    from ..features import projection_sample
    from ..geometry import normalised_to_pixels, pixels_to_normalised
    from ..heads import LandmarkHead
    from ..heads.ridge import fit_readout
    from ..metrics import nme
    from ..protocol import Descriptor, extract_once

    t0 = time.perf_counter()
    samples = samples[:max_images]
    half = len(samples) // 2
    size = model.config.resize
    fit_imgs, fit_pts = load_samples(samples[:half], size=size)
    test_imgs, test_pts = load_samples(samples[half:], size=size)
    fit_sizes, test_sizes = [(size, size)] * len(fit_imgs), [(size, size)] * len(test_imgs)

    head = LandmarkHead(fit_pts.shape[1], augment=False, random_state=0, progress=False)
    # one network pass for the head's descriptors (its PCA, if any, fitted on the fit half as head.fit would)
    # and the ridge probe's pooled hypercolumn
    desc = Descriptor(head.uses_learned(model), head.pool_)
    rng = np.random.default_rng(0)
    ex = extract_once(model, [*fit_imgs, *test_imgs], descriptors=[desc], probe=True,
                      pca_on=projection_sample(half, rng=rng), pca_rng=rng, n_components=head.n_components or 0,
                      progress=False)
    feats, x = ex.descriptors[desc], ex.probe
    assert x is not None
    head.fit(model, fit_imgs, fit_pts, features=feats[:half])
    head_nme = head.score(None, test_pts, features=feats[half:])

    fit_norm = pixels_to_normalised(model, torch.from_numpy(fit_pts).float(), fit_sizes)
    ridge = normalised_to_pixels(model, fit_readout(x[:half], fit_norm)(x[half:]), test_sizes).numpy()
    mean_shape = np.broadcast_to(np.nanmean(fit_pts, axis=0), test_pts.shape)
    return {"head_nme": float(head_nme), "ridge_probe_nme": 100.0 * float(nme(ridge, test_pts)),
            "mean_shape_nme": 100.0 * float(nme(mean_shape, test_pts)), "n_fit": half,
            "n_test": len(samples) - half, "landmark_seconds": round(time.perf_counter() - t0, 2)}


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
            model = snapshot_model(moco, self.model_config, dense_layers=tuple(self.config.dense_layers))
            record.update(run_probe(model, self.split.val_samples, max_images=self.config.probe_images) or {})
        else:
            _skip(_NO_LANDMARKS)
        return record or None


__all__ = ["Probe", "run_probe", "snapshot_model"]
