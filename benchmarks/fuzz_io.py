"""Fuzz campaign over the image reader, the writer and ``anonymize`` (property-based, with Hypothesis).

    python benchmarks/fuzz_io.py --minutes 5

Inputs: valid files in every supported format (random sizes, modes, bit depths, channel counts, EXIF
orientations, encoder options), then the same truncated, with bits flipped, or replaced by random bytes
behind a format's magic number; and random arrays (sizes from zero, uint8/uint16 and other dtypes,
1 to 5 channels, sometimes with a face pasted in) for ``anonymize``. Properties:

* only the project's own errors (:class:`lookalike.errors.ImageError`) are raised, never another
  exception, never a crash of the process;
* the input file is byte-identical afterwards;
* an output either does not exist or decodes completely (read back with :func:`load_image`);
* pixels outside the mask are unchanged (exactly, in lossless formats and for ``anonymize``).

It prints the inputs tried and the crashes (must be 0). Each batch runs in a child process, so a crash
of the interpreter (a segfault in a decoder) is counted too, and the input that caused it is kept.
``tests/io/test_fuzz.py`` runs a few examples of the same properties in the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.errors import ImageError

#: The modes each output format is fuzzed with (";16": 16 bits per channel; "F": 32-bit float).
MODES = {
    ".jpg": ("L", "RGB", "CMYK"),
    ".png": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "LA;16", "RGB;16", "RGBA;16"),
    ".webp": ("RGB", "RGBA"),
    ".tif": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "F", "RGB;16"),
    ".bmp": ("1", "L", "P", "RGB"),
}
LOSSLESS = (".png", ".tif", ".bmp")
MAGIC = (
    b"",
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
)


def encode_file(suffix: str, mode: str, width: int, height: int, seed: int, orientation: int, option: int) -> bytes:
    """A valid file of the given format and mode with random pixels."""
    import cv2
    from PIL import Image

    from lookalike.io.images import _png_grey_alpha_16

    rng = np.random.default_rng(seed)
    if mode == "LA;16":
        return _png_grey_alpha_16(rng.integers(0, 65536, (height, width, 2)).astype(np.uint16))
    if mode in ("RGB;16", "RGBA;16"):
        pixels = rng.integers(0, 65536, (height, width, 3 if mode == "RGB;16" else 4)).astype(np.uint16)
        ok, data = cv2.imencode(suffix, pixels)
        assert ok
        return data.tobytes()
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if option % 3 == 0:  # smooth content, as photos are, besides noise
        rgb = np.asarray(Image.fromarray(rgb).resize((max(1, width // 4), max(1, height // 4))).resize((width, height)))
    image = Image.fromarray(rgb)
    if mode == "P":
        image = image.quantize(1 + option % 64)
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16))
    elif mode == "F":
        image = Image.fromarray((rng.random((height, width)) * (1.0, 255.0, 40000.0)[option % 3]).astype(np.float32))
    elif mode in ("LA", "RGBA"):
        alpha = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))
        image = image.convert(mode[:-1])
        image.putalpha(alpha)
    elif mode != "RGB":
        image = image.convert(mode)
    options: dict = {}
    if orientation != 1 and suffix in (".jpg", ".png", ".webp", ".tif"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        exif[0x010F] = "FuzzCam"
        options["exif"] = exif.tobytes()
    if suffix == ".jpg":
        options.update(quality=30 + option % 70, progressive=bool(option & 1))
    elif suffix == ".webp":
        options.update(lossless=bool(option & 1), quality=50)
    elif suffix == ".tif":
        options["compression"] = (None, "tiff_lzw", "tiff_deflate", "packbits")[option % 4]
    if mode == "P" and option & 2 and suffix == ".png":
        options["transparency"] = bytes(range(0, 256, 7))
    buffer = io.BytesIO()
    image.save(
        buffer, {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".bmp": "BMP"}[suffix], **options
    )
    return buffer.getvalue()


@st.composite
def image_files(draw) -> tuple[str, bytes, str]:
    """(suffix, file bytes, what was done to them)."""
    suffix = draw(st.sampled_from(sorted(MODES)))
    kind = draw(st.sampled_from(["valid", "valid", "truncated", "bit flips", "random bytes"]))
    if kind == "random bytes":
        return suffix, draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=600)), kind
    mode = draw(st.sampled_from(MODES[suffix]))
    data = encode_file(
        suffix,
        mode,
        draw(st.integers(1, 40)),
        draw(st.integers(1, 40)),
        draw(st.integers(0, 2**31)),
        draw(st.integers(1, 8)),
        draw(st.integers(0, 1000)),
    )
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "bit flips":
        flipped = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            flipped[position] ^= 1 << draw(st.integers(0, 7))
        data = bytes(flipped)
    return suffix, data, f"{kind} {mode}"


def check_file(folder: Path, suffix: str, data: bytes, mask_seed: int, keep_metadata: bool) -> str:
    """Read ``data`` as a file, change a random region, write it back; assert the properties.
    Returns what happened ("refused on read", "refused on write", "written")."""
    from lookalike.io import compose_native, load_image, save_image

    source, target = folder / f"in{suffix}", folder / "out" / f"o{suffix}"
    target.unlink(missing_ok=True)  # left by an earlier input that failed a property
    source.write_bytes(data)
    try:
        image = load_image(source)
    except ImageError:
        assert source.read_bytes() == data, "the input changed"
        return "refused on read"
    height, width = image.native.shape[:2]
    rng = np.random.default_rng(mask_seed)
    mask = np.zeros((height, width), np.float32)
    y0, x0 = rng.integers(0, height), rng.integers(0, width)
    mask[y0 : y0 + rng.integers(1, height + 1), x0 : x0 + rng.integers(1, width + 1)] = rng.choice([0.5, 1.0])
    try:
        save_image(image, compose_native(image, 255 - image.rgb, mask), target, keep_metadata=keep_metadata)
    except ImageError:
        assert not target.exists(), "a refused output exists"
        assert source.read_bytes() == data, "the input changed"
        return "refused on write"
    assert source.read_bytes() == data, "the input changed"
    written = load_image(target)  # decodes completely, or raises
    if written.native.shape != image.native.shape:  # libwebp leaves out an alpha channel opaque everywhere
        assert (suffix, image.mode, written.mode) == (".webp", "RGBA", "RGB"), (written.mode, image.mode)
        assert (image.native[:, :, 3] == 255).all(), "a WebP lost its transparency"
    lossless = suffix in LOSSLESS or (suffix == ".webp" and image.encoder.get("lossless"))
    if lossless and image.mode != "CMYK" and written.mode == image.mode:
        outside = mask == 0
        assert np.array_equal(written.native[outside], image.native[outside]), "pixels outside the mask changed"
    target.unlink()
    return "written"


@st.composite
def arrays(draw) -> np.ndarray:
    """Arrays ``anonymize`` may be given: any size from zero, several dtypes and channel counts,
    sometimes with a face in them."""
    dtype = draw(st.sampled_from([np.uint8, np.uint8, np.uint16, np.float32, np.int32, np.bool_]))
    channels = draw(st.sampled_from([None, 1, 2, 3, 3, 4, 5]))
    height, width = draw(st.integers(0, 96)), draw(st.integers(0, 96))
    shape = (height, width) if channels is None else (height, width, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    array = (rng.random(shape) * (65535 if dtype == np.uint16 else 255)).astype(dtype)
    if draw(st.booleans()) and height >= 48 and width >= 48 and channels in (3, 4) and dtype in (np.uint8, np.uint16):
        from PIL import Image
        from skimage.data import astronaut

        size = draw(st.integers(40, min(height, width)))
        face = np.asarray(Image.fromarray(astronaut()[20:260, 130:350]).resize((size, size)))
        y, x = draw(st.integers(0, height - size)), draw(st.integers(0, width - size))
        array[y : y + size, x : x + size, :3] = face if dtype == np.uint8 else face.astype(np.uint16) * 257
    return array


def check_array(array: np.ndarray) -> str:
    from lookalike.pipeline import anonymize

    before = array.copy()
    try:
        result = anonymize(array, method="blur", rotations="off")
    except ImageError:
        assert np.array_equal(array, before), "the input array changed"
        return "refused"
    assert np.array_equal(array, before), "the input array changed"
    assert result.image.shape == array.shape and result.image.dtype == array.dtype
    outside = result.mask <= 0
    assert np.array_equal(result.image[outside], array[outside]), "pixels outside the mask changed"
    return f"{len(result.faces)} faces"


# --- the campaign -------------------------------------------------------------------------------------


def _worker(seconds: float, seed: int, progress: Path) -> None:
    """Run the properties until ``seconds`` have passed; after each input, the counts go to ``progress``
    (and the input about to be tried, so that a crash of this process leaves it behind)."""
    counts = {"tried": 0, "crashes": 0, "outcomes": {}, "failures": []}
    deadline = time.monotonic() + seconds
    folder = Path(tempfile.mkdtemp(prefix="fuzz-io-"))

    def record(outcome: str) -> None:
        counts["tried"] += 1
        counts["outcomes"][outcome] = counts["outcomes"].get(outcome, 0) + 1
        progress.write_text(json.dumps(counts))

    def run(check, *args, describe: str) -> None:
        (progress.with_suffix(".input")).write_text(describe)
        try:
            record(check(*args))
        except Exception as exc:  # noqa: BLE001 - anything but the project's own error is a crash
            counts["crashes"] += 1
            counts["failures"].append(f"{describe}: {''.join(traceback.format_exception_only(exc)).strip()}")
            record("crash")

    def common(examples: int):
        return settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )

    @common(200)
    @given(image_files(), st.integers(0, 2**31), st.booleans())
    def files(case, mask_seed, keep_metadata):
        if time.monotonic() > deadline:
            raise _Done
        suffix, data, kind = case
        run(
            check_file,
            folder,
            suffix,
            data,
            mask_seed,
            keep_metadata,
            describe=f"file {suffix} ({kind}, {len(data)} bytes) {data[:64].hex()}",
        )

    @common(20)
    @given(arrays())
    def array_cases(array):
        if time.monotonic() > deadline:
            raise _Done
        run(check_array, array, describe=f"array {array.shape} {array.dtype}")

    while time.monotonic() < deadline:  # files and arrays by turns
        for test in (files, array_cases):
            try:
                test()
            except _Done:
                return


class _Done(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the campaign runs")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="how long each child process runs")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.batch_seconds, args.seed, args.worker)
        return
    totals = {"tried": 0, "crashes": 0, "outcomes": {}, "failures": []}
    deadline = time.monotonic() + args.minutes * 60
    started, seed = time.monotonic(), 0
    with tempfile.TemporaryDirectory() as scratch:
        while time.monotonic() < deadline:
            progress = Path(scratch) / f"batch{seed}.json"
            seconds = max(5.0, min(args.batch_seconds, deadline - time.monotonic()))
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(progress),
                    "--seed",
                    str(seed),
                    "--batch-seconds",
                    str(seconds),
                ],
                capture_output=True,
                text=True,
            )
            counts = (
                json.loads(progress.read_text())
                if progress.exists()
                else {"tried": 0, "crashes": 0, "outcomes": {}, "failures": []}
            )
            if done.returncode != 0:  # the interpreter itself died: a crash, with the input it was on
                last = progress.with_suffix(".input")
                counts["crashes"] += 1
                counts["tried"] += 1
                counts["failures"].append(
                    f"process died ({done.returncode}) on "
                    f"{last.read_text() if last.exists() else '?'}: {done.stderr[-300:]}"
                )
            totals["tried"] += counts["tried"]
            totals["crashes"] += counts["crashes"]
            totals["failures"] += counts["failures"]
            for key, value in counts["outcomes"].items():
                totals["outcomes"][key] = totals["outcomes"].get(key, 0) + value
            seed += 1
    minutes = (time.monotonic() - started) / 60
    print(f"inputs tried: {totals['tried']} in {minutes:.1f} min | crashes: {totals['crashes']}")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(totals["outcomes"].items())))
    for failure in totals["failures"][:20]:
        print("crash:", failure)
    sys.exit(1 if totals["crashes"] else 0)


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    main()
