"""The dense equivariant term: correspondences, the masked InfoNCE against a hand-written loop, and training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hyperland.augment import pixel_grid
from hyperland.train.dense import correspondences, dense_loss, hypercolumn
from train_utils import image_list, tiny_config


def test_correspondences_follow_a_known_shift() -> None:
    a = pixel_grid((8, 8), (4, 4)).unsqueeze(0)  # cell centres of a 4x4 grid, normalised
    b = a + torch.tensor([0.5, 0.0])  # view B shows the image shifted by one cell (2 px of 8 → 0.5)
    idx, ok = correspondences(a, b)
    # A's cell (y, x) sits where B's cell (y, x - 1) is; the first column has no partner in B
    for cell in range(16):
        y, x = divmod(cell, 4)
        assert bool(ok[0, cell]) == (x >= 1)
        if x >= 1:
            assert int(idx[0, cell]) == y * 4 + x - 1


def _reference(fa: torch.Tensor, fb: torch.Tensor, t: float) -> float:
    """Loop version for identical grids (positive = same cell), all cells as queries, one other image."""
    b, d, h, w = fa.shape
    total, count = 0.0, 0
    for img in range(b):
        other = (img + 1) % b
        for cell in range(h * w):
            y, x = divmod(cell, w)
            q = fa[img, :, y, x]
            logits = []
            for c2 in range(h * w):
                y2, x2 = divmod(c2, w)
                if c2 != cell and abs(y2 - y) <= 1 and abs(x2 - x) <= 1:
                    continue  # 3x3 neighbours of the positive are not negatives
                logits.append((float(q @ fb[img, :, y2, x2]) / t, c2 == cell))
            logits += [(float(q @ fb[other, :, c2 // w, c2 % w]) / t, False) for c2 in range(h * w)]
            m = max(v for v, _ in logits)
            lse = m + math.log(sum(math.exp(v - m) for v, _ in logits))
            total += lse - next(v for v, pos in logits if pos)
            count += 1
    return total / count


def test_dense_loss_matches_a_hand_written_loop() -> None:
    g = torch.Generator().manual_seed(0)
    fa = F.normalize(torch.randn(2, 5, 4, 4, generator=g), dim=1)
    fb = F.normalize(torch.randn(2, 5, 4, 4, generator=g), dim=1)
    src = pixel_grid((8, 8), (4, 4)).unsqueeze(0).expand(2, -1, -1, -1)
    loss, acc = dense_loss(fa, fb, src, src, points=16, temperature=0.2, other_images=1,
                           generator=torch.Generator().manual_seed(1))
    expected = (_reference(fa, fb, 0.2) + _reference(fb, fa, 0.2)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert 0.0 <= float(acc) <= 1.0
    # identical descriptors in both views: every query finds its own cell
    same, acc_same = dense_loss(fa, fa, src, src, points=16, temperature=0.05)
    assert float(acc_same) == 1.0 and float(same) < float(loss)


def test_hypercolumn_matches_stack_layers() -> None:
    from hyperland.hypercolumn import stack_layers

    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 6, 4, 4, generator=g)]
    ref = stack_layers(feats, size=(8, 8), normalize="l2")
    assert torch.allclose(hypercolumn(feats), ref, atol=1e-5)


def test_dense_training_learns_and_exports_its_projection(mtfl_root: Path, tmp_path: Path) -> None:
    import hyperland
    from hyperland.train.export import export_run
    from hyperland.train.trainer import Trainer

    cfg = tiny_config(image_list(mtfl_root, tmp_path, 16), moco_weight=0.0, dense_weight=1.0, dense_layers=[1, 2],
                      dense_dim=8, dense_points=16, optimizer="adamw", lr=3e-3, epochs=6, rotation=10.0,
                      crop_scale=[0.7, 1.0])
    losses: list[float] = []
    Trainer(cfg, tmp_path / "run").fit(on_step=lambda s, loss: losses.append(loss))
    assert len(losses) == 12 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) < sum(losses[:3])
    out = export_run(tmp_path / "run", tmp_path / "model")
    model = hyperland.load(str(out.directory))
    assert model.projection_layers == (1, 2)
    raw = model.extract(torch.rand(3, 40, 40))
    proj = model.extract(torch.rand(3, 40, 40), projected=True)
    assert raw.shape[0] == model.num_channels() and proj.shape == (8, *raw.shape[1:])
    assert torch.allclose(proj.norm(dim=0), torch.ones(proj.shape[1:]), atol=1e-4)


def test_init_starts_from_a_model_and_refuses_another_architecture(mtfl_root: Path, tmp_path: Path) -> None:
    import hyperland
    from hyperland.errors import TrainConfigError
    from hyperland.train.export import export_run
    from hyperland.train.trainer import build_moco

    data = image_list(mtfl_root, tmp_path, 16)
    cfg = tiny_config(data, moco_weight=0.0, dense_weight=1.0, dense_layers=[1, 2], dense_dim=8, dense_points=16,
                      optimizer="adamw", lr=3e-3, epochs=1)
    from hyperland.train.trainer import Trainer

    Trainer(cfg, tmp_path / "run").fit()
    src = hyperland.load(str(export_run(tmp_path / "run", tmp_path / "m", allow_unfinished=True).directory))
    moco = build_moco(cfg.override(init=str(tmp_path / "m")), 16)
    got = moco.encoder_q.backbone.state_dict()
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(got[k], v), k
    assert moco.dense is not None and torch.equal(moco.dense.proj.weight, src.projection.weight)
    with pytest.raises(TrainConfigError, match="--init"):
        build_moco(cfg.override(init="random-r18"), 16)
