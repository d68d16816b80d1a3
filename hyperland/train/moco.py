"""MoCo from small blocks — a query encoder (timm backbone + projection head), a momentum key encoder, and a
queue of negatives kept as buffers so that it travels with ``state_dict()`` into every checkpoint — plus the
optional dense equivariant term of :mod:`hyperland.train.dense` on the query backbone's hypercolumn.

The projection head is an MLP (MoCo v2) or, with ``hidden_dim < 0``, one linear layer (MoCo v1, as in the
paper's first stage). The loss is ``moco_weight`` × MoCo InfoNCE + ``dense_weight`` × dense InfoNCE; with
``moco_weight = 0`` the key encoder and the queue are kept (checkpoints keep one layout) but never run.

BatchNorm leakage (MoCo §3.3). A query and its positive key must not share BatchNorm statistics, or the
network can find the positive through the batch statistics instead of the image content. MoCo shuffles the
keys across GPUs ("shuffle BN"); we do the same and extend it to one process:

* the global batch (all ranks) is split into ``world_size × groups`` BN groups; each process encodes its
  queries group by group (each group has its own BN statistics, as if it were one GPU of MoCo);
* the keys are gathered from every rank, permuted by a permutation every rank draws from the same seeded
  generator, encoded group by group on the rank that owns that slice, gathered again and un-permuted.

With one process and ``groups > 1`` this is MoCo's shuffle BN with ``groups`` virtual GPUs; with many
processes and ``groups = 1`` it is exactly MoCo's cross-GPU shuffle. The whole module is wrapped in DDP
from outside (the trainer does it); the distributed calls go through :mod:`hyperland.train.dist`, which
falls back to one process.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidOptionError
from . import dist
from .dense import DenseProjection, dense_loss, hypercolumn


class ProjectionHead(nn.Module):
    """Global average pool + MLP (Linear, ReLU, Linear) → ``out_dim`` (MoCo v2), or one Linear when
    ``hidden_dim`` is 0 here (MoCo v1; :func:`build_encoder` maps ``hidden_dim < 0`` to it)."""

    def __init__(self, in_channels: int, *, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels, hidden_dim) if hidden_dim else None
        self.fc2 = nn.Linear(hidden_dim or in_channels, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(x if self.fc1 is None else F.relu(self.fc1(x), inplace=True))


class Encoder(nn.Module):
    """A timm ``features_only`` backbone and a projection head on its deepest feature map."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])


def build_encoder(backbone: nn.Module, *, feature_dim: int = 128, hidden_dim: int = 0) -> Encoder:
    channels = int(backbone.feature_info.channels()[-1])  # type: ignore[union-attr, operator]
    hidden = 0 if hidden_dim < 0 else (hidden_dim or channels)
    return Encoder(backbone, ProjectionHead(channels, hidden_dim=hidden, out_dim=feature_dim))


def _encode_in_groups(encoder: nn.Module, x: torch.Tensor, groups: int) -> torch.Tensor:
    if groups <= 1 or x.shape[0] <= 1:
        return encoder(x)
    return torch.cat([encoder(part) for part in x.chunk(groups)], dim=0)


def _features_in_groups(backbone: nn.Module, x: torch.Tensor, groups: int) -> list[torch.Tensor]:
    """Every feature map of ``backbone``, each BN group encoded on its own, concatenated per level."""
    if groups <= 1 or x.shape[0] <= 1:
        return list(backbone(x))
    parts = [list(backbone(p)) for p in x.chunk(groups)]
    return [torch.cat(level, dim=0) for level in zip(*parts)]


class MoCo(nn.Module):
    """``forward(im_q, im_k, shuffle=generator)`` → (InfoNCE loss, top-1 accuracy of the positive)."""

    queue: torch.Tensor  # (dim, queue_size) unit keys, buffer
    queue_ptr: torch.Tensor  # () long, buffer

    def __init__(
        self,
        encoder: Encoder,
        *,
        queue_size: int = 4096,
        momentum: float = 0.999,
        temperature: float = 0.07,
        groups: int = 1,
        seed: int = 0,
        moco_weight: float = 1.0,
        dense: DenseTerm | None = None,
    ) -> None:
        super().__init__()
        self.moco_weight = float(moco_weight)
        self.dense_term = dense
        self.dense = dense.projection if dense is not None else None  # registered: trained, checkpointed, exported
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.groups = int(groups)
        self.encoder_q = encoder
        self.encoder_k = copy.deepcopy(encoder)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        dim = int(encoder.head.fc2.out_features)  # type: ignore[union-attr, arg-type]
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size, generator=gen), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        q: list[torch.Tensor] = list(self.encoder_q.parameters())
        k: list[torch.Tensor] = list(self.encoder_k.parameters())
        torch._foreach_mul_(k, self.momentum)
        torch._foreach_add_(k, q, alpha=1.0 - self.momentum)
        # BN running statistics of the key encoder follow its own forward passes, as in MoCo.

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        size = self.queue.shape[1]
        n = min(keys.shape[0], size)
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[:, idx] = keys[-n:].T.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    @torch.no_grad()
    def _keys(self, im_k: torch.Tensor, shuffle: torch.Generator | None) -> torch.Tensor:
        self._momentum_update()
        b = im_k.shape[0]
        r = dist.rank()
        gathered = dist.all_gather_cat(im_k)
        total = gathered.shape[0]
        perm = torch.randperm(total, generator=shuffle).to(im_k.device)
        mine = gathered[perm[r * b:(r + 1) * b]]
        keys = F.normalize(_encode_in_groups(self.encoder_k, mine, self.groups).float(), dim=1)
        all_keys = keys.new_empty((total, keys.shape[1]))
        all_keys[perm] = dist.all_gather_cat(keys)
        return all_keys  # (total, dim), in the order of the gathered batch

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor, *, shuffle: torch.Generator | None = None,
                src_q: torch.Tensor | None = None, src_k: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted loss, detached statistics). ``shuffle`` must be seeded identically on every rank (the key
        permutation is shared); ``src_q``/``src_k`` are the views' cell source coordinates (dense term only)."""
        feats = _features_in_groups(self.encoder_q.backbone, im_q, self.groups)
        stats: dict[str, torch.Tensor] = {}
        loss = im_q.new_zeros((), dtype=torch.float32)
        if self.moco_weight > 0:
            q = F.normalize(self.encoder_q.head(feats[-1]).float(), dim=1)
            all_keys = self._keys(im_k, shuffle)
            b, r = im_q.shape[0], dist.rank()
            k = all_keys[r * b:(r + 1) * b]
            l_pos = (q * k).sum(dim=1, keepdim=True)
            l_neg = q @ self.queue.clone().detach()
            logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
            labels = torch.zeros(b, dtype=torch.long, device=q.device)
            moco = F.cross_entropy(logits, labels)
            stats["moco_loss"] = moco.detach()
            stats["acc"] = (logits.detach().argmax(dim=1) == 0).float().mean()
            self._enqueue(all_keys)
            loss = loss + self.moco_weight * moco
        if self.dense_term is not None:
            if src_q is None or src_k is None:
                raise InvalidOptionError("MoCo has a dense term (dense_weight > 0) but forward() got no "
                                         "src_q=/src_k=. Pass the views' cell source coordinates, as "
                                         "ViewAugment(...)(batch, grid=...) returns them.")
            t = self.dense_term
            feats_k = _features_in_groups(self.encoder_q.backbone, im_k, self.groups)
            fa, fb = t.describe(feats), t.describe(feats_k)
            d_loss, d_acc = dense_loss(fa, fb, src_q, src_k, points=t.points, temperature=t.temperature,
                                       other_images=t.other_images, generator=generator)
            stats["dense_loss"], stats["dense_acc"] = d_loss.detach(), d_acc.detach()
            loss = loss + t.weight * d_loss
        return loss, stats


class DenseTerm:
    """Settings of the dense term and its projection (a plain holder: the projection is registered on MoCo)."""

    def __init__(self, projection: DenseProjection, *, positions: tuple[int, ...], weight: float, points: int,
                 temperature: float, other_images: int) -> None:
        self.projection = projection
        self.positions = positions  # positions of the dense layers in the backbone's feature list
        self.weight = float(weight)
        self.points = int(points)
        self.temperature = float(temperature)
        self.other_images = int(other_images)

    def describe(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.projection(hypercolumn([feats[i] for i in self.positions]))


__all__ = ["DenseTerm", "Encoder", "MoCo", "ProjectionHead", "build_encoder"]
