"""hyperland.augment: warps move images and points together; photometric ops keep range and shape."""

from __future__ import annotations

import math

import pytest
import torch

from hyperland.augment import (
    color_jitter,
    gaussian_blur,
    pca_lighting,
    random_resized_crop,
    random_warp,
    warp,
)
from hyperland.errors import InvalidImageError, InvalidOptionError


def _blob(x: int, y: int, size: int = 96) -> torch.Tensor:
    im = torch.zeros(1, 1, size, size)
    im[0, 0, y - 2:y + 3, x - 2:x + 3] = 1.0
    return im


def _centre(img: torch.Tensor) -> tuple[float, float]:
    w = img[0, 0].clamp_min(0)
    ys, xs = torch.meshgrid(torch.arange(w.shape[0]).float(), torch.arange(w.shape[1]).float(), indexing="ij")
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


def test_identity_warp_is_identity() -> None:
    img = torch.rand(2, 3, 40, 56)
    w = random_warp(2, size=(40, 56), tps=0.0)
    assert torch.allclose(w.images(img), img, atol=1e-5)
    pts = torch.tensor([[[3.0, 4.0], [50.0, 30.0]]] * 2)
    assert torch.allclose(w.points(pts), pts, atol=1e-4)


def test_pure_rotation_moves_points_by_hand_formula() -> None:
    # rotation=90 with scale (1, 1): the only randomness is the angle in (-90, 90); read it back from the affine.
    g = torch.Generator().manual_seed(3)
    w = random_warp(1, size=(101, 101), tps=0.0, rotation=90.0, generator=g)
    a = w.affine[0]
    theta = math.atan2(float(a[1, 0]), float(a[0, 0]))
    p = torch.tensor([[[80.0, 50.0]]])  # 30 px right of the centre (50, 50)
    q = w.points(p)[0, 0]
    # output→source rotates by +theta, so the point moves by -theta around the centre
    expect = (50 + 30 * math.cos(-theta), 50 + 30 * math.sin(-theta))
    assert q[0].item() == pytest.approx(expect[0], abs=1e-3)
    assert q[1].item() == pytest.approx(expect[1], abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_points_follow_image_content(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    w = random_warp(1, size=(96, 96), tps=0.08, rotation=15.0, scale=(0.9, 1.1), translate=0.05, generator=g)
    out = w.images(_blob(40, 50), padding="zeros")
    cx, cy = _centre(out)
    q = w.points(torch.tensor([[[40.0, 50.0]]]))[0, 0]
    assert abs(cx - q[0].item()) < 0.6 and abs(cy - q[1].item()) < 0.6


def test_points_inverse_is_exact_and_nan_kept() -> None:
    g = torch.Generator().manual_seed(0)
    w = random_warp(3, size=(64, 80), tps=0.1, rotation=20.0, scale=(0.8, 1.2), generator=g)
    pts = torch.rand(3, 6, 2, generator=g) * torch.tensor([70.0, 55.0]) + 4
    pts[1, 2] = float("nan")
    q = w.points(pts)
    scale = torch.tensor([80.0, 64.0])
    back = (w.source((2 * q + 1) / scale - 1) + 1) * scale / 2 - 0.5
    ok = ~torch.isnan(pts)
    assert torch.allclose(back[ok], pts[ok], atol=1e-3)
    assert torch.isnan(q[1, 2]).all()


def test_large_images_interpolate_the_source_map_closely(monkeypatch: pytest.MonkeyPatch) -> None:
    # above SOURCE_GRID pixels a side, the map is evaluated on a lattice and interpolated: warp two ramps (their
    # warped values are the source pixel coordinates, bilinear sampling of a ramp being exact) and compare with
    # the map evaluated at every pixel (the lattice made as large as the image)
    import hyperland.augment as aug

    h, w = 300, 420
    ys, xs = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
    ramps = torch.stack([xs, ys]).unsqueeze(0).expand(2, -1, -1, -1)
    warp_ = random_warp(2, size=(h, w), tps=0.1, rotation=30.0, scale=(0.8, 1.2), translate=0.1,
                        generator=torch.Generator().manual_seed(5)).to("cpu")
    warp_ = type(warp_)(warp_.size, warp_.affine.double(), warp_.ctrl.double(), warp_.coef.double())
    approx = warp_.images(ramps)
    monkeypatch.setattr(aug, "SOURCE_GRID", 10_000)
    exact = warp_.images(ramps)
    error = (approx - exact).abs().max()
    assert 0 < error < 0.06  # pixels (tps twice the heads' default); the lattice was really used
    assert w < aug.SOURCE_GRID


def test_seeded_and_batched() -> None:
    img = torch.rand(4, 3, 32, 32)
    a, _ = warp(img, tps=0.05, generator=torch.Generator().manual_seed(7))
    b, _ = warp(img, tps=0.05, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    c, _ = warp(img, tps=0.05, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)


def test_photometric_ranges_and_identities() -> None:
    img = torch.rand(5, 3, 24, 24)
    g = torch.Generator().manual_seed(0)
    for out in (color_jitter(img, hue=0.1, generator=g), pca_lighting(img, generator=g),
                gaussian_blur(img, p=1.0, generator=g)):
        assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
    assert torch.allclose(color_jitter(img, brightness=0, contrast=0, saturation=0), img, atol=1e-6)
    assert torch.equal(gaussian_blur(img, p=0.0), img)
    assert torch.equal(pca_lighting(img, std=0.0), img)
    # a blurred constant image stays constant; blur keeps the mean of a smooth image
    const = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(const, p=1.0), const, atol=1e-6)


def test_random_resized_crop_full_box_is_identity() -> None:
    img = torch.rand(2, 3, 20, 20)
    out = random_resized_crop(img, size=20, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(out, img, atol=1e-5)
    assert random_resized_crop(img, size=(8, 12)).shape == (2, 3, 8, 12)


def test_bad_options() -> None:
    with pytest.raises(InvalidOptionError, match="invalid options"):
        random_warp(2, size=(8, 8), tps=-1.0)
    with pytest.raises(InvalidImageError, match=r"Warp made for 2 images of \(8, 8\)"):
        random_warp(2, size=(8, 8)).images(torch.zeros(2, 3, 9, 8))
