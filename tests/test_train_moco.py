"""MoCo blocks against hand-computed references: queue, momentum update, InfoNCE loss, shuffle-BN groups."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from train_utils import toy_moco

from hyperland.train.moco import MoCo, build_encoder


def _moco(queue: int = 6, groups: int = 1, momentum: float = 0.9) -> MoCo:
    return toy_moco(queue=queue, groups=groups, momentum=momentum)


def test_queue_is_unit_norm_buffer_and_wraps_around() -> None:
    m = _moco(queue=5)
    assert set(dict(m.named_buffers())) >= {"queue", "queue_ptr"}
    assert torch.allclose(m.queue.norm(dim=0), torch.ones(5))
    m.queue_ptr.fill_(3)
    keys = torch.arange(12, dtype=torch.float32).view(4, 3)
    m._enqueue(keys)
    assert m.queue[:, 3].tolist() == [0, 1, 2] and m.queue[:, 4].tolist() == [3, 4, 5]
    assert m.queue[:, 0].tolist() == [6, 7, 8] and m.queue[:, 1].tolist() == [9, 10, 11]
    assert int(m.queue_ptr) == 2


def test_momentum_update_is_ema_of_query_weights() -> None:
    m = _moco(momentum=0.9)
    with torch.no_grad():
        for p in m.encoder_q.parameters():
            p.fill_(1.0)
        for p in m.encoder_k.parameters():
            p.fill_(0.0)
    m._momentum_update()
    assert all(torch.allclose(p, torch.full_like(p, 0.1)) for p in m.encoder_k.parameters())
    assert not any(p.requires_grad for p in m.encoder_k.parameters())


def test_loss_matches_hand_written_infonce() -> None:
    m = _moco(queue=6)
    im_q, im_k = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    queue = m.queue.clone()
    enc = copy.deepcopy(m.encoder_q)  # key encoder == query encoder after the first EMA step from equal weights
    q = F.normalize(enc(im_q), dim=1)
    k = F.normalize(enc(im_k), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], dim=1) / 0.1
    expected = -torch.log_softmax(logits, dim=1)[:, 0].mean()
    loss, stats = m(im_q, im_k, shuffle=torch.Generator().manual_seed(1))
    assert torch.allclose(loss, expected, atol=1e-6)
    assert float(stats["acc"]) == float((logits.argmax(1) == 0).float().mean())
    assert torch.allclose(m.queue[:, :4], k.T, atol=1e-6) and int(m.queue_ptr) == 4
    loss.backward()
    assert m.encoder_q.backbone.conv.weight.grad is not None and m.encoder_k.backbone.conv.weight.grad is None


def test_shuffle_bn_groups_keep_query_and_key_statistics_apart() -> None:
    m = _moco(groups=2)
    x = torch.rand(8, 3, 8, 8)
    enc = copy.deepcopy(m.encoder_k)
    # queries: BN statistics per group of 4
    q = torch.cat([m.encoder_q(x[:4]), m.encoder_q(x[4:])])
    assert not torch.allclose(q, m.encoder_q(x), atol=1e-4)  # grouping changes BN stats, so the check has teeth
    # keys: permuted with the shared generator, encoded per group, un-permuted
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(7))
    mine = x[perm]
    expected = torch.empty(8, 3)
    expected[perm] = F.normalize(torch.cat([enc(mine[:4]), enc(mine[4:])]), dim=1)
    keys = m._keys(x, torch.Generator().manual_seed(7))
    assert torch.allclose(keys, expected, atol=1e-6)


def test_build_encoder_on_timm_backbone_gives_128_d() -> None:
    import timm

    bb = timm.create_model("test_resnet", features_only=True, out_indices=(1, 2, 3, 4))
    enc = build_encoder(bb, feature_dim=128)
    assert enc.head.fc1.in_features == bb.feature_info.channels()[-1] == enc.head.fc1.out_features
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 128)
