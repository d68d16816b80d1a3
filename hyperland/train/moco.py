"""MoCo v2 from small blocks: a query encoder (timm backbone + projection head), a momentum key encoder, and
a queue of negatives kept as buffers so that it travels with ``state_dict()`` into every checkpoint.

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

from . import dist


class ProjectionHead(nn.Module):
    """Global average pool + MLP (Linear, ReLU, Linear) → ``out_dim`` (MoCo v2)."""

    def __init__(self, in_channels: int, *, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(F.relu(self.fc1(x), inplace=True))


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
    return Encoder(backbone, ProjectionHead(channels, hidden_dim=hidden_dim or channels, out_dim=feature_dim))


def _encode_in_groups(encoder: nn.Module, x: torch.Tensor, groups: int) -> torch.Tensor:
    if groups <= 1 or x.shape[0] <= 1:
        return encoder(x)
    return torch.cat([encoder(part) for part in x.chunk(groups)], dim=0)


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
    ) -> None:
        super().__init__()
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

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor, *, shuffle: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``shuffle`` must be seeded identically on every rank (the key permutation is shared)."""
        q = F.normalize(_encode_in_groups(self.encoder_q, im_q, self.groups).float(), dim=1)
        all_keys = self._keys(im_k, shuffle)
        b, r = im_q.shape[0], dist.rank()
        k = all_keys[r * b:(r + 1) * b]
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue.clone().detach()
        logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
        labels = torch.zeros(b, dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, labels)
        acc = (logits.detach().argmax(dim=1) == 0).float().mean()
        self._enqueue(all_keys)
        return loss, acc


__all__ = ["Encoder", "MoCo", "ProjectionHead", "build_encoder"]
