"""Short synthetic clips composed from still portraits, for the tests and the video benchmark.

Nothing is downloaded: the portraits are ``skimage.data.astronaut()`` and whatever still the caller passes
(the repository's ``examples/group.jpg``). Each scenario stresses one part of the video pipeline:

* ``pan``: one face panning across the picture while it zooms in (tracking, mask jitter);
* ``cross``: two faces moving towards each other and crossing, one in front (association);
* ``leave``: one face leaving the picture and coming back (a track ending, a face re-entering);
* ``cut``: two shots with a hard cut between them (scene cuts start new tracks);
* ``turn``: one head turning (a horizontal squeeze as a stand-in for yaw) and tilting (roll);
* ``still``: one face that barely moves (speed and stability figures).

The sound track is a generated tone, so the tests can check it comes out bit-identical.

>>> frames = list(scenario_frames("pan", (160, 120), 5))
>>> len(frames), frames[0].shape
(5, (120, 160, 3))
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator, cast

import cv2
import numpy as np

from lookalike.io.video import VIDEO_FORMATS

SCENARIOS = ("pan", "cross", "leave", "cut", "turn", "still")


def astronaut_portrait() -> np.ndarray:
    """The astronaut's head and shoulders (RGB, 300x240)."""
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[0:300, 110:350])


def _background(size: tuple[int, int], seed: int) -> np.ndarray:
    width, height = size
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), max(width, height) / 40)
    noise = (noise - noise.min()) / max(float(noise.max() - noise.min()), 1e-6)
    ramp = np.linspace(0.3, 0.8, width, dtype=np.float32)[None, :, None]
    tint = rng.uniform(0.4, 1.0, 3).astype(np.float32)
    return np.clip(255 * (0.5 * noise + 0.5 * ramp) * tint, 0, 255).astype(np.uint8)


def _paste(
    canvas: np.ndarray,
    portrait: np.ndarray,
    cx: float,
    cy: float,
    height: float,
    squeeze: float = 1.0,
    roll: float = 0.0,
) -> None:
    """Draw ``portrait`` centred at (cx, cy), ``height`` pixels tall, squeezed horizontally and turned by
    ``roll`` degrees; an elliptic soft edge so it reads as a head, not a pasted rectangle."""
    ph, pw = portrait.shape[:2]
    scale = height / ph
    matrix = cv2.getRotationMatrix2D((pw / 2, ph / 2), roll, 1.0)
    matrix[0, :] *= scale * squeeze
    matrix[1, :] *= scale
    matrix[:, 2] += (cx - pw * scale * squeeze / 2, cy - ph * scale / 2)
    size = canvas.shape[1], canvas.shape[0]
    warped = cv2.warpAffine(portrait, matrix, size, flags=cv2.INTER_LINEAR)
    alpha_src = np.zeros((ph, pw), np.float32)
    cv2.ellipse(alpha_src, ((pw / 2, ph / 2), (pw * 0.98, ph * 1.1), 0.0), 1.0, -1)
    alpha_src = cv2.GaussianBlur(alpha_src, (0, 0), pw / 40)
    alpha = cv2.warpAffine(alpha_src, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    canvas[:] = np.clip(canvas * (1 - alpha) + warped * alpha, 0, 255).astype(np.uint8)


def scenario_frames(
    name: str, size: tuple[int, int] = (320, 240), count: int = 48, portraits: list[np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """The frames (RGB uint8, ``size`` = (width, height)) of one scenario (see the module docstring)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    portraits = portraits or [astronaut_portrait()]
    first, second = portraits[0], portraits[-1]
    width, height = size
    shots = [_background(size, 1), (255 - _background(size, 2)) // 2]  # the second shot darker, other colours
    for i in range(count):
        t = i / max(count - 1, 1)
        canvas = shots[0].copy()
        if name == "pan":
            _paste(canvas, first, width * (0.3 + 0.4 * t), height * 0.5, height * (0.6 + 0.25 * t))
        elif name == "still":
            _paste(canvas, first, width * 0.5 + 2 * np.sin(i / 5), height * 0.5, height * 0.6)
        elif name == "cross":
            _paste(canvas, second, width * (0.8 - 0.6 * t), height * 0.5, height * 0.5)
            _paste(canvas, first, width * (0.2 + 0.6 * t), height * 0.55, height * 0.6)
        elif name == "leave":
            # out to the right over the first 40%, away for 20%, back in over the last 40%
            x = 0.5 + 0.9 * min(t / 0.4, 1.0) if t < 0.6 else 1.4 - 0.9 * min((t - 0.6) / 0.4, 1.0)
            _paste(canvas, first, width * x, height * 0.5, height * 0.6)
        elif name == "cut":
            if t >= 0.5:
                canvas = shots[1].copy()
                _paste(canvas, second, width * 0.6, height * 0.5, height * 0.55)
            else:
                _paste(canvas, first, width * 0.4, height * 0.5, height * 0.6)
        elif name == "turn":
            phase = np.sin(2 * np.pi * t)
            _paste(
                canvas, first, width * 0.5, height * 0.5, height * 0.6, squeeze=1.0 - 0.35 * abs(phase), roll=25 * phase
            )
        yield canvas


def make_clip(
    path: str | Path,
    scenario: str = "pan",
    *,
    size: tuple[int, int] = (320, 240),
    fps: float = 24,
    seconds: float = 2.0,
    audio: bool = True,
    rotation: int = 0,
    portraits: list[np.ndarray] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a scenario as a clip; the container follows ``path``'s suffix (MP4, MOV, MKV, WebM, AVI).

    ``rotation``: stored turned by that many degrees with a display matrix saying so (as phones write),
    so a viewer (and lookalike) sees the scene upright. ``metadata``: container tags to plant (a test
    checks they are stripped). Video is H.264 (VP9 in WebM); audio a 440 Hz tone (AAC; Opus in WebM,
    MP3 in AVI).
    """
    import av

    path = Path(path)
    fmt = VIDEO_FORMATS[path.suffix.lower()]
    rate = Fraction(fps).limit_denominator(1001)
    count = max(1, int(round(seconds * float(rate))))
    container = av.open(str(path), "w", format=fmt)
    for key, value in (metadata or {}).items():
        container.metadata[key] = value
    stored = size if rotation % 180 == 0 else (size[1], size[0])
    video = container.add_stream("libvpx-vp9" if fmt == "webm" else "libx264", rate=rate)
    video.width, video.height = stored
    video.pix_fmt = "yuv420p"
    video.options = {"deadline": "realtime", "cpu-used": "8"} if fmt == "webm" else {"preset": "veryfast"}
    if rotation:
        video.set_display_rotation(rotation)
    sound = None
    if audio:
        codec, rate_hz = {"webm": ("libopus", 48000), "avi": ("libmp3lame", 44100)}.get(fmt, ("aac", 44100))
        sound = cast("av.audio.stream.AudioStream", container.add_stream(codec, rate=rate_hz))
        sound.layout = "mono"
    for frame_rgb in scenario_frames(scenario, size, count, portraits):
        pixels = np.ascontiguousarray(np.rot90(frame_rgb, -(rotation // 90))) if rotation else frame_rgb
        container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
    container.mux(video.encode(None))
    if sound is not None:
        rate_hz = sound.codec_context.sample_rate
        samples = 0.2 * np.sin(2 * np.pi * 440 * np.arange(int(count / float(rate) * rate_hz)) / rate_hz)
        chunk = sound.codec_context.frame_size or 1024
        wanted = sound.codec_context.format.name if sound.codec_context.format is not None else "fltp"
        resampler = None if wanted == "fltp" else av.AudioResampler(format=wanted, layout="mono", rate=rate_hz)
        for start in range(0, len(samples), chunk):
            block = samples[start : start + chunk].astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate_hz, start
            for converted in resampler.resample(frame) if resampler else [frame]:
                container.mux(sound.encode(converted))
        container.mux(sound.encode(None))
    container.close()
    return path
