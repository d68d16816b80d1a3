"""Held-out view probes: instance retrieval and dense matching on fixed views of the validation images.

Two views of every validation image are made once per run, by the run's own pipeline (the loader's JPEG noise
and :class:`~hyperland.train.views.ViewAugment`) under a fixed seed, so every epoch is scored on the same views
and the curve is comparable along the run. No queue and no key encoder are involved: the query backbone, in
eval mode, embeds each view as the global average pool of its last feature map, L2-normalised.

* ``retrieval_top1``: share of views whose nearest view of the other set (cosine) is the other view of the
  same image, averaged over both directions (A → B and B → A); chance is 1 / N.
* ``dense_match`` (runs with the dense term): share of view-A cells with a valid partner in view B
  (:func:`hyperland.train.dense.correspondences`) whose nearest view-B cell by the learned dense descriptor
  (``MoCo.dense_term.describe``) lies within one cell (3 × 3) of that partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..errors import ShapeMismatchError
from .config import TrainConfig
from .data import Item
from .dense import correspondences
from .views import TwoViewDataset, ViewAugment, derived_seed

if TYPE_CHECKING:
    from .moco import MoCo

PROBE_STREAM = 0x5052  # derived-seed stream of the probe's views (distinct from training's streams 1-4)
BATCH = 64


@dataclass
class HeldOutViews:
    """Two fixed normalised views (N, 3, S, S) of N images and, for dense matching, each view's cell source
    coordinates (N, grid, grid, 2)."""

    view_a: torch.Tensor
    view_b: torch.Tensor
    src_a: torch.Tensor | None = None
    src_b: torch.Tensor | None = None

    @classmethod
    def build(cls, items: Sequence[Item], config: TrainConfig, *, grid: int | None = None) -> HeldOutViews:
        """Views of ``items`` by the run's augmentation, seeded by ``config.seed`` only."""
        data = TwoViewDataset.from_config(list(items), config)
        raw = torch.stack([data[(0, i)][0] for i in range(len(data))])  # (N, 2, 3, R, R) uint8
        gen = torch.Generator().manual_seed(derived_seed(config.seed, PROBE_STREAM))
        augment = ViewAugment(config)
        a, b = augment(raw[:, 0], generator=gen, grid=grid), augment(raw[:, 1], generator=gen, grid=grid)
        if grid is None:
            return cls(a, b)  # type: ignore[arg-type]
        return cls(a[0], b[0], a[1], b[1])

    def __len__(self) -> int:
        return int(self.view_a.shape[0])

    @torch.no_grad()
    def score(self, moco: MoCo) -> dict[str, float]:
        """``retrieval_top1`` (and ``dense_match`` when these views have cell coordinates and ``moco`` a dense
        term) for the current query backbone; its train/eval mode is restored afterwards."""
        backbone = moco.encoder_q.backbone
        dense = moco.dense_term if self.src_a is not None else None
        device = next(backbone.parameters()).device
        was_training = backbone.training
        backbone.eval()
        emb_a, emb_b, hits, valid = [], [], 0, 0
        try:
            for i in range(0, len(self), BATCH):
                fa = backbone(self.view_a[i:i + BATCH].to(device))
                fb = backbone(self.view_b[i:i + BATCH].to(device))
                emb_a.append(_embed(fa[-1]))
                emb_b.append(_embed(fb[-1]))
                if dense is not None:
                    h, n = _match(dense.describe(fa), dense.describe(fb), self.src_a[i:i + BATCH].to(device),  # type: ignore[index]
                                  self.src_b[i:i + BATCH].to(device))  # type: ignore[index]
                    hits, valid = hits + h, valid + n
        finally:
            backbone.train(was_training)
        sim = torch.cat(emb_a) @ torch.cat(emb_b).T
        target = torch.arange(sim.shape[0], device=sim.device)
        found = int((sim.argmax(1) == target).sum()) + int((sim.argmax(0) == target).sum())
        out: dict[str, float] = {"retrieval_top1": found / (2 * len(self)), "retrieval_n": len(self)}
        if dense is not None:
            out["dense_match"] = hits / max(valid, 1)
        return out


def _embed(last: torch.Tensor) -> torch.Tensor:
    return F.normalize(last.float().mean(dim=(2, 3)), dim=1)


def _match(da: torch.Tensor, db: torch.Tensor, src_a: torch.Tensor, src_b: torch.Tensor) -> tuple[int, int]:
    """(hits, valid cells): view-A cells with a partner whose nearest view-B descriptor is within one cell of it."""
    _b, _d, h, w = da.shape
    if tuple(src_a.shape[1:3]) != (h, w):
        raise ShapeMismatchError(f"Dense descriptors are {h}x{w} but the views' cell grid is "
                                 f"{tuple(src_a.shape[1:3])}: build the views with grid={h}.")
    idx, ok = correspondences(src_a, src_b)  # (B, n), (B, n)
    sim = da.float().flatten(2).transpose(1, 2) @ db.float().flatten(2)  # (B, n, n)
    pred = sim.argmax(dim=2)
    near = ((pred // w - idx // w).abs() <= 1) & ((pred % w - idx % w).abs() <= 1)
    return int((near & ok).sum()), int(ok.sum())


__all__ = ["HeldOutViews"]
