from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.errors import ImageError
from lookalike.io import compose_native, copy_image, image_from_array, load_image, save_image


def _face_mask(shape, box=(10, 10, 40, 40)) -> np.ndarray:
    mask = np.zeros(shape[:2], np.float32)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 1.0
    return mask


def _save(image, rgb, mask, path, **options):
    """Blend ``rgb`` into the image under ``mask`` and write it, as the pipeline does."""
    return save_image(image, compose_native(image, rgb, mask), path, **options)


@pytest.fixture()
def rgb() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", ".bmp"])
def test_each_format_round_trips_in_its_own_format(tmp_path, rgb, suffix):
    src = tmp_path / f"in{suffix}"
    Image.fromarray(rgb).save(src)
    image = load_image(src)
    out = _save(image, np.zeros_like(image.rgb), _face_mask(image.rgb.shape), tmp_path / "out" / f"o{suffix}")
    with Image.open(out) as written:
        assert written.format == Image.open(src).format
        pixels = np.asarray(written.convert("RGB"))
    assert pixels[20, 20].max() <= 8  # the masked square was replaced by black
    if suffix in (".png", ".tif", ".bmp", ".webp") and suffix != ".webp":
        outside = _face_mask(rgb.shape) == 0
        assert np.array_equal(pixels[outside], rgb[outside])  # lossless formats: untouched pixels are exact


def test_grey_image_stays_grey(tmp_path):
    grey = np.random.default_rng(2).integers(0, 256, (50, 50), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    image = load_image(tmp_path / "g.png")
    assert image.mode == "L" and image.rgb.shape == (50, 50, 3)
    out = _save(image, np.full_like(image.rgb, 255), _face_mask(image.rgb.shape), tmp_path / "o.png")
    written = np.asarray(Image.open(out))
    assert written.ndim == 2 and written[20, 20] == 255 and written[0, 0] == grey[0, 0]


def test_alpha_channel_is_kept(tmp_path, rgb):
    alpha = np.random.default_rng(3).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    out = _save(image, np.zeros_like(image.rgb), _face_mask(image.rgb.shape), tmp_path / "o.png")
    written = np.asarray(Image.open(out))
    assert written.shape[2] == 4 and np.array_equal(written[:, :, 3], alpha)
    assert written[20, 20, :3].max() == 0


def test_16bit_grey_and_colour_keep_their_depth_outside_the_face(tmp_path):
    import cv2

    rng = np.random.default_rng(4)
    grey16 = rng.integers(0, 65536, (40, 50), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    colour16 = rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), colour16[:, :, ::-1])
    for name, original in (("g16.png", grey16), ("c16.png", colour16)):
        image = load_image(tmp_path / name)
        assert image.native.dtype == np.uint16
        out = _save(image, np.zeros_like(image.rgb), _face_mask(image.rgb.shape, (5, 5, 20, 20)), tmp_path / f"o{name}")
        written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        written = written if written.ndim == 2 else written[:, :, ::-1]
        assert written.dtype == np.uint16
        assert np.array_equal(written[30:, 30:], original[30:, 30:])
        assert written[10, 10].max() == 0


def test_cmyk_stays_cmyk(tmp_path, rgb):
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    image = load_image(tmp_path / "c.jpg")
    assert image.mode == "CMYK"
    out = _save(image, image.rgb, _face_mask(image.rgb.shape), tmp_path / "o.jpg")
    assert Image.open(out).mode == "CMYK"


def test_exif_orientation_is_applied(tmp_path):
    tall = np.zeros((30, 20, 3), np.uint8)
    tall[:5] = 255  # white band at the top of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # stored pixels must be turned 90 degrees clockwise to display
    Image.fromarray(tall).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    image = load_image(tmp_path / "r.jpg")
    assert image.rgb.shape[:2] == (20, 30)
    assert image.rgb[:, -3:].mean() > 200  # the band is now on the right


def test_metadata_is_stripped_unless_kept(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS
    Image.fromarray(rgb).save(tmp_path / "m.jpg", exif=exif.tobytes(), icc_profile=b"\0" * 128)
    image = load_image(tmp_path / "m.jpg")
    stripped = _save(image, image.rgb, _face_mask(rgb.shape), tmp_path / "s.jpg")
    kept = _save(image, image.rgb, _face_mask(rgb.shape), tmp_path / "k.jpg", keep_metadata=True)
    assert b"SecretCam" not in stripped.read_bytes()
    assert len(Image.open(stripped).getexif()) == 0 and "icc_profile" not in Image.open(stripped).info
    kept_exif = Image.open(kept).getexif()
    assert kept_exif[0x010F] == "SecretCam" and 0x8825 in kept_exif


def test_kept_exif_loses_its_thumbnail_and_maker_note(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif.get_ifd(0x8769)[0x927C] = b"VENDORPREVIEW" * 8
    exif_bytes = exif.tobytes()
    Image.fromarray(rgb).save(tmp_path / "m.jpg", exif=exif_bytes)
    assert b"VENDORPREVIEW" in (tmp_path / "m.jpg").read_bytes()
    image = load_image(tmp_path / "m.jpg")
    kept = copy_image(image, tmp_path / "k.jpg", keep_metadata=True)
    assert b"VENDORPREVIEW" not in kept.read_bytes()
    assert Image.open(kept).getexif()[0x010F] == "SecretCam"


def test_png_text_chunks_are_stripped(tmp_path, rgb):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Jane Doe")
    Image.fromarray(rgb).save(tmp_path / "t.png", pnginfo=info)
    out = copy_image(load_image(tmp_path / "t.png"), tmp_path / "o.png")
    assert b"Jane Doe" not in out.read_bytes()


def test_refuses_to_overwrite_the_input(tmp_path, rgb):
    src = tmp_path / "in.png"
    Image.fromarray(rgb).save(src)
    before = src.read_bytes()
    image = load_image(src)
    with pytest.raises(ImageError, match="refusing to write over an input"):
        _save(image, image.rgb, _face_mask(rgb.shape), tmp_path / "." / "in.png")
    other = tmp_path / "other.png"
    Image.fromarray(rgb).save(other)
    with pytest.raises(ImageError, match="refusing"):
        _save(image, image.rgb, _face_mask(rgb.shape), other, protected=frozenset({other.resolve()}))
    assert src.read_bytes() == before


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, rgb, monkeypatch):
    src = tmp_path / "in.png"
    Image.fromarray(rgb).save(src)
    image = load_image(src)
    target = tmp_path / "out" / "o.png"
    _save(image, image.rgb, _face_mask(rgb.shape), target)
    previous = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ImageError, match="o.png: could not write"):
        _save(image, np.zeros_like(image.rgb), _face_mask(rgb.shape), target, overwrite=True)
    assert target.read_bytes() == previous  # the old output is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["o.png"]


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "empty file"), (b"hello, I am text", "not an image"), ("truncated", "corrupt or truncated")],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, rgb, content, problem):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        Image.fromarray(rgb).save(path, quality=95)
        path.write_bytes(path.read_bytes()[:400])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    Image.new("L", (4000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="image too large: 4000x3000"):
        load_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_arrays_wrap_with_their_modes():
    assert image_from_array(np.zeros((4, 4), np.uint8)).mode == "L"
    assert image_from_array(np.zeros((4, 4, 4), np.uint8)).mode == "RGBA"
    assert image_from_array(np.zeros((4, 4, 3), np.uint16)).mode == "RGB;16"
    with pytest.raises(ImageError):
        image_from_array(np.zeros((4, 4, 2), np.uint8))


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "in.png")
    image = load_image(tmp_path / "in.png")
    target = tmp_path / "o.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageError, match="output already exists"):
        copy_image(image, target)
    assert target.read_bytes() == b"precious"
    copy_image(image, target, overwrite=True)
    assert np.array_equal(np.asarray(Image.open(target)), rgb)


def test_multi_page_files_are_refused_not_truncated(tmp_path, rgb):
    pages = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    pages[0].save(tmp_path / "p.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ImageError, match="p.tif: has 2 frames or pages"):
        load_image(tmp_path / "p.tif")


def test_fax_tiff_and_lossless_webp_are_written_back(tmp_path, rgb):
    Image.fromarray(rgb).convert("1").save(tmp_path / "fax.tif", compression="group4")
    image = load_image(tmp_path / "fax.tif")
    copy_image(image, tmp_path / "o.tif")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.tif").convert("L")), image.native)
    Image.fromarray(rgb).save(tmp_path / "l.webp", lossless=True)
    image = load_image(tmp_path / "l.webp")
    copy_image(image, tmp_path / "o.webp")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.webp").convert("RGB")), rgb)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_colour_orientation_matches_pillow(orientation):
    from lookalike.io.images import _apply_orientation

    pixels = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    pil = Image.fromarray(pixels)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(pil))
    assert np.array_equal(_apply_orientation(pixels, orientation), expected)
