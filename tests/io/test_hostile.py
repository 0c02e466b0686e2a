"""What a hostile user found in reading and writing (issue 19): each test failed on the code before it."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageError
from lookalike.io import compose_native, copy_image, load_image, save_image


@pytest.fixture()
def rgb() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def _png(width: int, height: int, depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG from its filtered scan lines (``raw``), written by hand: what no library here writes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares a size but carries (almost) no pixel data: enough for a size check."""
    path.write_bytes(_png(width, height, 8, 0, b"\0" * 64))


# --- 4. --keep-metadata keeps an allow-list, never previews, XMP, IPTC, Photoshop blocks ---------------

SECRET = "SECRET-7f3a"


def _preview(rgb: np.ndarray) -> bytes:
    """A JPEG thumbnail of the original picture: what must never reach an output."""
    buffer = io.BytesIO()
    Image.fromarray(rgb[::4, ::4].copy()).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _planted_exif(rgb: np.ndarray, tiff: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "KeptCam"  # camera make: kept
    exif[0x0132] = "2024:01:02 03:04:05"  # date: kept
    exif[0x010E] = f"description {SECRET}"  # ImageDescription: free text, dropped
    exif[700] = f"<x:xmpmeta>{SECRET}</x:xmpmeta>".encode() + _preview(rgb)  # XMP through EXIF tag 700
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS: kept, as documented
    exif.get_ifd(0x8769)[0x829A] = 0.004  # exposure time: kept
    exif.get_ifd(0x8769)[0x9286] = f"ASCII\0\0\0{SECRET}".encode()  # UserComment: dropped
    exif.get_ifd(0x8769)[0x927C] = _preview(rgb)  # maker note holding a preview: dropped
    if tiff:
        exif[33723] = f"IPTC {SECRET}".encode()  # IPTC
        exif[34377] = b"8BIM\x04\x0c" + _preview(rgb)  # Photoshop resources with a thumbnail
    return exif


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_kept_metadata_is_an_allow_list_without_previews_xmp_iptc_or_photoshop(tmp_path, rgb, suffix):
    src = tmp_path / f"in{suffix}"
    tiff = suffix == ".tif"
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{SECRET}</x:xmpmeta>'.encode() + _preview(rgb)
    Image.fromarray(rgb).save(
        src, exif=_planted_exif(rgb, tiff).tobytes(), xmp=xmp, icc_profile=b"\0" * 128, dpi=(300, 300)
    )
    planted = src.read_bytes()
    assert SECRET.encode() in planted and _preview(rgb)[-300:-2] in planted  # the test plants what it looks for
    image = load_image(src)
    kept = copy_image(image, tmp_path / f"out{suffix}", keep_metadata=True).read_bytes()
    assert SECRET.encode() not in kept
    assert _preview(rgb)[-300:-2] not in kept  # no part of any embedded preview (its compressed pixels)
    with Image.open(io.BytesIO(kept)) as out:
        exif = out.getexif()
        assert exif[0x010F] == "KeptCam" and exif[0x0132] == "2024:01:02 03:04:05"
        assert 0x8825 in exif and 0x829A in exif.get_ifd(0x8769)
        assert 700 not in exif and 33723 not in exif and 34377 not in exif and not out.info.get("xmp")
        assert suffix == ".webp" or round(out.info["dpi"][0]) == 300  # WebP has no DPI field
    assert src.read_bytes() == planted


def test_kept_png_text_is_an_allow_list(tmp_path, rgb):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{SECRET}</x:xmpmeta>")
    info.add_text("Raw profile type iptc", f"iptc {SECRET}", zip=True)
    info.add_text("Comment", SECRET)
    Image.fromarray(rgb).save(tmp_path / "t.png", pnginfo=info)
    out = copy_image(load_image(tmp_path / "t.png"), tmp_path / "o.png", keep_metadata=True)
    assert Image.open(out).text == {"Author": "Jane Doe"}


# --- 5. an empty mask (a zero-size image) is no work, not a crash -----------------------------------


def test_mask_regions_of_an_empty_mask_is_empty():
    code = (
        "import numpy as np\nfrom lookalike.imaging import mask_regions\n"
        "print(mask_regions(np.zeros((0, 5), np.float32)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.returncode  # a segfault is -11


# --- 6. lower ones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "width, height, size",
    [(15000, 10000, "15000x10000 = 150 MP"), (20000, 20000, "20000x20000 = 400 MP"), (60000, 60000, "3600 MP")],
)
def test_images_above_the_limit_get_the_documented_line(tmp_path, width, height, size):
    _png_header_only(tmp_path / "big.png", width, height)
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "big.png")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'big.png'}: image too large: {size}, above the limit of 120 MP")
    assert "\n" not in message


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_tiff_is_converted_by_its_range(tmp_path, rgb, scale):
    grey = rgb.mean(axis=2) / 255.0
    Image.fromarray((grey * scale).astype(np.float32)).save(tmp_path / "f.tif")
    image = load_image(tmp_path / "f.tif")
    assert np.abs(image.rgb[:, :, 0].astype(float) - grey * 255).max() <= 1.0  # not black
    out = copy_image(image, tmp_path / "o.tif")
    assert np.array_equal(np.asarray(Image.open(out)), image.native)


def test_float_tiff_outside_any_range_is_refused_with_one_line(tmp_path):
    Image.fromarray(np.full((8, 8), -3.5, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageError, match=r"f.tif: floating-point pixels range from -3.5"):
        load_image(tmp_path / "f.tif")


def test_16bit_grey_alpha_png_stays_16bit_grey_alpha(tmp_path):
    import cv2

    pixels = np.random.default_rng(8).integers(0, 65536, (30, 20, 2)).astype(np.uint16)
    rows = pixels.astype(">u2").reshape(30, 40).view(np.uint8)
    (tmp_path / "la.png").write_bytes(_png(20, 30, 16, 4, b"".join(b"\0" + row.tobytes() for row in rows)))
    assert np.array_equal(cv2.imread(str(tmp_path / "la.png"), cv2.IMREAD_UNCHANGED)[:, :, [0, 3]], pixels)
    image = load_image(tmp_path / "la.png")
    assert image.mode == "LA;16" and np.array_equal(image.native, pixels)
    mask = np.zeros((30, 20), np.float32)
    mask[5:10, 5:10] = 1
    out = save_image(image, compose_native(image, np.zeros_like(image.rgb), mask), tmp_path / "o.png")
    assert out.read_bytes()[25] == 4 and out.read_bytes()[24] == 16  # colour type grey+alpha, 16 bits
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[:, :, [0, 3]]
    assert np.array_equal(written[mask == 0], pixels[mask == 0]) and np.array_equal(written[..., 1], pixels[..., 1])
    assert written[7, 7, 0] == 0


def test_palette_png_stays_a_palette_png_with_its_transparency(tmp_path, rgb):
    alpha = bytes([255] * 10 + [0] + [128] * 21)
    Image.fromarray(rgb).quantize(32).save(tmp_path / "p.png", transparency=alpha)
    original = Image.open(tmp_path / "p.png")
    image = load_image(tmp_path / "p.png")
    assert image.mode == "P"
    mask = np.zeros(rgb.shape[:2], np.float32)
    mask[5:25, 5:25] = 1
    out = Image.open(save_image(image, compose_native(image, np.zeros_like(image.rgb), mask), tmp_path / "o.png"))
    assert out.mode == "P" and out.getpalette()[:96] == original.getpalette()[:96]
    assert np.array_equal(np.asarray(out)[mask == 0], np.asarray(original)[mask == 0])
    assert np.array_equal(np.asarray(out.convert("RGBA"))[..., 3], np.asarray(original.convert("RGBA"))[..., 3])
    changed = np.asarray(out.convert("RGBA"))[5:25, 5:25, :3]
    opaque = np.asarray(original.convert("RGBA"))[5:25, 5:25, 3] == 255
    assert changed[opaque].mean() < np.asarray(original.convert("RGBA"))[5:25, 5:25, :3][opaque].mean()  # darker


def test_a_symlink_loop_is_one_line(tmp_path):
    os.symlink("loop.jpg", tmp_path / "loop.jpg")
    with pytest.raises(ImageError, match=r"loop.jpg: symbolic link loop"):
        load_image(tmp_path / "loop.jpg")


# --- 3. publishing never replaces a file that appeared meanwhile --------------------------------------


def test_a_file_that_appears_while_encoding_is_not_replaced(tmp_path, rgb, monkeypatch):
    import lookalike.io.images as images

    Image.fromarray(rgb).save(tmp_path / "in.png")
    image = load_image(tmp_path / "in.png")
    target = tmp_path / "out" / "in.png"
    encode = images._encode

    def encode_while_another_run_publishes(*args, **kwargs):
        payload = encode(*args, **kwargs)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"the other run's picture")
        return payload

    monkeypatch.setattr(images, "_encode", encode_while_another_run_publishes)
    with pytest.raises(ImageError, match="output already exists"):
        copy_image(image, target)
    assert target.read_bytes() == b"the other run's picture"
    assert sorted(p.name for p in target.parent.iterdir()) == ["in.png"]  # no temporary left


def test_publish_refuses_inputs_and_existing_files(tmp_path):
    from lookalike.io.images import publish_bytes

    existing = tmp_path / "r.json"
    existing.write_text("precious")
    with pytest.raises(ImageError, match="output already exists"):
        publish_bytes(existing, b"{}")
    with pytest.raises(ImageError, match="refusing to write over an input"):
        publish_bytes(existing, b"{}", overwrite=True, protected=frozenset({existing.resolve()}))
    assert existing.read_text() == "precious"
    publish_bytes(existing, b"{}", overwrite=True)
    assert existing.read_text() == "{}"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    from lookalike.io.images import remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "sub" / f".a.jpg.lookalike-{dead.stdout.strip()}-abc123.tmp"
    alive = tmp_path / f".b.jpg.lookalike-{os.getpid()}-xyz789.tmp"
    foreign = tmp_path / ".c.jpg.tmp"
    stale.parent.mkdir()
    for path in (stale, alive, foreign):
        path.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and foreign.exists()
