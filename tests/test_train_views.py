"""Worker-side views, the resumable sampler and the device-side face recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hyperland.data import Sample, read_mtfl
from hyperland.data.base import load_sample
from hyperland.train.config import TrainConfig
from hyperland.train.data import Item
from hyperland.train.views import ResumableSampler, TwoViewDataset, ViewAugment


def _items(mtfl_root: Path, n: int = 6) -> list[Item]:
    return [Item(s.image) for s in read_mtfl(mtfl_root, "training")[:n]]


def test_sampler_resumes_mid_epoch_and_splits_ranks() -> None:
    ds = list(range(23))
    full = ResumableSampler(ds, num_replicas=1, rank=0, batch_size=4, seed=3)  # type: ignore[arg-type]
    full.set_epoch(2)
    order = list(full)
    assert full.batches_per_epoch == 5 and len(order) == 20 and all(e == 2 for e, _ in order)
    assert len({i for _, i in order}) == 20
    full.set_epoch(2, skip_batches=3)
    assert list(full) == order[12:] and len(full) == 8
    full.set_epoch(3)
    assert list(full) != order  # a new epoch reshuffles
    ranks = [ResumableSampler(ds, num_replicas=2, rank=r, batch_size=4, seed=3) for r in (0, 1)]  # type: ignore
    for s in ranks:
        s.set_epoch(0)
    a, b = ({i for _, i in s} for s in ranks)
    assert ranks[0].batches_per_epoch == 2 and len(a) == len(b) == 8 and not a & b


def test_views_are_uint8_deterministic_per_epoch_and_index(mtfl_root: Path) -> None:
    ds = TwoViewDataset(_items(mtfl_root), resize=40, jpeg_quality=(30, 60), jpeg_p=1.0, seed=0)
    v, subs = ds[(1, 2)]
    assert v.shape == (2, 3, 40, 40) and v.dtype == torch.uint8 and subs == 0
    assert torch.equal(v, ds[(1, 2)][0])
    assert not torch.equal(v[0], v[1])  # each view gets its own JPEG noise
    assert not torch.equal(v, ds[(2, 2)][0])
    clean = TwoViewDataset(_items(mtfl_root), resize=40, jpeg_p=0.0)[(0, 2)][0]
    with Image.open(_items(mtfl_root)[2].path) as im:  # full decode, then one bilinear resize (no draft)
        ref = np.asarray(im.convert("RGB").resize((40, 40), Image.BILINEAR, reducing_gap=None))
    assert torch.equal(clean[0], torch.from_numpy(ref.copy()).permute(2, 0, 1)) and torch.equal(clean[0], clean[1])
    # JPEG noise stays close to the clean image (quality >= 30), but is not a no-op
    diff = (v[0].float() - clean[0].float()).abs().mean()
    assert 0.5 < float(diff) < 12


def test_unreadable_images_are_replaced_and_counted(mtfl_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    items = _items(mtfl_root, 3)
    ds = TwoViewDataset([items[0], Item(bad), Item(tmp_path / "missing.png"), items[1]], resize=32, jpeg_p=0.0)
    v, subs = ds[(0, 1)]
    assert subs == 2
    assert torch.equal(v, ds[(0, 3)][0])  # the next readable image took its place
    assert ds[(0, 0)][1] == 0


def test_device_recipe_without_randomness_is_resize_crop_normalise() -> None:
    c = TrainConfig(resize=40, border=4, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), color_jitter=0.0,
                    pca_lighting=0.0)
    batch = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    out = ViewAugment(c)(batch, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(c.mean).view(1, 3, 1, 1), torch.tensor(c.std).view(1, 3, 1, 1)
    ref = (batch.float()[..., 4:36, 4:36] / 255 - mean) / std
    assert out.shape == (3, 3, 32, 32)
    assert torch.allclose(out, ref, atol=1e-4)


def test_face_recipe_is_seeded_and_warps_are_optional() -> None:
    batch = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    aug = ViewAugment(TrainConfig(resize=40, border=4))
    a = aug(batch, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, aug(batch, generator=torch.Generator().manual_seed(5)))
    assert not torch.equal(a, aug(batch, generator=torch.Generator().manual_seed(6)))
    warped = ViewAugment(TrainConfig(resize=40, border=4, tps=0.05, rotation=15, scale=(0.9, 1.1)))
    assert warped.geometric and not aug.geometric
    w = warped(batch, generator=torch.Generator().manual_seed(5))
    assert w.shape == a.shape and not torch.allclose(w, a)


def test_box_crop_of_a_large_jpeg_equals_the_evaluation_crop(tmp_path: Path) -> None:
    """Regression: a draft (DCT-scaled) decode cropped with full-resolution box coordinates gave a face in
    the corner of a mostly black view for every image larger than twice the resize."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    arr[200:300, 220:320] = (250, 20, 20)  # a red square inside the box
    path = tmp_path / "big.jpg"
    Image.fromarray(arr).save(path, quality=95)
    box = (180.0, 160.0, 340.0, 320.0)
    view = TwoViewDataset([Item(path, box)], resize=40, jpeg_p=0.0)[(0, 0)][0][0]
    sample = Sample(path, np.zeros((2, 2), np.float32), np.ones(2, bool), box=box)
    ref, _ = load_sample(sample, size=40)
    assert torch.equal(view, torch.from_numpy(np.asarray(ref).copy()).permute(2, 0, 1))
    # the red square (x 220..320, y 200..300 → 10..35, 10..35 in the 40 px view) is where it belongs
    red = (view[0].float() > 180) & (view[1].float() < 90)
    ys, xs = torch.nonzero(red, as_tuple=True)
    assert 9 <= int(xs.min()) and int(xs.max()) <= 36 and 9 <= int(ys.min()) and int(ys.max()) <= 36
    assert float(red.float().mean()) > 0.3


def test_view_grid_maps_each_cell_to_the_input_content_it_shows() -> None:
    """A bright dot moved by crop + rotation + scale + TPS is found where the returned coordinates say."""
    from hyperland.train.config import TrainConfig

    cfg = TrainConfig(resize=64, border=8, crop_scale=(0.6, 1.0), rotation=20.0, scale=(0.85, 1.15), tps=0.04,
                      color_jitter=0.0, pca_lighting=0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    aug = ViewAugment(cfg)
    n = 6
    batch = torch.zeros(n, 3, 64, 64, dtype=torch.uint8)
    dots = [(30, 34), (26, 28), (36, 30), (32, 38), (28, 32), (34, 26)]  # (x, y) input pixels
    for i, (x, y) in enumerate(dots):
        batch[i, :, y - 1:y + 2, x - 1:x + 2] = 255
    out, src = aug(batch, generator=torch.Generator().manual_seed(3), grid=48)  # one cell per output pixel
    assert out.shape == (n, 3, 48, 48) and src.shape == (n, 48, 48, 2)
    for i, (x, y) in enumerate(dots):
        lum = out[i].mean(0)
        assert float(lum.max()) > 0.5, "the dot left the view"
        cy, cx = divmod(int(lum.argmax()), 48)
        sx, sy = ((src[i, cy, cx] + 1) * 64 - 1) / 2  # normalised → input pixels
        assert abs(float(sx) - x) <= 1.6 and abs(float(sy) - y) <= 1.6, (i, float(sx), float(sy), x, y)
