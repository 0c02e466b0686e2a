"""``lookalike anonymize`` on folders mixing photos and clips."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app
from lookalike.io.clips import make_clip
from lookalike.io.video import clip_timing, probe_video

runner = CliRunner()


def test_a_folder_of_photos_and_clips_with_broken_ones(tmp_path, astronaut):
    root = tmp_path / "footage"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(root / "photo.jpg")
    make_clip(root / "street.mp4", "pan", seconds=1.0, fps=25, metadata={"title": "secret"})
    make_clip(root / "sub" / "phone.mov", "still", seconds=0.7, fps=30, rotation=90)
    whole = make_clip(tmp_path / "whole.mkv", "still", seconds=1.5, fps=24)
    (root / "sub" / "cut-short.mkv").write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 2 // 3])
    (root / "broken.webm").write_bytes(b"\x1a\x45\xdf\xa3 this is no clip" * 20)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = tmp_path / "out"

    result = runner.invoke(app, ["anonymize", str(root), "-o", str(out), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    by_name = {Path(f["source"]).name: f for f in report["files"]}
    assert by_name["broken.webm"]["status"] == "failed"
    assert by_name["broken.webm"]["error"].startswith(str(root / "broken.webm") + ": cannot be decoded as video")
    assert by_name["photo.jpg"]["status"] == "anonymized"
    for name in ("street.mp4", "phone.mov"):
        entry = by_name[name]
        assert entry["status"] == "anonymized" and entry["faces"] and entry["video"]["truncated"] is None
        source, written = Path(entry["source"]), Path(entry["output"])
        a, b = clip_timing(source), clip_timing(written)
        assert a.frames == b.frames and a.audio == b.audio and a.audio
        assert probe_video(written).rotation == probe_video(source).rotation
    short = by_name["cut-short.mkv"]
    assert short["status"] == "anonymized" and short["video"]["truncated"]
    assert "truncated clip" in short["warning"]
    assert Path(short["output"]).is_file()
    assert not (out / "broken.webm").exists()
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # inputs untouched
    assert not list(out.rglob(".*.tmp"))
    lines = [line for line in result.stderr.splitlines() if "broken.webm" in line]
    assert len(lines) == 1

    again = runner.invoke(app, ["anonymize", str(root), "-o", str(out), "--resume"])
    assert again.exit_code == 1  # the broken clip is tried again and still fails
    assert "skipped as done: 4" in again.stderr
