"""Clips in, clips out: frames, timestamps, rotation and sound kept, tags dropped, bad files one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import ImageError
from lookalike.io.clips import make_clip, scenario_frames
from lookalike.io.video import VideoReader, VideoWriter, clip_timing, is_video_path, probe_video

CONTAINERS = [
    (".mp4", 24, 0),
    (".mov", 30, 90),
    (".mkv", 25, 0),
    (".webm", 30, 0),
    (".avi", 15, 0),
    (".mp4", 29.97, 270),
]


def _copy(source: Path, target: Path, change=None) -> None:
    """Decode and re-encode ``source`` the way the pipeline does (optionally changing the pixels)."""
    with VideoReader(source) as reader:
        writer = VideoWriter(reader.info, target, reader.container)
        reader.writer = writer
        for frame in reader:
            writer.write(change(frame.rgb) if change else frame.rgb, frame.pts, frame.time_base)
        writer.finish().rename(target)


@pytest.mark.parametrize("suffix,fps,rotation", CONTAINERS)
def test_frames_timestamps_rotation_and_sound_are_kept_and_tags_dropped(tmp_path, suffix, fps, rotation):
    import av

    source = make_clip(
        tmp_path / f"in{suffix}",
        "pan",
        fps=fps,
        seconds=1.0,
        rotation=rotation,
        metadata={"title": "secret-title", "comment": "secret-place"},
    )
    target = tmp_path / f"out{suffix}"
    _copy(source, target, change=lambda rgb: 255 - rgb)
    before, after = clip_timing(source), clip_timing(target)
    assert len(after.frames) == len(before.frames) > 0
    assert after.frames == before.frames
    assert after.audio and after.audio == before.audio  # every packet's bytes and timestamp
    info = probe_video(target)
    assert info.rotation == rotation and info.fps == probe_video(source).fps
    with av.open(str(target)) as container:
        tags = " ".join(f"{k}={v}" for k, v in container.metadata.items())
        tags += " ".join(f"{k}={v}" for s in container.streams for k, v in s.metadata.items())
    assert "secret" not in tags


def test_rotated_clips_are_read_upright_and_written_back_turned(tmp_path):
    upright = next(iter(scenario_frames("pan", (320, 240), 1)))
    source = make_clip(tmp_path / "phone.mp4", "pan", seconds=0.5, rotation=90, audio=False)
    info = probe_video(source)
    assert (info.width, info.height) == (240, 320) and info.upright_size == (320, 240)
    with VideoReader(source) as reader:
        first = next(iter(reader)).rgb
    assert first.shape == upright.shape
    assert np.abs(first.astype(int) - upright).mean() < 6  # the same picture, up to compression
    turned = np.rot90(upright, 1)
    assert np.abs(first.astype(int)[:240, :240] - turned[:240, :240]).mean() > 20  # and not the stored one


def test_bad_clips_get_one_line_naming_the_file(tmp_path):
    good = make_clip(tmp_path / "good.mp4", "pan", seconds=1.0)
    cases = {
        "empty.mp4": b"",
        "garbage.mov": b"not a video at all" * 50,
        "cut.mp4": good.read_bytes()[: len(good.read_bytes()) // 2],
    }
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(ImageError) as caught:
            probe_video(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(str(tmp_path / name)) and "\n" not in message
    with pytest.raises(ImageError, match="no such file"):
        probe_video(tmp_path / "missing.mkv")


def test_a_clip_that_breaks_part_way_is_read_up_to_the_break(tmp_path):
    whole = make_clip(tmp_path / "whole.mkv", "pan", seconds=1.5, fps=24)
    total = len(clip_timing(whole).frames)
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 2 // 3])
    with VideoReader(broken) as reader:
        frames = sum(1 for _ in reader)
        assert 0 < frames < total
        assert reader.truncated and "ends after frame" in reader.truncated


def test_video_suffixes():
    assert all(is_video_path(Path(f"a{s}")) for s in (".mp4", ".MOV", ".mkv", ".webm", ".avi"))
    assert not is_video_path(Path("a.jpg")) and not is_video_path(Path("a.gif"))
