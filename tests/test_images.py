"""hyperland.images: every accepted input type, and a typed error for every bad one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hyperland.errors import InvalidImageError
from hyperland.images import as_list, image_size, is_single, load_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)  # H=7, W=5
REF = torch.from_numpy(RGB).permute(2, 0, 1).float() / 255.0


def test_numpy_uint8_hwc_is_chw_float_in_unit_range():
    t = load_image(RGB)
    assert t.shape == (3, 7, 5) and t.dtype == torch.float32
    torch.testing.assert_close(t, REF, rtol=0, atol=0)


def test_numpy_grey_hw_is_replicated_to_three_channels():
    grey = RGB[..., 0]
    t = load_image(grey)
    assert t.shape == (3, 7, 5)
    for c in range(3):
        torch.testing.assert_close(t[c], torch.from_numpy(grey).float() / 255.0, rtol=0, atol=0)


def test_numpy_uint16_is_scaled_by_65535():
    a = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    t = load_image(a)
    torch.testing.assert_close(t[0], torch.tensor([[0.0, 1.0], [32768 / 65535, 1000 / 65535]]))


def test_numpy_float_in_unit_range_is_kept_and_rgba_drops_alpha():
    f = RNG.random((4, 6, 4)).astype(np.float64)
    t = load_image(f)
    assert t.shape == (3, 4, 6) and t.dtype == torch.float32
    torch.testing.assert_close(t, torch.from_numpy(f[..., :3]).permute(2, 0, 1).float())


def test_pil_rgb_numpy_and_tensor_agree():
    pil = Image.fromarray(RGB)
    chw_u8 = torch.from_numpy(RGB).permute(2, 0, 1).contiguous()
    for x in (pil, chw_u8, chw_u8.float() / 255.0):
        torch.testing.assert_close(load_image(x), REF, rtol=0, atol=1e-7)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "1", "LA", "YCbCr"])
def test_pil_modes_match_pil_rgb_conversion(mode):
    img = Image.fromarray(RGB).convert(mode)
    expect = torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1).float() / 255.0
    torch.testing.assert_close(load_image(img), expect, rtol=0, atol=0)


def test_pil_palette_with_transparency():
    img = Image.fromarray(RGB).convert("P")
    img.info["transparency"] = 0
    t = load_image(img)
    assert t.shape == (3, 7, 5)
    expect = np.asarray(img.convert("RGBA").convert("RGB"))
    torch.testing.assert_close(t, torch.from_numpy(expect.copy()).permute(2, 0, 1).float() / 255.0)


def test_pil_16_bit_grey(tmp_path: Path):
    a = np.array([[0, 65535, 256], [1024, 4096, 60000]], dtype=np.uint16)
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16")
    expect = torch.from_numpy(a.astype(np.float32) / 65535.0)
    t = load_image(img)
    assert t.shape == (3, 2, 3)
    torch.testing.assert_close(t[1], expect)
    img.save(tmp_path / "g16.png")
    torch.testing.assert_close(load_image(tmp_path / "g16.png")[2], expect)


def test_exif_orientation_is_applied(tmp_path: Path):
    img = Image.fromarray(RGB)  # 5 wide, 7 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=100)
    t = load_image(path)
    assert t.shape == (3, 5, 7)
    assert image_size(path) == (5, 7)
    with Image.open(path) as raw:
        expect = np.asarray(raw.transpose(Image.Transpose.ROTATE_270).convert("RGB"))
        assert image_size(raw) == (5, 7)
    torch.testing.assert_close(t, torch.from_numpy(expect.copy()).permute(2, 0, 1).float() / 255.0)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_files_of_common_formats(tmp_path: Path, suffix: str):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(RGB).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    t = load_image(str(path))
    assert t.shape == (3, 7, 5)
    if suffix != ".jpg":
        torch.testing.assert_close(t, REF, rtol=0, atol=0)
    assert image_size(path) == (7, 5)


def test_real_mtfl_jpeg(aflw_images):
    t = load_image(aflw_images[0])
    assert t.shape == (3, 150, 150) and 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert image_size(aflw_images[0]) == (150, 150)


def test_batches_lists_and_singletons():
    batch = torch.rand(2, 3, 6, 6)
    assert not is_single(batch) and len(as_list(batch)) == 2
    assert is_single(batch[0]) and len(as_list(batch[0])) == 1
    mixed = [RGB, Image.fromarray(RGB[:3]), torch.rand(1, 9, 4)]
    assert not is_single(mixed)
    assert [tuple(load_image(x).shape) for x in as_list(mixed)] == [(3, 7, 5), (3, 3, 5), (3, 9, 4)]
    assert is_single("face.jpg") and is_single(RGB)


# ---------------------------------------------------------------- bad input


def test_missing_file_names_the_path(tmp_path: Path):
    with pytest.raises(InvalidImageError, match="not found.*nope.png"):
        load_image(tmp_path / "nope.png")


def test_empty_file(tmp_path: Path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(tmp_path / "empty.jpg")


def test_corrupt_file(tmp_path: Path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InvalidImageError, match="junk.jpg"):
        load_image(tmp_path / "junk.jpg")
    with pytest.raises(InvalidImageError, match="junk.jpg"):
        image_size(tmp_path / "junk.jpg")


def test_truncated_jpeg(tmp_path: Path, aflw_images):
    data = Path(aflw_images[0]).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError, match="truncated|corrupt|decode"):
        load_image(tmp_path / "cut.jpg")


def test_zero_size_images():
    with pytest.raises(InvalidImageError, match="zero size"):
        load_image(np.zeros((0, 4, 3), dtype=np.uint8))
    with pytest.raises(InvalidImageError, match="zero size"):
        load_image(Image.new("RGB", (0, 5)))
    with pytest.raises(InvalidImageError, match="zero size"):
        load_image(torch.zeros(3, 4, 0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels(bad):
    a = np.full((4, 4, 3), 0.5, dtype=np.float32)
    a[1, 2, 0] = bad
    with pytest.raises(InvalidImageError, match="NaN or inf"):
        load_image(a)
    with pytest.raises(InvalidImageError, match="NaN or inf"):
        load_image(torch.from_numpy(a).permute(2, 0, 1))


def test_float_out_of_unit_range_says_divide_by_255():
    with pytest.raises(InvalidImageError, match=r"\[0, 255\].*divide"):
        load_image(np.full((3, 3, 3), 255.0, dtype=np.float32) * np.linspace(0, 1, 3)[:, None, None])


@pytest.mark.parametrize(
    "x, pattern",
    [
        (np.zeros((2, 3, 4, 5), dtype=np.uint8), "HW or HWC"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "2 channels"),
        (np.zeros((3, 8, 8), dtype=np.uint8), "channels-first.*transpose"),
        (np.zeros((4, 4), dtype=np.complex64), "dtype"),
        (np.zeros((4, 4), dtype=np.int64), "integer dtype"),
        (torch.zeros(8, 8), r"\(C, H, W\)"),
        (torch.zeros(8, 8, 3), "channels first"),
        (torch.zeros(3, 4, 4, dtype=torch.int64), "dtype"),
        ([1, 2, 3], "list"),
        (42, "int"),
    ],
)
def test_wrong_rank_channels_and_types(x, pattern):
    with pytest.raises(InvalidImageError, match=pattern):
        if isinstance(x, list):
            load_image(x)  # type: ignore[arg-type]
        else:
            load_image(x)


def test_bad_batches():
    with pytest.raises(InvalidImageError, match="empty list"):
        as_list([])
    with pytest.raises(InvalidImageError, match=r"\(B, C, H, W\)"):
        as_list(torch.zeros(1, 1, 3, 4, 4))
