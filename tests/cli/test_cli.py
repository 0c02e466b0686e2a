from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app

runner = CliRunner()


@pytest.fixture()
def photo_tree(tmp_path, astronaut) -> Path:
    """photos/a.jpg (a face, with GPS EXIF), photos/sub/b.png (a face), photos/sub/empty.png (no face),
    photos/broken.jpg (corrupt), photos/notes.txt (not an image)."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}
    Image.fromarray(astronaut).save(root / "a.jpg", exif=exif.tobytes())
    Image.fromarray(astronaut[:, ::-1]).save(root / "sub" / "b.png")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(root / "sub" / "empty.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("hello")
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_anonymize_folder_keeps_layout_reports_and_never_touches_inputs(photo_tree, tmp_path):
    before = _snapshot(photo_tree)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["anonymize", str(photo_tree), "-o", str(out), "--json", "--report", str(tmp_path / "report.json")]
    )
    assert result.exit_code == 1  # broken.jpg failed, the rest went on
    report = json.loads(result.stdout)
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert report["summary"] == {
        "files": 4,
        "faces_found": 2,
        "files_written": 3,
        "files_failed": 1,
        "files_without_faces": 1,
        "skipped_non_images": 1,
        "skipped_as_done": 0,
        "files_planned": 4,
        "interrupted": False,
    }
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a.jpg",
        "lookalike-manifest.jsonl",
        "sub/b.png",
        "sub/empty.png",
    ]
    failure = next(f for f in report["files"] if f["status"] == "failed")
    assert failure["error"].startswith(str(photo_tree / "broken.jpg")) and "\n" not in failure["error"]
    assert "broken.jpg" in result.stderr
    assert _snapshot(photo_tree) == before
    assert len(Image.open(out / "a.jpg").getexif()) == 0  # GPS stripped
    assert not list(out.rglob(".*.tmp"))


def test_anonymize_options_and_keep_metadata(photo_tree, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "anonymize",
            str(photo_tree / "a.jpg"),
            "-o",
            str(out),
            "--method",
            "pixelate",
            "--mask-scale",
            "1.5",
            "--threshold",
            "0.4",
            "--keep-metadata",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    face = json.loads(result.stdout)["files"][0]["faces"][0]
    assert face["method"] == "pixelate"
    assert 0x8825 in Image.open(out / "a.jpg").getexif()


def test_output_inside_the_input_folder_is_not_reprocessed_and_not_overwritten(photo_tree):
    out = photo_tree / "sub" / "anon"
    first = runner.invoke(app, ["anonymize", str(photo_tree / "sub"), "-o", str(out), "--json"])
    assert first.exit_code == 0 and json.loads(first.stdout)["summary"]["files"] == 2
    written = (out / "b.png").read_bytes()
    again = runner.invoke(app, ["anonymize", str(photo_tree / "sub"), "-o", str(out), "--json"])
    assert again.exit_code == 1 and "output already exists (use --overwrite" in again.stderr
    assert json.loads(again.stdout)["summary"]["files"] == 2  # the outputs were not picked up as inputs
    assert (out / "b.png").read_bytes() == written
    forced = runner.invoke(app, ["anonymize", str(photo_tree / "sub"), "-o", str(out), "--overwrite"])
    assert forced.exit_code == 0


def test_input_folder_inside_the_output_folder_keeps_other_originals(photo_tree):
    original = (photo_tree / "a.jpg").read_bytes()
    (photo_tree / "sub" / "a.jpg").write_bytes(original)  # would land on photos/a.jpg
    result = runner.invoke(app, ["anonymize", str(photo_tree / "sub"), "-o", str(photo_tree)])
    assert result.exit_code == 1
    assert f"{photo_tree / 'a.jpg'}: output already exists" in result.stderr
    assert (photo_tree / "a.jpg").read_bytes() == original


def test_odd_files_fail_alone_with_one_line(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "ok.png")
    frames = [Image.fromarray(astronaut), Image.fromarray(astronaut[::-1].copy())]
    frames[0].save(folder / "pages.tif", save_all=True, append_images=frames[1:])
    Image.fromarray(astronaut).save(folder / "[draft].png")
    (folder / ".hidden.jpg").write_bytes(b"x")
    result = runner.invoke(app, ["anonymize", str(folder), "-o", str(tmp_path / "out"), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["summary"]["files_failed"] == 1 and report["summary"]["files_written"] == 2
    assert "pages.tif: has 2 frames or pages" in result.stderr
    assert str(folder / ".hidden.jpg") in report["skipped_non_images"]


def test_output_folder_equal_to_an_input_is_refused(photo_tree):
    before = _snapshot(photo_tree / "sub")
    result = runner.invoke(app, ["anonymize", str(photo_tree / "sub"), "-o", str(photo_tree / "sub")])
    assert result.exit_code == 2 and "the output folder is an input folder" in result.stderr
    single = runner.invoke(app, ["anonymize", str(photo_tree / "sub" / "b.png"), "-o", str(photo_tree / "sub")])
    assert single.exit_code == 1 and "refusing to write over an input" in single.stderr
    assert _snapshot(photo_tree / "sub") == before


def test_bad_usage_exits_2(photo_tree, tmp_path):
    assert runner.invoke(app, ["anonymize", str(photo_tree), "-o", str(tmp_path), "--method", "swirl"]).exit_code == 2
    result = runner.invoke(app, ["anonymize", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "no such file" in result.stderr


def test_detect_json_and_drawing(photo_tree, tmp_path):
    drawn = tmp_path / "drawn"
    result = runner.invoke(
        app,
        ["detect", str(photo_tree / "a.jpg"), str(photo_tree / "sub" / "empty.png"), "--json", "--draw", str(drawn)],
    )
    assert result.exit_code == 0, result.stderr
    entries = json.loads(result.stdout)
    face = entries[0]["faces"][0]
    assert len(face["landmarks"]) == 478 and len(face["keypoints"]) == 5 and face["pose"] is not None
    assert entries[1]["faces"] == []
    assert (drawn / "a.jpg").is_file()


def test_embed_reports_each_recognizer_with_its_verdict(photo_tree):
    result = runner.invoke(app, ["embed", str(photo_tree / "a.jpg"), str(photo_tree / "sub" / "b.png"), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {r["recognizer"]: r for r in json.loads(result.stdout)["recognizers"]}
    assert set(rows) == {"dlib", "facenet", "mobileface"}  # default: every registered recognizer
    assert all(
        r["same"] and r["distance"] < r["threshold"] for r in rows.values()
    )  # a mirrored photo is the same person
    no_face = runner.invoke(app, ["embed", str(photo_tree / "a.jpg"), str(photo_tree / "sub" / "empty.png")])
    assert no_face.exit_code == 1 and "empty.png: no face found" in no_face.stderr


def test_anonymize_with_lookalike_reports_each_face(photos, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "anonymize",
            str(photos / "a.jpg"),
            "-o",
            str(out),
            "--method",
            "lookalike",
            "--privacy",
            "low",
            "--seed",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    face = json.loads(result.stdout)["files"][0]["faces"][0]
    assert face["method"] == "lookalike"
    details = face["lookalike"]
    assert details["privacy"] == "low" and details["reached"] is True
    assert {"donor", "regions", "morph", "recognizers", "perceptual_similarity", "fallback", "seconds"} <= set(details)
    assert (out / "a.jpg").is_file()


def test_the_summary_counts_faces_that_fell_back(photos, tmp_path):
    result = runner.invoke(
        app,
        [
            "anonymize",
            str(photos / "a.jpg"),
            "-o",
            str(tmp_path / "out"),
            "--method",
            "lookalike",
            "--privacy",
            "low",
            "--target-distance",
            "3",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "fell back to a stronger method: 1" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--privacy", "extreme"], "privacy"),
        (["--steer", "arcface"], "steer"),
        (["--bank", "missing.npz"], "--bank missing.npz: no such file"),
    ],
)
def test_anonymize_lookalike_bad_options_are_one_line_usage_errors(photos, tmp_path, args, message):
    result = runner.invoke(
        app, ["anonymize", str(photos / "a.jpg"), "-o", str(tmp_path / "out"), "--method", "lookalike", *args]
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_anonymize_lookalike_unreadable_bank(photos, tmp_path):
    bad = tmp_path / "bank.npz"
    bad.write_bytes(b"not a bank")
    result = runner.invoke(
        app,
        ["anonymize", str(photos / "a.jpg"), "-o", str(tmp_path / "out"), "--method", "lookalike", "--bank", str(bad)],
    )
    assert result.exit_code == 2
    assert f"--bank {bad}: cannot be read" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_python_dash_m_runs_the_same_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "lookalike", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "anonymize" in done.stdout
