"""Reading and writing video clips with PyAV (FFmpeg inside its wheel): frames out, frames back in, and
everything that is not the picture carried over unchanged or dropped on purpose.

* **Sound is copied, not re-encoded**: every audio stream's packets are remuxed into the output as they
  were read (same bytes, same timestamps), so the sound is bit-identical.
* **Timing is kept**: every frame is written with its own presentation timestamp in the input's time base,
  so the frame count, the timestamps and the frame rate (constant or variable) stay those of the input.
* **Rotation is kept** (the display matrix a phone writes); frames are handed out upright, so faces are
  upright for the detector, and stored back turned as they came.
* **Other metadata is dropped**, as for photos: container and stream tags (title, location, creation
  time, device), chapters, subtitle, data and attachment streams. They can describe the people filmed.
* The output is the input's container, with H.264 video (VP8/VP9 in WebM, which cannot hold H.264), and
  is written to a hidden temporary file beside the target, then published without clobbering
  (:func:`lookalike.io.images.publish_file`): never half a clip under a final name.
* A clip that cannot be opened raises :class:`~lookalike.errors.ImageError` with one line; a clip that
  breaks part way is read up to the break and :attr:`VideoReader.truncated` says where and why.

>>> is_video_path(Path("clip.MP4")), is_video_path(Path("photo.jpg"))
(True, False)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from lookalike.errors import ImageError

#: Containers read and written, by suffix, with FFmpeg's muxer name.
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
VIDEO_SUFFIXES = frozenset(VIDEO_FORMATS)

#: x264 settings: "veryfast" encodes 1280x720 in ~15 ms a frame on 2 cores ("medium" ~28 ms); CRF 18 is
#: visually transparent for most footage.
H264_OPTIONS = {"preset": "veryfast", "crf": "18"}
#: libvpx settings for WebM: real-time speed, constant quality.
VPX_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "0"}


def is_video_path(path: Path) -> bool:
    """Whether a file name has one of the supported video suffixes (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is: picture size (as stored), frame rate, frame count if the container says, rotation."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int | None
    rotation: int
    codec: str
    audio_codecs: tuple[str, ...]
    time_base: Fraction

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as a viewer shows it, after the rotation."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


@dataclass
class VideoFrame:
    """One decoded frame: upright RGB pixels and the timestamp it is written back with."""

    index: int
    rgb: np.ndarray
    pts: int | None
    time_base: Fraction | None

    @property
    def seconds(self) -> float | None:
        return None if self.pts is None or self.time_base is None else float(self.pts * self.time_base)


def _av():
    import av

    av.logging.set_level(av.logging.PANIC)  # FFmpeg's own complaints would be lines beside ours
    return av


def _open(path: Path):
    av = _av()
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise ImageError(path, "empty file")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise ImageError(path, f"cannot be decoded as video ({_first_line(exc)})") from None
    if not container.streams.video:
        container.close()
        raise ImageError(path, "has no video stream")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a clip without decoding it; :class:`ImageError` (one line) if it cannot be opened."""
    path = Path(path)
    container = _open(path)
    try:
        return _info(path, container)
    finally:
        container.close()


def _info(path: Path, container) -> VideoInfo:
    stream = container.streams.video[0]
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(30)
    return VideoInfo(
        path=path,
        width=context.width,
        height=context.height,
        fps=Fraction(rate),
        frames=stream.frames or None,
        rotation=_rotation(path),
        codec=context.name,
        audio_codecs=tuple(a.codec_context.name for a in container.streams.audio),
        time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000),
    )


def _rotation(path: Path) -> int:
    """Degrees counter-clockwise a viewer turns the stored pixels (0, 90, 180, 270), from the display
    matrix (FFmpeg attaches it to each decoded frame; read off the first, in a container of its own)."""
    av = _av()
    try:
        with av.open(str(path), "r") as container:
            for frame in container.decode(video=0):
                return _quarter(frame.rotation)
    except Exception:  # noqa: BLE001 - an undecodable start is reported by the reader, not here
        pass
    return 0


def _quarter(degrees) -> int:
    return int(round((degrees or 0) / 90.0)) % 4 * 90


class VideoReader:
    """Decode a clip's frames in order (upright RGB), muxing each audio packet into ``writer`` (if given) as
    it is read, so a whole clip goes through in one pass and the sound is never re-encoded.

    After iterating, :attr:`truncated` is None for a clip read to its end, or says at which frame it broke
    and why; :attr:`frames_read` counts the frames handed out.
    """

    def __init__(self, path: str | Path, writer: "VideoWriter | None" = None) -> None:
        self.path = Path(path)
        self.container = _open(self.path)
        self.info = _info(self.path, self.container)
        self.writer = writer
        self.truncated: str | None = None
        self.frames_read = 0
        self._frame_order_only = _order_only(self.container)
        self._last_time: float | None = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def __iter__(self) -> Iterator[VideoFrame]:
        av = _av()
        video = self.container.streams.video[0]
        audio = list(self.container.streams.audio)
        turns = self.info.rotation // 90
        packets = self.container.demux(video, *audio)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, ValueError) as exc:
                self.truncated = f"broken after frame {self.frames_read} ({_first_line(exc)})"
                break
            if packet.stream.type == "audio":  # (the demuxer ends each stream with an empty packet that flushes)
                if self.writer is not None and packet.dts is not None and packet.size:
                    self.writer.mux_audio(packet)
                continue
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                self.truncated = f"broken after frame {self.frames_read} ({_first_line(exc)})"
                break
            for frame in frames:
                yield self._frame(frame, turns)
        if self.truncated is None and self.info.frames and self.frames_read < self.info.frames:
            self.truncated = f"ends after frame {self.frames_read} of the {self.info.frames} the container lists"
        end = _video_end(video)
        if (
            self.truncated is None
            and end is not None
            and self._last_time is not None
            and self._last_time < end - 2.0 / float(self.info.fps)
        ):
            self.truncated = (
                f"ends after frame {self.frames_read} at {self._last_time:.2f} s of the {end:.2f} s the container lists"
            )

    def _frame(self, frame, turns: int) -> VideoFrame:
        rgb = frame.to_ndarray(format="rgb24")
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, turns))
        index = self.frames_read
        self.frames_read += 1
        if frame.time is not None:
            self._last_time = float(frame.time)
        if self._frame_order_only:  # AVI: a frame's "pts" is its packet's place in decode order
            return VideoFrame(index, rgb, None, None)
        time_base = Fraction(frame.time_base) if frame.time_base is not None else None
        return VideoFrame(index, rgb, frame.pts, time_base)


class VideoWriter:
    """Write frames (upright RGB) and remuxed audio packets into a new clip shaped like ``info``'s.

    Everything goes to a hidden temporary file beside ``target``; :meth:`finish` closes it and returns its
    path for the caller to publish (:func:`lookalike.io.images.publish_file`), :meth:`abort` removes it.
    """

    def __init__(self, info: VideoInfo, target: str | Path, source_container=None) -> None:
        av = _av()
        self.info = info
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.target.name}.lookalike-{os.getpid()}-", suffix=".tmp", dir=self.target.parent
        )
        os.close(fd)
        self.tmp = Path(tmp)
        self.format = VIDEO_FORMATS.get(self.target.suffix.lower(), "mp4")
        try:
            self.container = av.open(str(self.tmp), "w", format=self.format)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.tmp.unlink(missing_ok=True)
            raise ImageError(self.target, f"could not write ({_first_line(exc)})") from None
        self.container.metadata.clear()
        self._turns = info.rotation // 90
        self._video = self._add_video(info)
        self._audio: dict[int, object] = {}
        if source_container is not None:
            for stream in source_container.streams.audio:
                out = self.container.add_stream_from_template(stream)
                out.metadata.clear()
                out.time_base = stream.time_base
                self._audio[stream.index] = out
        self._last_pts: int | None = None
        self.frames_written = 0

    def _add_video(self, info: VideoInfo):
        if self.format == "webm":
            codec, options = ("libvpx" if info.codec == "vp8" else "libvpx-vp9"), dict(VPX_OPTIONS)
        else:
            codec, options = "libx264", dict(H264_OPTIONS)
            if self.format == "avi":  # AVI stores no presentation times: frames must come in display order
                options["bf"] = "0"
        stream = self.container.add_stream(codec, rate=_rate(info.fps))
        stream.width, stream.height = info.width, info.height
        even = info.width % 2 == 0 and info.height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 needs even sides
        stream.options = options
        stream.codec_context.time_base = info.time_base
        stream.time_base = info.time_base
        stream.metadata.clear()
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def write(self, rgb: np.ndarray, pts: int | None, time_base: Fraction | None) -> None:
        """One frame (upright RGB, the input's size) at the input frame's timestamp."""
        av = _av()
        stored = np.ascontiguousarray(np.rot90(rgb, -self._turns)) if self._turns else rgb
        frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
        if pts is None or time_base is None:  # no timestamp in the input: the frame's place at the frame rate
            pts, time_base = round(self.frames_written / self.info.fps / self.info.time_base), self.info.time_base
        elif Fraction(time_base) != self.info.time_base:
            pts = round(pts * Fraction(time_base) / self.info.time_base)
        if self._last_pts is not None and pts <= self._last_pts:  # an encoder refuses repeated timestamps
            pts = self._last_pts + 1
        frame.pts, frame.time_base = pts, self.info.time_base
        self._last_pts = pts
        self._mux(self._video.encode(frame))
        self.frames_written += 1

    def mux_audio(self, packet) -> None:
        """A packet read from the source's audio stream, written unchanged."""
        out = self._audio.get(packet.stream.index)
        if out is None:
            return
        packet.stream = out
        self._mux([packet])

    def _mux(self, packets) -> None:
        av = _av()
        try:
            self.container.mux(packets)
        except (av.FFmpegError, ValueError) as exc:
            raise ImageError(self.target, f"could not write video ({_first_line(exc)})") from None

    def finish(self) -> Path:
        """Flush the encoder and close the file; the finished temporary's path."""
        av = _av()
        try:
            self._mux(self._video.encode(None))
            self.container.close()
        except (av.FFmpegError, ValueError) as exc:
            self.abort()
            raise ImageError(self.target, f"could not write video ({_first_line(exc)})") from None
        return self.tmp

    def abort(self) -> None:
        """Close and remove the temporary (nothing of it is ever published)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is removed whatever state the muxer is in
            pass
        self.tmp.unlink(missing_ok=True)


def _video_end(stream) -> float | None:
    """Where the container says the video stream ends (seconds), if it says: the stream duration, or the
    DURATION tag Matroska and WebM writers leave."""
    if stream.duration and stream.time_base:
        return float((stream.start_time or 0) * stream.time_base + stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    return None


def _order_only(container) -> bool:
    """AVI keeps no presentation times, only the frames' order at a constant rate (with B-frames the
    decoder hands out decode-order stamps): its frames are timed by their place."""
    return "avi" in container.format.name.split(",")


def _rate(fps: Fraction) -> Fraction:
    return fps if 0 < fps < 1000 else Fraction(30)


@dataclass
class ClipTiming:
    """Frame timestamps (seconds) and audio packet digests of a clip: what the tests and the benchmark
    compare between an input and its output."""

    frames: list[float] = field(default_factory=list)
    audio: list[tuple[int, int, str]] = field(default_factory=list)  # (stream, pts, sha256 of the bytes)


def clip_timing(path: str | Path) -> ClipTiming:
    """Every frame's presentation time and every audio packet's timestamp and SHA-256, in stream order.

    AVI has no presentation times: its frames' times are their places at the frame rate, from 0."""
    import hashlib

    container = _open(Path(path))
    timing = ClipTiming()
    try:
        audio_index = {s.index: i for i, s in enumerate(container.streams.audio)}
        for packet in container.demux(container.streams.video[0], *container.streams.audio):
            if packet.stream.type == "audio":
                if packet.size:
                    timing.audio.append(
                        (
                            audio_index[packet.stream.index],
                            int(packet.pts if packet.pts is not None else -1),
                            hashlib.sha256(bytes(packet)).hexdigest(),
                        )
                    )
                continue
            for frame in packet.decode():
                timing.frames.append(round(float(frame.time), 6))
        if _order_only(container) and timing.frames:  # frame k at k / rate, from the first
            timing.frames = [round(t - min(timing.frames), 6) for t in sorted(timing.frames)]
    finally:
        container.close()
    timing.audio.sort()
    return timing


def _first_line(exc: BaseException) -> str:
    """FFmpeg's reason in a few words (its errors repeat the path and an errno otherwise)."""
    reason = getattr(exc, "strerror", None)
    if reason:
        text = str(exc)
        detail = text.split("last error log:", 1)[1].split("]", 1)[-1].strip() if "last error log:" in text else ""
        if "moov atom not found" in detail:
            detail += ": the index an MP4/MOV keeps at its end is missing (a truncated or unfinished recording)"
        return f"{reason}; {detail}" if detail else str(reason)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
