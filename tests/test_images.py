"""hyperland.images: every accepted input type, and a typed error for every bad one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hyperland.errors import InvalidImageError
from hyperland.images import as_list, expand_paths, image_size, is_single, load_image

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


def _tree(root: Path) -> Path:
    """root/imgs: b.jpg, a.PNG, notes.txt, sub/d.jpg, an empty folder, and a file whose name has glob characters."""
    d = root / "imgs"
    (d / "sub").mkdir(parents=True)
    (d / "empty").mkdir()
    for name in ("b.jpg", "a.PNG", "sub/d.jpg", "x[1].jpg"):
        Image.fromarray(np.tile(RGB, (2, 2, 1))).save(d / name, format="PNG")  # 14 x 10 px; PNG bytes whatever the suffix
    (d / "notes.txt").write_text("not an image")
    return d


def test_folders_and_glob_patterns_expand_sorted(tmp_path: Path):
    d = _tree(tmp_path)
    files = [str(d / n) for n in ("a.PNG", "b.jpg", "x[1].jpg")]  # sorted, images only, not recursive
    assert expand_paths(d) == files and expand_paths(str(d)) == files
    assert expand_paths(f"{d}/*.jpg") == [str(d / "b.jpg"), str(d / "x[1].jpg")]
    assert expand_paths(f"{d}/**/*.jpg") == [str(d / "b.jpg"), str(d / "sub" / "d.jpg"), str(d / "x[1].jpg")]
    # the list order is kept; an existing file with glob characters in its name and a missing file stay as given
    assert expand_paths([d / "sub", str(d / "x[1].jpg"), "missing.jpg"]) == [str(d / "sub" / "d.jpg"),
                                                                            str(d / "x[1].jpg"), "missing.jpg"]
    assert as_list([RGB, d / "sub"])[1:] == [str(d / "sub" / "d.jpg")] and as_list(d) == files
    assert not is_single(d) and not is_single(f"{d}/*.jpg") and is_single(d / "b.jpg") and is_single("missing.jpg")
    assert [tuple(load_image(x).shape) for x in as_list(f"{d}/sub/*")] == [(3, 14, 10)]


def test_empty_folders_and_patterns_without_matches_are_refused(tmp_path: Path):
    d = _tree(tmp_path)
    with pytest.raises(InvalidImageError, match=r"Folder '.*empty' holds no image files .*\.jpg"):
        expand_paths(d / "empty")
    with pytest.raises(InvalidImageError, match=r"Pattern '.*\*\.gif' matches no image files"):
        as_list([d / "b.jpg", f"{d}/*.gif"])
    with pytest.raises(InvalidImageError, match="matches no image files"):
        expand_paths(f"{d}/*.txt")  # a match that is not an image does not count
    with pytest.raises(InvalidImageError, match="empty list"):
        expand_paths([])


def test_models_read_folders_like_lists(r18, tmp_path: Path):
    d = _tree(tmp_path)
    files = expand_paths(d)
    torch.testing.assert_close(r18.extract(d, progress=False), r18.extract(files, progress=False))
    assert r18.extract(f"{d}/b.*", progress=False).shape[0] == 1  # a pattern is a batch, even of one image
    pts = np.zeros((3, 2, 2), np.float32)
    torch.testing.assert_close(r18.sample(d, pts), r18.sample(files, pts))


def test_bad_batches():
    with pytest.raises(InvalidImageError, match="empty list"):
        as_list([])
    with pytest.raises(InvalidImageError, match=r"\(B, C, H, W\)"):
        as_list(torch.zeros(1, 1, 3, 4, 4))


# ---------------------------------------------------------------- bounded decode, bombs, tiny images (issue 12.2)
def _gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    arr = np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                          np.broadcast_to((x + y) / 2, (h, w, 1))], axis=2)
    return Image.fromarray(arr.astype(np.uint8))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_large_files_are_decoded_straight_to_max_side(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    _gradient(3000, 2000).save(path, quality=95)
    full = load_image(path)
    small = load_image(path, max_side=272)
    assert full.shape == (3, 2000, 3000) and small.shape == (3, 272, 272)
    # The same picture: the full decode resized to 272 x 272 agrees within JPEG/resampling noise.
    ref = torch.nn.functional.interpolate(full[None], size=(272, 272), mode="bilinear", antialias=True)[0]
    assert float((ref - small).abs().mean()) < 0.01
    assert load_image(path, max_side=5000).shape == full.shape  # small enough: untouched


def test_shrunk_decode_still_applies_exif_orientation(tmp_path):
    arr = np.zeros((300, 600, 3), dtype=np.uint8)
    arr[:, :300, 0] = 255  # stored left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the stored left half becomes the top
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    t = load_image(path, max_side=400)
    assert t.shape == (3, 400, 300)
    assert float(t[0, :180].mean()) > 0.9 and float(t[0, 220:].mean()) < 0.1


def test_preprocess_of_a_large_photo_matches_its_full_decode(r18, tmp_path):
    path = tmp_path / "photo.jpg"
    _gradient(2400, 1800).save(path, quality=95)
    got = r18.preprocess([path, path])
    ref = r18.preprocess(load_image(path))  # a tensor: resized from the full size
    assert got.shape == (2, 3, 96, 96)
    assert float((got[0] - ref[0]).abs().mean()) < 0.05


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG that declares w x h pixels but holds almost no data (what a decompression bomb looks like on open)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_a_clear_error_with_the_override(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    for call in (load_image, image_size):
        with pytest.raises(InvalidImageError, match="decompression bomb.*HYPERLAND_MAX_IMAGE_PIXELS"):
            call(bomb)
    monkeypatch.setenv("HYPERLAND_MAX_IMAGE_PIXELS", "400000000")
    with pytest.raises(InvalidImageError) as info:  # past the bomb check: this file is only a header
        load_image(bomb)
    assert "decompression bomb" not in str(info.value)
    small = tmp_path / "small.png"
    Image.new("RGB", (20, 20)).save(small)
    monkeypatch.setenv("HYPERLAND_MAX_IMAGE_PIXELS", "100")  # 400 pixels > twice the limit: refused
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        load_image(small)
    monkeypatch.setenv("HYPERLAND_MAX_IMAGE_PIXELS", "0")  # no limit
    assert load_image(small).shape == (3, 20, 20)
    monkeypatch.setenv("HYPERLAND_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(InvalidImageError, match="whole number of pixels"):
        image_size(bomb)


def test_data_loader_reports_bombs_too(tmp_path, monkeypatch):
    from hyperland.data.base import open_rgb

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    with pytest.raises(InvalidImageError, match="HYPERLAND_MAX_IMAGE_PIXELS"):
        open_rgb(_png_header_only(tmp_path / "bomb.png", 20000, 20000))


@pytest.mark.parametrize("size", [(1, 1), (7, 40)])
def test_preprocess_refuses_tiny_images(r18, tmp_path, size):
    path = tmp_path / "tiny.png"
    Image.new("RGB", size, (90, 90, 90)).save(path)
    with pytest.raises(InvalidImageError, match=rf"{size[0]}x{size[1]} pixels.*at least 8x8"):
        r18.preprocess(path)
    with pytest.raises(InvalidImageError, match="at least 8x8"):
        r18.extract(torch.rand(3, *size[::-1]))
    assert r18.preprocess(torch.rand(3, 8, 8)).shape == (1, 3, 96, 96)
