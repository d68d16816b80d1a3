"""hyperland.hypercolumn: pure tensor functions checked against hand-written references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hyperland.hypercolumn import (
    check_normalize,
    grid_centers,
    resize_bilinear,
    resize_into,
    sample_layers,
    stack_layers,
)


def _maps(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, s, s, generator=g) for c, s in ((4, 8), (6, 4), (3, 2))]


def _reference(maps, size, l2):
    parts = []
    for f in maps:
        r = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
        if l2:
            r = r / r.norm(dim=1, keepdim=True)
        parts.append(r)
    return torch.cat(parts, dim=1)


@pytest.mark.parametrize("size", [(8, 8), (5, 11), (16, 16)])
@pytest.mark.parametrize("l2", [False, True])
def test_stack_layers_matches_interpolate_and_concat(size, l2):
    maps = _maps()
    out = stack_layers(maps, size=size, normalize="l2" if l2 else None)
    assert out.shape == (2, 13, *size)
    torch.testing.assert_close(out, _reference(maps, size, l2), rtol=1e-5, atol=1e-5)


def test_stack_layers_l2_gives_unit_norm_per_layer_and_leaves_inputs_alone():
    maps = _maps()
    before = [m.clone() for m in maps]
    out = stack_layers(maps, size=(8, 8), normalize="l2")
    for a, b in ((0, 4), (4, 10), (10, 13)):
        torch.testing.assert_close(out[:, a:b].norm(dim=1), torch.ones(2, 8, 8))
    for m, b in zip(maps, before):  # the (8, 8) map is not resized; normalising must not touch the caller's tensor
        assert torch.equal(m, b)


def test_stack_layers_zero_vector_stays_zero():
    out = stack_layers([torch.zeros(1, 3, 2, 2)], size=(2, 2), normalize="l2")
    assert torch.equal(out, torch.zeros(1, 3, 2, 2))


def test_stack_layers_dtype_and_out_buffer():
    maps = _maps()
    half = stack_layers(maps, size=(8, 8), normalize=None, dtype=torch.float16)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), _reference(maps, (8, 8), False), rtol=1e-3, atol=2e-3)
    buf = torch.full((2, 13, 8, 8), 7.0)
    res = stack_layers(maps, size=(8, 8), normalize=None, out=buf)
    assert res.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(buf, _reference(maps, (8, 8), False))


def test_grid_centers_are_cell_centres_row_major():
    g = grid_centers((2, 4))
    assert g.shape == (8, 2)
    torch.testing.assert_close(g[:4, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(g[:, 1], torch.tensor([-0.5] * 4 + [0.5] * 4))


@pytest.mark.parametrize("l2", [False, True])
def test_sample_at_grid_centres_equals_stack(l2):
    maps = _maps(1)
    size = (8, 12)
    norm = "l2" if l2 else None
    full = stack_layers(maps, size=size, normalize=norm)  # (B, C, H, W)
    grid = grid_centers(size).unsqueeze(0).expand(2, -1, -1)
    pts = sample_layers(maps, grid, normalize=norm)  # (B, H*W, C)
    torch.testing.assert_close(pts, full.flatten(2).transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_sample_off_grid_matches_bilinear_by_hand():
    f = torch.arange(12.0).view(1, 1, 3, 4)  # value = 4 * row + col
    # pixel (x=1.25, y=0.5) in a 4x3 map → normalised ((2x + 1) / w - 1, (2y + 1) / h - 1)
    grid = torch.tensor([[[(2 * 1.25 + 1) / 4 - 1, (2 * 0.5 + 1) / 3 - 1]]])
    v = sample_layers([f], grid, normalize=None)
    torch.testing.assert_close(v, torch.tensor([[[4 * 0.5 + 1.25]]]))
    # outside the map: clamped to the border like F.interpolate
    out = sample_layers([f], torch.tensor([[[-3.0, -3.0]]]), normalize=None)
    assert float(out) == 0.0


def test_check_normalize():
    assert check_normalize(None) is None and check_normalize("l2") == "l2"
    with pytest.raises(ValueError, match="normalize='l1'"):
        check_normalize("l1")


@pytest.mark.parametrize("src, dst", [((3, 3), (48, 48)), ((12, 7), (24, 30)), ((9, 9), (4, 5)), ((1, 1), (3, 2)),
                                      ((5, 6), (5, 6))])
def test_resize_into_equals_f_interpolate(src, dst):
    f = torch.randn(3, 4, *src, generator=torch.Generator().manual_seed(2))
    big = torch.zeros(3, 9, *dst)
    resize_into(f, big[:, 2:6])  # a channel slice of a larger tensor
    ref = F.interpolate(f, size=dst, mode="bilinear", align_corners=False)
    torch.testing.assert_close(big[:, 2:6], ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(big[:, :2], torch.zeros(3, 2, *dst)) and torch.equal(big[:, 6:], torch.zeros(3, 3, *dst))
    half = resize_into(f, torch.empty(3, 4, *dst, dtype=torch.float16))
    torch.testing.assert_close(half.float(), ref, rtol=1e-3, atol=1e-3)
    # the batched out-of-place form (autograd, torch.export / ONNX) does the same arithmetic
    torch.testing.assert_close(resize_bilinear(f, dst), big[:, 2:6], rtol=1e-6, atol=1e-6)


def test_stack_layers_keeps_autograd():
    maps = [m.requires_grad_() for m in _maps()]
    out = stack_layers(maps, size=(8, 8), normalize="l2")
    torch.testing.assert_close(out, _reference(maps, (8, 8), True), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert all(m.grad is not None and m.grad.shape == m.shape for m in maps)
