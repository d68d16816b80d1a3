"""HyperlandModel: preprocessing, extract()/sample() parity with hand-written references, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from PIL import Image

import hyperland
from hyperland.errors import InvalidImageError, InvalidKeypointsError, InvalidLayerError, InvalidOptionError
from hyperland.images import load_image


def _preprocess_by_hand(img: torch.Tensor, model) -> torch.Tensor:
    c = model.config
    x = F.interpolate(img[None], size=(c.resize, c.resize), mode="bilinear", align_corners=False, antialias=True)
    x = x[..., c.border:c.resize - c.border, c.border:c.resize - c.border]
    return (x - torch.tensor(c.mean).view(1, 3, 1, 1)) / torch.tensor(c.std).view(1, 3, 1, 1)


def _reference_extract(model, x: torch.Tensor, layers, size, l2: bool = False) -> torch.Tensor:
    """timm features → F.interpolate(bilinear, align_corners=False) → (L2) → torch.cat, with a fresh timm model."""
    ref = timm.create_model(model.config.architecture, features_only=True, out_indices=model.config.out_indices)
    ref.load_state_dict(model.backbone.state_dict())
    ref.eval()
    with torch.no_grad():
        feats = dict(zip(model.config.out_indices, ref(x)))
    parts = []
    for i in layers:
        f = F.interpolate(feats[i], size=size, mode="bilinear", align_corners=False)
        parts.append(f / f.norm(dim=1, keepdim=True) if l2 else f)
    return torch.cat(parts, dim=1)


@pytest.fixture(scope="module")
def faces(aflw_images):
    return [str(p) for p in aflw_images[:3]]


def test_feature_info_and_channels_come_from_timm(r18):
    assert [d["index"] for d in r18.feature_info] == [1, 2, 3, 4]
    assert [d["channels"] for d in r18.feature_info] == [64, 128, 256, 512]
    assert [d["reduction"] for d in r18.feature_info] == [4, 8, 16, 32]
    assert r18.num_channels() == 960 and r18.num_channels((2, 4)) == 640
    assert r18.config.input_size == 96 and r18.layers == (1, 2, 3, 4)


def test_preprocess_matches_hand_pipeline_for_mixed_sizes(r18, faces):
    small = Image.open(faces[0]).convert("RGB").resize((70, 90))
    batch = r18.preprocess([faces[0], small, np.asarray(small)])
    assert batch.shape == (3, 3, 96, 96)
    torch.testing.assert_close(batch[0:1], _preprocess_by_hand(load_image(faces[0]), r18))
    torch.testing.assert_close(batch[1:2], _preprocess_by_hand(load_image(small), r18))
    torch.testing.assert_close(batch[1], batch[2])
    same = r18.preprocess(faces)  # one size: resized in one batched call
    torch.testing.assert_close(same, torch.cat([_preprocess_by_hand(load_image(f), r18) for f in faces]))


@pytest.mark.parametrize("layers, size", [(None, None), ((2, 4), (48, 48)), ((3,), (7, 5))])
def test_extract_equals_reference(r18, faces, layers, size):
    out = r18.extract(faces, layers=layers, size=size, normalize=None)
    use = layers or (1, 2, 3, 4)
    grid = size if size is not None else (24, 24)
    x = r18.preprocess(faces)
    ref = _reference_extract(r18, x, use, grid)
    assert out.shape == ref.shape == (3, r18.num_channels(use), *grid)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_default_size_is_the_finest_selected_grid(r18, faces):
    assert r18.extract(faces[0], layers=(3, 4)).shape == (768, 6, 6)
    assert r18.extract(faces[0], layers=(4, 2)).shape == (640, 12, 12)


def test_l2_normalisation_by_hand(r18, faces):
    raw = r18.extract(faces, normalize=None)
    l2 = r18.extract(faces)  # default normalize="l2"
    c0 = 0
    for c in (64, 128, 256, 512):
        part = raw[:, c0:c0 + c]
        torch.testing.assert_close(l2[:, c0:c0 + c], part / part.norm(dim=1, keepdim=True), rtol=1e-5, atol=1e-6)
        c0 += c
    torch.testing.assert_close(l2.norm(dim=1), torch.full((3, 24, 24), 2.0), rtol=1e-5, atol=1e-5)


def test_single_image_batches_and_dtype(r18, faces):
    batch = r18.extract(faces, normalize=None)
    one = r18.extract(faces[1], normalize=None)
    assert one.shape == batch.shape[1:]
    torch.testing.assert_close(one, batch[1], rtol=1e-5, atol=1e-5)
    small_batches = r18.extract(faces, normalize=None, batch_size=2)
    torch.testing.assert_close(small_batches, batch, rtol=1e-5, atol=1e-5)
    parts = list(r18.iter_extract(faces, batch_size=2, normalize=None))
    assert [p.shape[0] for p in parts] == [2, 1]
    half = r18.extract(faces, dtype=torch.float16, size=(12, 12))
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), r18.extract(faces, size=(12, 12)), rtol=2e-3, atol=2e-3)


def test_sample_equals_extract_at_grid_cell_centres(r18, faces):
    h = w = 24
    s = r18.config.input_size
    iy, ix = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    # centre of cell (i, j) in network-input pixels: (j + 0.5) * S / W - 0.5
    uv = torch.stack([(ix.reshape(-1) + 0.5) * s / w - 0.5, (iy.reshape(-1) + 0.5) * s / h - 0.5], dim=1)
    sizes = [(150, 150), (90, 70)]
    small = Image.open(faces[0]).convert("RGB").resize((70, 90))
    images = [faces[1], small]
    pts = r18.from_input_coords(uv.expand(2, -1, -1).clone(), sizes)
    torch.testing.assert_close(r18.to_input_coords(pts, sizes), uv.expand(2, -1, -1), rtol=0, atol=1e-4)
    for norm in (None, "l2"):
        full = r18.extract(images, normalize=norm)  # (2, C, 24, 24)
        desc = r18.sample(images, pts, normalize=norm)  # (2, 576, C)
        assert desc.shape == (2, h * w, 960)
        torch.testing.assert_close(desc, full.flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-4)
    one = r18.sample(images[0], pts[0, :5].numpy(), layers=(2,), normalize=None)
    torch.testing.assert_close(one, r18.extract(images[0], layers=(2,), size=(24, 24), normalize=None)
                               .flatten(1)[:, :5].T, rtol=1e-4, atol=1e-4)


def test_coordinate_maps_known_values(r18):
    # 150 px image → resize 136 → crop 20: the image centre (74.5) is the input centre (47.5).
    p = torch.tensor([[[74.5, 74.5], [0.0, 149.0]]])
    q = r18.to_input_coords(p, [(150, 150)])
    torch.testing.assert_close(q[0, 0], torch.tensor([47.5, 47.5]))
    torch.testing.assert_close(q[0, 1], torch.tensor([0.5 * 136 / 150 - 20.5, 149.5 * 136 / 150 - 20.5]))
    torch.testing.assert_close(r18.from_input_coords(q, [(150, 150)]), p)


def test_fingerprint_tracks_weights_and_preprocessing(r18):
    again = hyperland.load("random-r18")
    assert r18.fingerprint == again.fingerprint and len(r18.fingerprint) == 16
    assert hyperland.load("random-r18", border=10).fingerprint != r18.fingerprint
    with torch.no_grad():
        again.backbone.conv1.weight[0, 0, 0, 0] += 1.0
    again._fingerprint = None
    assert again.fingerprint != r18.fingerprint


def test_train_mode_keeps_backbone_frozen(r18):
    r18.train()
    assert not r18.training and not r18.backbone.training
    assert not any(m.training for m in r18.modules())


def test_vit_via_timm_forward_intermediates(faces):
    vit = hyperland.load("timm:vit_tiny_patch16_224")
    assert vit.layers == (9, 10, 11) and vit.num_channels() == 3 * 192
    out = vit.extract(faces[:2], normalize=None)
    assert out.shape == (2, 576, 6, 6)
    ref = timm.create_model("vit_tiny_patch16_224", img_size=96)
    res = ref.load_state_dict({k[len("model."):]: v for k, v in vit.backbone.state_dict().items()}, strict=False)
    assert sorted(res.missing_keys) == ["head.bias", "head.weight", "norm.bias", "norm.weight"]  # pruned by timm
    assert not res.unexpected_keys
    ref.eval()
    with torch.no_grad():
        inter = ref.forward_intermediates(vit.preprocess(faces[:2]), indices=[9, 10, 11], intermediates_only=True)
    torch.testing.assert_close(out, torch.cat(inter, dim=1), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("layers", [(0,), (5,), (1, 1), (), (2, 9)])
def test_bad_layers(r18, layers):
    with pytest.raises(InvalidLayerError, match=r"available feature indices are \(1, 2, 3, 4\)"):
        r18.extract(torch.rand(3, 32, 32), layers=layers)
    with pytest.raises(InvalidLayerError):
        r18.sample(torch.rand(3, 32, 32), [[1.0, 1.0]], layers=layers)


@pytest.mark.parametrize(
    "points, pattern",
    [
        (torch.zeros(2, 5, 3), r"\(2, K, 2\)"),
        (torch.zeros(3, 5, 2), r"do not fit 2 image"),
        (torch.zeros(5, 2), r"do not fit"),
        (torch.full((2, 1, 2), float("nan")), "NaN or inf"),
        ([np.zeros((3, 2)), np.zeros((4, 2))], "same number of points"),
        ([np.zeros((3, 2))], "1 point sets for 2 images"),
        ([np.zeros((0, 2)), np.zeros((0, 2))], "K >= 1"),
    ],
)
def test_bad_points(r18, points, pattern):
    imgs = [torch.rand(3, 32, 32), torch.rand(3, 40, 30)]
    with pytest.raises(InvalidKeypointsError, match=pattern):
        r18.sample(imgs, points)


def test_bad_points_single_image(r18):
    with pytest.raises(InvalidKeypointsError, match=r"\(K, 2\)"):
        r18.sample(torch.rand(3, 32, 32), [1.0, 2.0, 3.0])
    with pytest.raises(InvalidKeypointsError, match="NaN or inf"):
        r18.sample(torch.rand(3, 32, 32), [[1.0, float("inf")]])


def test_bad_images_and_options(r18, tmp_path):
    with pytest.raises(InvalidImageError, match="not found"):
        r18.extract([str(tmp_path / "missing.jpg")])
    with pytest.raises(InvalidImageError, match=r"\(C, H, W\) or \(B, C, H, W\)"):
        r18.extract(torch.rand(1, 1, 3, 8, 8))
    with pytest.raises(InvalidImageError, match="NaN"):
        r18.extract(torch.full((3, 8, 8), float("nan")))
    with pytest.raises(InvalidOptionError, match="normalize='l1'"):
        r18.extract(torch.rand(3, 8, 8), normalize="l1")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="batch_size=0"):
        r18.extract(torch.rand(3, 8, 8), batch_size=0)
    with pytest.raises(InvalidOptionError, match="batch_size=0"):
        r18.sample(torch.rand(3, 8, 8), [[1.0, 1.0]], batch_size=0)


def test_print_model_is_one_identifying_line(r18):
    text = repr(r18)
    assert text == (f"HyperlandModel(name='random-r18', fingerprint='{r18.fingerprint}', architecture='resnet18', "
                    "layers=(1, 2, 3, 4) of (1, 2, 3, 4) (960 channels), input=96x96 (resize 136, border 20), "
                    "device=cpu)")
    assert str(r18) == text and "Conv2d" not in text
