"""Reading and writing images without losing anything that was not asked to change.

Every image is read into two views:

* ``native``: the pixels in the file's own representation (8 or 16 bit, grey, RGB, RGBA, CMYK), after
  the EXIF orientation has been applied, so a face is upright where a viewer shows it upright;
* ``rgb``: an 8-bit RGB working copy that detection and anonymization run on.

An anonymizer returns a new RGB working image and a soft mask of the pixels it changed. Writing composes
the change into the native pixels under that mask, so pixels outside the mask keep their exact original
values, alpha stays as it was, and a 16-bit or CMYK file stays 16-bit or CMYK.

Metadata (EXIF with GPS, XMP, ICC profiles, PNG text chunks, TIFF tags) is dropped unless asked for.
Writes go to a temporary file beside the target and are renamed into place, so a crash never leaves a
half-written output.
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from lookalike.errors import ImageError

#: File formats read and written; the key is Pillow's format name.
SUPPORTED_FORMATS = {"JPEG": (".jpg", ".jpeg", ".jpe"), "MPO": (), "PNG": (".png",), "WEBP": (".webp",),
                     "TIFF": (".tif", ".tiff"), "BMP": (".bmp",)}
IMAGE_SUFFIXES = frozenset(s for suffixes in SUPPORTED_FORMATS.values() for s in suffixes)

#: Default cap on pixels per image; a decompression bomb is refused before it is decoded.
DEFAULT_MAX_PIXELS = 120_000_000

_SUFFIX_TO_FORMAT = {s: fmt for fmt, suffixes in SUPPORTED_FORMATS.items() for s in suffixes}
_EXIF_ORIENTATION = 0x0112
_EXIF_IFD, _MAKER_NOTE = 0x8769, 0x927C


@dataclass
class LoadedImage:
    """An image as read from disk. See the module docstring for ``native`` versus ``rgb``."""

    rgb: np.ndarray
    native: np.ndarray
    mode: str
    format: str
    path: Path | None = None
    metadata: dict = field(default_factory=dict)
    encoder: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def has_alpha(self) -> bool:
        return self.mode in ("LA", "RGBA", "RGBA;16")


def is_image_path(path: Path) -> bool:
    """Whether a file name has one of the supported image suffixes (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file, apply its EXIF orientation, and keep what is needed to write it back.

    Raises :class:`~lookalike.errors.ImageError` with a one-line reason for anything unreadable.

    >>> import numpy as np, tempfile, pathlib
    >>> from PIL import Image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "grey.png"
    >>> Image.fromarray(np.zeros((4, 6), np.uint8)).save(p)
    >>> im = load_image(p)
    >>> im.mode, im.rgb.shape, im.native.shape
    ('L', (4, 6, 3), (4, 6))
    """
    path = Path(path)
    _check_readable(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # our own cap below gives the clearer message; Pillow's stays as a second guard
            Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)
            with Image.open(path) as img:
                fmt = img.format or ""
                if fmt not in SUPPORTED_FORMATS:
                    raise ImageError(path, f"unsupported image format {fmt or 'unknown'} "
                                           f"(supported: JPEG, PNG, WebP, TIFF, BMP)")
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(path, f"image too large: {width}x{height} = {width * height / 1e6:.0f} MP, "
                                           f"above the limit of {max_pixels / 1e6:.0f} MP (raise --max-pixels "
                                           f"if you trust this file)")
                if width == 0 or height == 0:
                    raise ImageError(path, "image has no pixels")
                frames = getattr(img, "n_frames", 1)
                if frames > 1 and fmt != "MPO":  # MPO: the primary picture comes first; the rest are previews
                    raise ImageError(path, f"has {frames} frames or pages; multi-frame images are not supported "
                                           f"(split it into single images first)")
                encoder = _encoder_hints_of(img)  # before load(), which may close the file
                img.load()
                metadata = _metadata_of(img)
                if _is_16bit_colour(path, img):
                    native, mode = _read_16bit_colour(path, img)
                else:
                    native, mode = _native_pixels(img)
    except ImageError as exc:
        if exc.path is None:
            raise ImageError(path, exc.problem) from None
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not an image (unrecognised file content)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(path, f"refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise ImageError(path, f"corrupt or truncated image ({_first_line(exc)})") from None
    fmt = "JPEG" if fmt == "MPO" else fmt
    return LoadedImage(rgb=native_to_rgb(native, mode), native=native, mode=mode, format=fmt, path=path,
                       metadata=metadata, encoder=encoder)


def image_from_array(array: np.ndarray) -> LoadedImage:
    """Wrap an in-memory array (grey, RGB or RGBA; uint8 or uint16) as a :class:`LoadedImage`."""
    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageError(None, f"unsupported pixel type {array.dtype} (expected uint8 or uint16)")
    deep = array.dtype == np.uint16
    if array.ndim == 2:
        mode = "I;16" if deep else "L"
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        mode = ("RGB" if array.shape[2] == 3 else "RGBA") + (";16" if deep else "")
    else:
        raise ImageError(None, f"unsupported array shape {array.shape} (expected HxW, HxWx3 or HxWx4)")
    return LoadedImage(rgb=native_to_rgb(array, mode), native=array.copy(), mode=mode, format="PNG")


def native_to_rgb(native: np.ndarray, mode: str) -> np.ndarray:
    """8-bit RGB working copy of native pixels."""
    if mode == "CMYK":
        return np.asarray(Image.frombytes("CMYK", native.shape[1::-1], native.tobytes()).convert("RGB"))
    pixels = native
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if mode == "LA":
        return np.repeat(pixels[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def compose_native(image: LoadedImage, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Native pixels with ``rgb`` blended in where ``mask`` (H, W, values 0..1) is non-zero.

    Pixels where the mask is 0 are returned bit-exact; alpha channels are never changed.
    """
    native = image.native
    if rgb.shape[:2] != native.shape[:2] or mask.shape != native.shape[:2]:
        raise ValueError("anonymized image and mask must have the size of the original")
    out = native.copy()
    for box in mask_regions(mask):
        changed = _rgb_to_native(np.ascontiguousarray(rgb[box]), image.mode)
        out[box] = blend_under_mask(native[box], changed, mask[box])
    if image.mode in ("LA", "RGBA", "RGBA;16"):
        out[:, :, -1] = native[:, :, -1]
    return out


def mask_regions(mask: np.ndarray) -> list[tuple[slice, slice]]:
    """Bounding boxes (row and column slices) of the connected non-zero parts of a mask.

    Work confined to these boxes costs in proportion to the faces, not to the whole picture.
    """
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    return [(slice(y, y + h), slice(x, x + w)) for x, y, w, h, _ in stats[1:count]]


def blend_under_mask(base: np.ndarray, overlay: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``base * (1 - mask) + overlay * mask`` in ``base``'s dtype; exact ``base`` wherever the mask is 0.

    >>> blend_under_mask(np.zeros((1, 2), np.uint8), np.full((1, 2), 200, np.uint8), np.array([[0.0, 0.5]]))
    array([[  0, 100]], dtype=uint8)
    """
    weight = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if base.ndim == 3:
        weight = weight[:, :, None]
    blended = base.astype(np.float32) * (1.0 - weight) + overlay.astype(np.float32) * weight
    out = np.rint(blended).astype(base.dtype)
    untouched = mask <= 0
    out[untouched] = base[untouched]
    return out


def save_image(image: LoadedImage, pixels: np.ndarray, path: str | Path, *, keep_metadata: bool = False,
               protected: frozenset[Path] = frozenset(), overwrite: bool = False) -> Path:
    """Write native ``pixels`` (same shape and dtype as ``image.native``) in the original's format, atomically.

    Refuses to replace an existing file unless ``overwrite``, and never writes over the image's own source
    or any path in ``protected`` (resolved paths, e.g. all inputs of a batch).
    """
    path = Path(path)
    if pixels.shape != image.native.shape or pixels.dtype != image.native.dtype:
        raise ValueError(f"pixels {pixels.shape} {pixels.dtype} do not match the image's "
                         f"{image.native.shape} {image.native.dtype}")
    target = path.resolve()
    sources = set(protected)
    if image.path is not None:
        sources.add(image.path.resolve())
    if target in sources or any(_same_file(target, s) for s in sources):
        raise ImageError(path, "refusing to write over an input file")
    if not overwrite and path.exists():
        raise ImageError(path, "output already exists (use --overwrite to replace it)")
    payload = _encode(pixels, image, _format_for(path, image.format), keep_metadata, path)
    _atomic_write(path, payload)
    return path


def copy_image(image: LoadedImage, path: str | Path, **options) -> Path:
    """Write an image with unchanged pixels (metadata stripped unless kept), e.g. when it has no face."""
    return save_image(image, image.native, path, **options)


# --- reading helpers --------------------------------------------------------------------------------

def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageError(path, "permission denied")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _native_pixels(img: Image.Image) -> tuple[np.ndarray, str]:
    img = _upright(img)
    mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode == "P" or mode == "PA":
        has_alpha = "transparency" in img.info or mode == "PA"
        mode = "RGBA" if has_alpha else "RGB"
        img = img.convert(mode)
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img).astype(np.uint16), "I;16"
    elif mode == "I":
        pixels = np.asarray(img)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ImageError(None, "32-bit integer pixels outside the 16-bit range are not supported")
        return pixels.astype(np.uint16), "I;16"
    elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        img, mode = img.convert("RGB"), "RGB"
    return np.array(img), mode


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop the pixels from being read
        return img


def _is_16bit_colour(path: Path, img: Image.Image) -> bool:
    """Pillow reads 16-bit-per-channel colour PNG/TIFF as 8 bits; those go through OpenCV instead."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    if img.format == "PNG":
        with open(path, "rb") as fh:
            header = fh.read(26)
        return len(header) >= 26 and header[24] == 16
    if img.format == "TIFF":
        bits = img.tag_v2.get(258)
        return bool(bits) and max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return False


def _read_16bit_colour(path: Path, img: Image.Image) -> tuple[np.ndarray, str]:
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 3:
        raise ImageError(path, "could not decode 16-bit colour pixels")
    if pixels.shape[2] == 4:
        pixels, mode = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA), "RGBA;16"
    else:
        pixels, mode = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), "RGB;16"
    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    return np.ascontiguousarray(_apply_orientation(pixels, orientation)), mode


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    ops = {2: lambda p: p[:, ::-1], 3: lambda p: p[::-1, ::-1], 4: lambda p: p[::-1],
           5: lambda p: np.swapaxes(p, 0, 1), 6: lambda p: np.rot90(p, -1), 7: lambda p: np.rot90(p, -1)[::-1],
           8: lambda p: np.rot90(p, 1)}
    return ops.get(orientation, lambda p: p)(pixels)


def _metadata_of(img: Image.Image) -> dict:
    """What ``--keep-metadata`` keeps: EXIF (without its thumbnail and maker note), ICC profile, DPI, PNG text.

    XMP is never kept: it can carry a preview of the un-anonymized picture. A metadata block too broken
    to parse is dropped rather than failing the image.
    """
    meta: dict = {}
    try:
        if len(img.getexif()):
            exif = Image.Exif()
            exif.load(img.getexif().tobytes())  # a copy: the image's own EXIF still drives the transpose
            exif[_EXIF_ORIENTATION] = 1  # pixels are stored upright from now on
            exif.get_ifd(_EXIF_IFD).pop(_MAKER_NOTE, None)  # vendor blobs can hold preview images
            meta["exif"] = exif.tobytes()  # IFD0, Exif and GPS IFDs; the IFD1 thumbnail is not written
        for key in ("icc_profile", "dpi"):
            if img.info.get(key):
                meta[key] = img.info[key]
        if img.format == "PNG":
            meta["png_text"] = {k: v for k, v in getattr(img, "text", {}).items() if isinstance(v, str)}
    except Exception:
        meta = {}
    return meta


def _encoder_hints_of(img: Image.Image) -> dict:
    hints: dict = {}
    if img.format in ("JPEG", "MPO"):
        try:
            hints["qtables"] = img.quantization
            hints["subsampling"] = JpegImagePlugin.get_sampling(img)
        except Exception:
            pass
    # only general-purpose codecs: fax (group3/4) and JPEG-in-TIFF do not fit every output mode
    if img.format == "TIFF" and img.info.get("compression") in ("tiff_lzw", "tiff_deflate", "tiff_adobe_deflate",
                                                                 "packbits"):
        hints["compression"] = img.info["compression"]
    if img.format == "WEBP" and _is_lossless_webp(img):
        hints["lossless"] = True
    return hints


def _is_lossless_webp(img: Image.Image) -> bool:
    """A WebP whose image chunk is VP8L (Pillow does not report it)."""
    try:
        fp = img.fp
        position = fp.tell()
        fp.seek(0)
        header = fp.read(64)
        fp.seek(position)
    except (AttributeError, OSError, ValueError):
        return False
    return b"VP8L" in header


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


# --- writing helpers --------------------------------------------------------------------------------

def _format_for(path: Path, default: str) -> str:
    return _SUFFIX_TO_FORMAT.get(path.suffix.lower(), default)


def _rgb_to_native(rgb: np.ndarray, mode: str) -> np.ndarray:
    if mode in ("L", "LA", "I;16"):
        grey = np.asarray(Image.fromarray(rgb).convert("L"))
        if mode == "LA":
            return np.stack([grey, np.zeros_like(grey)], axis=2)
        return grey.astype(np.uint16) * 257 if mode == "I;16" else grey
    if mode == "CMYK":
        return np.asarray(Image.fromarray(rgb).convert("CMYK"))
    out = rgb.astype(np.uint16) * 257 if mode.endswith(";16") else rgb
    if mode.startswith("RGBA"):
        out = np.concatenate([out, np.zeros_like(out[:, :, :1])], axis=2)
    return out


def _encode(native: np.ndarray, image: LoadedImage, fmt: str, keep_metadata: bool, path: Path) -> bytes:
    mode = image.mode
    if mode in ("RGB;16", "RGBA;16"):
        return _encode_16bit_colour(native, mode, fmt, path)
    if mode == "I;16":
        if fmt not in ("PNG", "TIFF"):
            native, mode = ((native.astype(np.uint32) + 128) // 257).astype(np.uint8), "L"
        pil = Image.fromarray(native.astype(np.uint16)) if mode == "I;16" else Image.fromarray(native)
    else:
        pil = Image.fromarray(native) if mode != "CMYK" else Image.frombytes("CMYK", native.shape[1::-1], native.tobytes())
    pil = _convert_for_format(pil, fmt)
    options: dict = {}
    if fmt == "JPEG":
        if "qtables" in image.encoder and image.format == "JPEG":
            options.update(qtables=image.encoder["qtables"], subsampling=image.encoder.get("subsampling", -1))
        else:
            options["quality"] = 95
    elif fmt == "WEBP":
        options.update(lossless=True) if image.encoder.get("lossless") else options.update(quality=92)
    elif fmt == "TIFF" and image.encoder.get("compression"):
        options["compression"] = image.encoder["compression"]
    elif fmt == "PNG":
        options["compress_level"] = 6
    if keep_metadata:
        options.update(_metadata_options(image.metadata, fmt))
    buffer = io.BytesIO()
    try:
        pil.save(buffer, fmt, **options)
    except (OSError, ValueError) as exc:
        raise ImageError(path, f"could not encode as {fmt} ({_first_line(exc)})") from None
    return buffer.getvalue()


def _convert_for_format(pil: Image.Image, fmt: str) -> Image.Image:
    """The closest mode a format can store (e.g. JPEG has no alpha: an RGBA input written as .jpg)."""
    allowed = {"JPEG": ("L", "RGB", "CMYK"), "BMP": ("L", "RGB", "RGBA"), "WEBP": ("RGB", "RGBA"),
               "PNG": ("L", "LA", "RGB", "RGBA", "I;16"), "TIFF": ("L", "LA", "RGB", "RGBA", "CMYK", "I;16")}
    if pil.mode in allowed.get(fmt, (pil.mode,)):
        return pil
    if pil.mode in ("LA", "RGBA") and "RGBA" in allowed[fmt]:
        return pil.convert("RGBA")
    return pil.convert("RGB")


def _metadata_options(meta: dict, fmt: str) -> dict:
    options: dict = {}
    if meta.get("exif") and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = meta["exif"]
    if meta.get("icc_profile") and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = meta["icc_profile"]
    if meta.get("dpi"):
        options["dpi"] = meta["dpi"]
    if meta.get("png_text") and fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in meta["png_text"].items():
            info.add_text(key, value)
        options["pnginfo"] = info
    return options


def _encode_16bit_colour(native: np.ndarray, mode: str, fmt: str, path: Path) -> bytes:
    import cv2

    if fmt not in ("PNG", "TIFF"):
        raise ImageError(path, f"16-bit colour cannot be written as {fmt}; use .png or .tif")
    code = cv2.COLOR_RGBA2BGRA if mode == "RGBA;16" else cv2.COLOR_RGB2BGR
    ok, encoded = cv2.imencode(".png" if fmt == "PNG" else ".tif", cv2.cvtColor(native, code))
    if not ok:
        raise ImageError(path, f"could not encode 16-bit colour {fmt}")
    return encoded.tobytes()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file (a report) atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, payload: bytes) -> Path:
    """Write a file (a plot, a report) atomically: readers see the old file or the new one, never a part."""
    path = Path(path)
    _atomic_write(path, payload)
    return path


def _atomic_write(path: Path, payload: bytes) -> None:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get ordinary permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ImageError(path, f"could not write ({exc.strerror or exc})") from None
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
