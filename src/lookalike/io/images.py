"""Reading and writing images without losing anything that was not asked to change.

Every image is read into two views:

* ``native``: the pixels in the file's own representation (8 or 16 bit, grey, RGB, RGBA, CMYK), after
  the EXIF orientation has been applied, so a face is upright where a viewer shows it upright;
* ``rgb``: an 8-bit RGB working copy that detection and anonymization run on.

An anonymizer returns a new RGB working image and a soft mask of the pixels it changed. Writing composes
the change into the native pixels under that mask, so pixels outside the mask keep their exact original
values, alpha stays as it was, and a 16-bit or CMYK file stays 16-bit or CMYK.

Metadata (EXIF with GPS, XMP, ICC profiles, PNG text chunks, TIFF tags) is dropped unless asked for, and
what is kept is an allow-list (:data:`KEPT_EXIF_TAGS`): never a thumbnail, preview, XMP, IPTC, Photoshop
resources or maker notes.

Writes go to a temporary file beside the target, which is then published under its final name: linked
there (which fails if the name exists, so a file that appeared meanwhile is never replaced) or, with
``overwrite``, renamed over it. A crash never leaves a half-written file under a final name; a
temporary left by a killed process is removed by the next run (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import errno
import io
import os
import re
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from lookalike.errors import ImageError
from lookalike.imaging import blend_under_mask, mask_regions

if TYPE_CHECKING:
    from PIL import ImageFile, TiffImagePlugin

#: File formats read and written; the key is Pillow's format name.
SUPPORTED_FORMATS = {
    "JPEG": (".jpg", ".jpeg", ".jpe"),
    "MPO": (),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "TIFF": (".tif", ".tiff"),
    "BMP": (".bmp",),
}
IMAGE_SUFFIXES = frozenset(s for suffixes in SUPPORTED_FORMATS.values() for s in suffixes)

#: Default cap on pixels per image; a decompression bomb is refused before it is decoded.
DEFAULT_MAX_PIXELS = 120_000_000

_SUFFIX_TO_FORMAT = {s: fmt for fmt, suffixes in SUPPORTED_FORMATS.items() for s in suffixes}
_EXIF_ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825

#: What ``--keep-metadata`` keeps of EXIF, by IFD: camera, lens, exposure, date and resolution (IFD0 and
#: the Exif IFD), and the whole GPS IFD (documented). Everything else is dropped: the IFD1 thumbnail, maker
#: notes, XMP (tag 700), IPTC (33723), Photoshop resources (34377), free-text comments, TIFF layout tags.
KEPT_EXIF_TAGS = {
    "IFD0": frozenset({0x010F, 0x0110, 0x011A, 0x011B, 0x0128, 0x0132}),  # make, model, resolution, date
    "Exif": frozenset(
        {
            0x829A,
            0x829D,
            0x8822,
            0x8827,
            0x8830,
            0x8832,
            0x9000,
            0x9003,
            0x9004,
            0x9010,
            0x9011,
            0x9012,
            0x9201,
            0x9202,
            0x9203,
            0x9204,
            0x9205,
            0x9206,
            0x9207,
            0x9208,
            0x9209,
            0x920A,
            0x9290,
            0x9291,
            0x9292,
            0xA001,
            0xA20E,
            0xA20F,
            0xA210,
            0xA215,
            0xA217,
            0xA401,
            0xA402,
            0xA403,
            0xA404,
            0xA405,
            0xA406,
            0xA407,
            0xA408,
            0xA409,
            0xA40A,
            0xA40C,
            0xA432,
            0xA433,
            0xA434,
        }
    ),  # exposure, aperture, ISO, dates and offsets, flash, focal length, white balance, lens
}

#: Temporary files this module writes: ``.NAME.lookalike-PID-RANDOM.tmp`` beside the target.
_TEMPORARY = re.compile(r"^\..+\.lookalike-(\d+)-[A-Za-z0-9_]+\.tmp$")


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
        return self.mode in _ALPHA_MODES


_ALPHA_MODES = ("LA", "LA;16", "RGBA", "RGBA;16")


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
            # our own cap below, checked before anything is decoded, gives the clearer message (with the
            # size); Pillow's error, far above it, stays as a second guard and is reported the same way
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow's own complaints about a broken block (e.g. "Corrupt EXIF data") would be a second line
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, 4 * max_pixels)
            with Image.open(path) as img:
                fmt = img.format or ""
                if fmt not in SUPPORTED_FORMATS:
                    raise ImageError(
                        path, f"unsupported image format {fmt or 'unknown'} (supported: JPEG, PNG, WebP, TIFF, BMP)"
                    )
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(
                        path,
                        f"image too large: {width}x{height} = {width * height / 1e6:.0f} MP, "
                        f"above the limit of {max_pixels / 1e6:.0f} MP (raise --max-pixels "
                        f"if you trust this file)",
                    )
                if width == 0 or height == 0:
                    raise ImageError(path, "image has no pixels")
                frames = getattr(img, "n_frames", 1)
                if frames > 1 and fmt != "MPO":  # MPO: the primary picture comes first; the rest are previews
                    raise ImageError(
                        path,
                        f"has {frames} frames or pages; multi-frame images are not supported "
                        f"(split it into single images first)",
                    )
                encoder = _encoder_hints_of(img)  # before load(), which may close the file
                img.load()
                metadata = _metadata_of(img)
                if _is_16bit_colour(path, img):
                    native, mode = _read_16bit_colour(path, img)
                else:
                    native, mode = _native_pixels(img, encoder)
    except ImageError as exc:
        if exc.path is None:
            raise ImageError(path, exc.problem) from None
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not an image (unrecognised file content)") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)) / 1e6:.0f} MP" if found else "too many pixels"
        raise ImageError(
            path,
            f"image too large: {size}, above the limit of {max_pixels / 1e6:.0f} MP "
            f"(refused as a decompression bomb before decoding)",
        ) from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        struct.error,
        EOFError,
        TypeError,
        KeyError,
        IndexError,
        ZeroDivisionError,
        OverflowError,
    ) as exc:  # decoders on broken headers
        raise ImageError(path, f"corrupt or truncated image ({_first_line(exc)})") from None
    fmt = "JPEG" if fmt == "MPO" else fmt
    return LoadedImage(
        rgb=_working_rgb(native, mode, encoder),
        native=native,
        mode=mode,
        format=fmt,
        path=path,
        metadata=metadata,
        encoder=encoder,
    )


def image_from_array(array: np.ndarray) -> LoadedImage:
    """Wrap an in-memory array (grey, RGB or RGBA; uint8 or uint16) as a :class:`LoadedImage`."""
    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageError(None, f"unsupported pixel type {array.dtype} (expected uint8 or uint16)")
    if array.size == 0 or array.ndim < 2 or 0 in array.shape[:2]:
        raise ImageError(None, f"image has no pixels (array shape {array.shape})")
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
        return np.asarray(Image.frombytes("CMYK", (native.shape[1], native.shape[0]), native.tobytes()).convert("RGB"))
    pixels = native
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if mode.startswith("LA"):
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
        if image.mode == "P":  # indices cannot be blended: blend the colours, then take the nearest entry
            blended = blend_under_mask(image.rgb[box], np.ascontiguousarray(rgb[box]), mask[box])
            out[box] = np.where(mask[box] > 0, _to_palette(blended, native[box], image.encoder), native[box])
            continue
        changed = _rgb_to_native(np.ascontiguousarray(rgb[box]), image.mode)
        out[box] = blend_under_mask(native[box], changed, mask[box])
    if image.mode in _ALPHA_MODES:
        out[:, :, -1] = native[:, :, -1]
    return out


def save_image(
    image: LoadedImage,
    pixels: np.ndarray,
    path: str | Path,
    *,
    keep_metadata: bool = False,
    protected: frozenset[Path] = frozenset(),
    overwrite: bool = False,
) -> Path:
    """Write native ``pixels`` (same shape and dtype as ``image.native``) in the original's format, atomically.

    Refuses to replace an existing file unless ``overwrite``, and never writes over the image's own source
    or any path in ``protected`` (resolved paths, e.g. all inputs of a batch).
    """
    path = Path(path)
    sources = frozenset(protected) | ({resolved(image.path)} if image.path is not None else frozenset())
    check_target(path, sources, overwrite)  # before encoding: a refused file costs nothing
    payload = encode_image(image, pixels, path, keep_metadata=keep_metadata)
    return publish_bytes(path, payload, overwrite=overwrite, protected=sources)


def encode_image(image: LoadedImage, pixels: np.ndarray, path: str | Path, *, keep_metadata: bool = False) -> bytes:
    """The bytes :func:`save_image` would write to ``path`` (its suffix picks the format)."""
    path = Path(path)
    if pixels.shape != image.native.shape or pixels.dtype != image.native.dtype:
        raise ValueError(
            f"pixels {pixels.shape} {pixels.dtype} do not match the image's {image.native.shape} {image.native.dtype}"
        )
    return _encode(pixels, image, _format_for(path, image.format), keep_metadata, path)


def resolved(path: str | Path) -> Path:
    """``path`` made absolute with its links followed; a link loop or an unreadable link stays as written
    (absolute) instead of raising."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop from ..." (Python 3.11)
        return Path(os.path.abspath(path))


def check_target(path: str | Path, protected: frozenset[Path] = frozenset(), overwrite: bool = False) -> None:
    """Raise :class:`ImageError` if ``path`` is one of ``protected`` (resolved inputs) or the same file as
    one, or if it exists and ``overwrite`` is false."""
    path = Path(path)
    target = resolved(path)
    if target in protected or any(_same_file(target, s) for s in protected):
        raise ImageError(path, "refusing to write over an input file")
    if not overwrite and os.path.lexists(path):
        raise ImageError(path, "output already exists (use --overwrite to replace it)")


def publish_bytes(
    path: str | Path, payload: bytes, *, overwrite: bool = False, protected: frozenset[Path] = frozenset()
) -> Path:
    """Write a new file atomically without ever replacing one: never an input (``protected``), never an
    existing file unless ``overwrite``, also when the file appears while this one is being written."""
    path = Path(path)
    check_target(path, protected, overwrite)
    _atomic_write(path, payload, exclusive=not overwrite)
    return path


def publish_file(
    tmp: str | Path, path: str | Path, *, overwrite: bool = False, protected: frozenset[Path] = frozenset()
) -> Path:
    """Publish a finished temporary file (written beside ``path`` under this module's temporary name, as a
    video writer does) under ``path``, with the rules of :func:`publish_bytes`; the temporary is gone after,
    published or not. For outputs too large to hold as bytes."""
    path, tmp = Path(path), Path(tmp)
    try:
        check_target(path, protected, overwrite)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(str(tmp), path)
    except OSError as exc:
        raise ImageError(path, f"could not write ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files that a killed lookalike process left under ``folder`` (recursively).

    Only this module's own temporaries (``.NAME.lookalike-PID-RANDOM.tmp``) whose process is gone are
    removed; those of a run still going are left alone.
    """
    removed = []
    for here, _, files in os.walk(folder):
        for name in files:
            found = _TEMPORARY.match(name)
            if found and not _process_alive(int(found.group(1))):
                try:
                    os.unlink(os.path.join(here, name))
                    removed.append(Path(here) / name)
                except OSError:
                    pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not ours to judge: keep the file
    return True


def copy_image(image: LoadedImage, path: str | Path, **options) -> Path:
    """Write an image with unchanged pixels (metadata stripped unless kept), e.g. when it has no face."""
    return save_image(image, image.native, path, **options)


# --- reading helpers --------------------------------------------------------------------------------


def _check_readable(path: Path) -> None:
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(path, "symbolic link loop (the link points back at itself)") from None
        if path.is_symlink():
            raise ImageError(path, "broken symbolic link (its target does not exist)") from None
        if exc.errno == errno.ENOENT:
            raise ImageError(path, "no such file") from None
        raise ImageError(path, f"cannot be read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageError(path, "permission denied")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _native_pixels(img: Image.Image, encoder: dict | None = None) -> tuple[np.ndarray, str]:
    fmt = img.format
    img = _upright(img)
    mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode == "P" and fmt == "PNG" and encoder is not None:  # palette PNG stays a palette PNG
        palette = np.zeros((256, 3), np.uint8)
        entries = np.asarray(img.getpalette("RGB") or [], np.uint8).reshape(-1, 3)[:256]
        palette[: len(entries)] = entries
        alpha = np.full(256, 255, np.uint8)
        transparency = img.info.get("transparency")
        if isinstance(transparency, int) and 0 <= transparency < 256:
            alpha[transparency] = 0
        elif isinstance(transparency, bytes):
            alpha[: len(transparency[:256])] = np.frombuffer(transparency[:256], np.uint8)
        encoder.update(palette=palette, palette_alpha=alpha)
        return np.array(img), "P"
    elif mode == "F":
        return _float_pixels(np.asarray(img, dtype=np.float64)), "I;16"
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


def _float_pixels(pixels: np.ndarray) -> np.ndarray:
    """Floating-point grey (32-bit float TIFF) as 16 bits, scaled by its range: 0..1, 0..255 or 0..65535."""
    if not np.isfinite(pixels).all():
        raise ImageError(None, "floating-point pixels include NaN or infinity (not supported)")
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0 or high > 65535:
        raise ImageError(
            None,
            f"floating-point pixels range from {low:g} to {high:g}, outside 0..1, 0..255 and 0..65535 (not supported)",
        )
    scale = 65535.0 if high <= 1.0 else 257.0 if high <= 255.0 else 1.0
    return np.rint(pixels * scale).astype(np.uint16)


def _working_rgb(native: np.ndarray, mode: str, encoder: dict) -> np.ndarray:
    if mode == "P":
        return encoder["palette"][native]
    return native_to_rgb(native, mode)


def _to_palette(rgb: np.ndarray, indices: np.ndarray, encoder: dict) -> np.ndarray:
    """The palette entry nearest to each colour, among the entries as opaque as the one it replaces (so
    transparency never changes)."""
    from scipy.spatial import cKDTree

    palette, alpha = encoder["palette"].astype(np.float64), encoder["palette_alpha"]
    out = indices.copy()
    for level in np.unique(alpha[indices]):
        where = alpha[indices] == level
        entries = np.flatnonzero(alpha == level)
        _, nearest = cKDTree(palette[entries]).query(rgb[where].astype(np.float64))
        out[where] = entries[nearest]
    return out


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop the pixels from being read
        return img


def _is_16bit_colour(path: Path, img: Image.Image) -> bool:
    """Pillow reads 16-bit-per-channel colour PNG/TIFF (and 16-bit grey+alpha PNG) as 8 bits; those go
    through OpenCV instead."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    if img.format == "PNG":
        with open(path, "rb") as fh:
            header = fh.read(26)
        return len(header) >= 26 and header[24] == 16
    if img.format == "TIFF":
        bits = cast("TiffImagePlugin.TiffImageFile", img).tag_v2.get(258)  # format TIFF: read by the TIFF plugin
        return bool(bits) and max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return False


def _read_16bit_colour(path: Path, img: Image.Image) -> tuple[np.ndarray, str]:
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 3:
        raise ImageError(path, "could not decode 16-bit colour pixels")
    grey_alpha = img.format == "PNG" and _png_colour_type(path) == 4  # OpenCV reads grey+alpha as BGRA
    if pixels.shape[2] == 4 and grey_alpha:
        pixels, mode = np.ascontiguousarray(pixels[:, :, [0, 3]]), "LA;16"
    elif pixels.shape[2] == 4:
        pixels, mode = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA), "RGBA;16"
    else:
        pixels, mode = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), "RGB;16"
    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    return np.ascontiguousarray(_apply_orientation(pixels, orientation)), mode


def _png_colour_type(path: Path) -> int | None:
    with open(path, "rb") as fh:
        header = fh.read(26)
    return header[25] if len(header) >= 26 else None


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    ops = {
        2: lambda p: p[:, ::-1],
        3: lambda p: p[::-1, ::-1],
        4: lambda p: p[::-1],
        5: lambda p: np.swapaxes(p, 0, 1),
        6: lambda p: np.rot90(p, -1),
        7: lambda p: np.rot90(p, -1)[::-1],
        8: lambda p: np.rot90(p, 1),
    }
    return ops.get(orientation, lambda p: p)(pixels)


#: PNG text chunks ``--keep-metadata`` keeps (short values only); never XMP ("XML:com.adobe.xmp") or the
#: "Raw profile type ..." chunks (EXIF, IPTC, Photoshop resources with their thumbnails).
KEPT_PNG_TEXT = frozenset({"Title", "Author", "Copyright", "Creation Time", "Software", "Source"})
_PNG_TEXT_LIMIT = 1024


def _metadata_of(img: Image.Image) -> dict:
    """What ``--keep-metadata`` keeps: an allow-list of EXIF (:data:`KEPT_EXIF_TAGS`: camera, lens,
    exposure, date, resolution, GPS), the ICC profile, DPI and a few PNG text chunks (:data:`KEPT_PNG_TEXT`).

    Never a thumbnail or preview, XMP, IPTC, Photoshop resources or maker notes: they can show the
    un-anonymized picture. A metadata block too broken to parse is dropped rather than failing the image.
    """
    meta: dict = {}
    try:
        source = img.getexif()
        if len(source):
            exif = Image.Exif()
            for tag in KEPT_EXIF_TAGS["IFD0"]:
                if tag in source:
                    exif[tag] = source[tag]
            kept = {tag: value for tag, value in source.get_ifd(_EXIF_IFD).items() if tag in KEPT_EXIF_TAGS["Exif"]}
            if kept:
                exif[_EXIF_IFD] = kept
            gps = dict(source.get_ifd(_GPS_IFD))
            if gps:
                exif[_GPS_IFD] = gps
            if _EXIF_ORIENTATION in source:
                exif[_EXIF_ORIENTATION] = 1  # pixels are stored upright from now on
            if len(exif):
                meta["exif"] = exif.tobytes()
        for key in ("icc_profile", "dpi"):
            if img.info.get(key):
                meta[key] = img.info[key]
        if img.format == "PNG":
            meta["png_text"] = {
                k: v
                for k, v in getattr(img, "text", {}).items()
                if k in KEPT_PNG_TEXT and isinstance(v, str) and len(v) <= _PNG_TEXT_LIMIT
            }
    except Exception:  # noqa: BLE001 - metadata is best effort: unreadable metadata is dropped, the pixels still load
        meta = {}
    return meta


def _encoder_hints_of(img: Image.Image) -> dict:
    hints: dict = {}
    if img.format in ("JPEG", "MPO"):
        try:
            hints["qtables"] = cast("JpegImagePlugin.JpegImageFile", img).quantization  # format JPEG or MPO
            hints["subsampling"] = JpegImagePlugin.get_sampling(img)
        except Exception:  # noqa: BLE001 - encoder hints are best effort: the save falls back to defaults
            pass
    # only general-purpose codecs: fax (group3/4) and JPEG-in-TIFF do not fit every output mode
    if img.format == "TIFF" and img.info.get("compression") in (
        "tiff_lzw",
        "tiff_deflate",
        "tiff_adobe_deflate",
        "packbits",
    ):
        hints["compression"] = img.info["compression"]
    if img.format == "WEBP" and _is_lossless_webp(img):
        hints["lossless"] = True
    return hints


def _is_lossless_webp(img: Image.Image) -> bool:
    """A WebP whose image chunk is VP8L (Pillow does not report it)."""
    try:
        fp = cast("ImageFile.ImageFile", img).fp  # format WEBP: read from a file
        if fp is None:  # closed: as an AttributeError on fp.tell() did
            return False
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
    if mode in ("L", "LA", "I;16", "LA;16"):
        grey = np.asarray(Image.fromarray(rgb).convert("L"))
        if mode == "LA;16":
            grey = grey.astype(np.uint16) * 257
        if mode.startswith("LA"):
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
    if mode == "LA;16":
        if fmt == "PNG":
            return _png_grey_alpha_16(native)
        native, mode = native[:, :, [0, 0, 0, 1]], "RGBA;16"
    if mode in ("RGB;16", "RGBA;16"):
        return _encode_16bit_colour(native, mode, fmt, path)
    if mode == "P":
        pil = Image.fromarray(native, "P")
        pil.putpalette(image.encoder["palette"].tobytes(), "RGB")
        if (image.encoder["palette_alpha"] < 255).any():
            pil.info["transparency"] = image.encoder["palette_alpha"].tobytes()
    elif mode == "I;16":
        if fmt not in ("PNG", "TIFF"):
            native, mode = ((native.astype(np.uint32) + 128) // 257).astype(np.uint8), "L"
        pil = Image.fromarray(native.astype(np.uint16)) if mode == "I;16" else Image.fromarray(native)
    else:
        pil = (
            Image.fromarray(native)
            if mode != "CMYK"
            else Image.frombytes("CMYK", (native.shape[1], native.shape[0]), native.tobytes())
        )
    pil = _convert_for_format(pil, fmt)
    options: dict = {}
    if fmt == "JPEG":
        if "qtables" in image.encoder and image.format == "JPEG":
            options.update(qtables=image.encoder["qtables"], subsampling=image.encoder.get("subsampling", -1))
        else:
            options["quality"] = 95
    elif fmt == "WEBP":
        # exact: libwebp would otherwise rewrite the colour of fully transparent pixels
        options.update(lossless=True, exact=True) if image.encoder.get("lossless") else options.update(quality=92)
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
    allowed = {
        "JPEG": ("L", "RGB", "CMYK"),
        "BMP": ("L", "RGB", "RGBA"),
        "WEBP": ("RGB", "RGBA"),
        "PNG": ("L", "LA", "RGB", "RGBA", "I;16", "P"),
        "TIFF": ("L", "LA", "RGB", "RGBA", "CMYK", "I;16"),
    }
    if pil.mode in allowed.get(fmt, (pil.mode,)):
        return pil
    if pil.mode == "P":
        pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
        if pil.mode in allowed[fmt]:
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


def _png_grey_alpha_16(native: np.ndarray) -> bytes:
    """A 16-bit grey+alpha PNG (colour type 4), which neither Pillow nor OpenCV writes.

    >>> from PIL import Image
    >>> pixels = np.array([[[1, 65535], [300, 0]]], np.uint16)
    >>> Image.open(io.BytesIO(_png_grey_alpha_16(pixels))).size
    (2, 1)
    """
    height, width = native.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = np.ascontiguousarray(native.astype(">u2")).reshape(height, width * 2)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows.view(np.uint8).reshape(height, -1)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file (a report) atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, payload: bytes) -> Path:
    """Write a file (a plot, a report) atomically: readers see the old file or the new one, never a part."""
    path = Path(path)
    _atomic_write(path, payload)
    return path


def _atomic_write(path: Path, payload: bytes, exclusive: bool = False) -> None:
    """Write ``payload`` to a temporary file beside ``path``, then publish it under ``path``: linked there
    when ``exclusive`` (fails if the name exists: nothing is ever replaced), renamed over it otherwise."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.lookalike-{os.getpid()}-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get ordinary permissions
        if exclusive:
            _link_new(tmp, path)
        else:
            os.replace(tmp, path)
            tmp = None
    except BaseException as exc:
        if isinstance(exc, OSError):
            raise ImageError(path, f"could not write ({exc.strerror or exc})") from None
        raise
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _link_new(tmp: str, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path`` unless that name exists (checked by the file system)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise ImageError(path, "output already exists (use --overwrite to replace it)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links: the best left is a check just before the rename
        if os.path.lexists(path):
            raise ImageError(path, "output already exists (use --overwrite to replace it)") from None
        os.replace(tmp, path)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
