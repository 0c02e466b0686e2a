"""What a hostile user found in ``lookalike anonymize`` and ``detect`` (issue 19), and resuming a folder.
Each test failed on the code before it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app
from lookalike.pipeline import batch

runner = CliRunner()


@pytest.fixture()
def folder(tmp_path, astronaut) -> Path:
    """Three small photos: two with a face, one without."""
    root = tmp_path / "photos"
    root.mkdir()
    face = np.ascontiguousarray(astronaut[0:240, 120:360])
    Image.fromarray(face).save(root / "a.jpg", quality=90)
    Image.fromarray(face[:, ::-1]).save(root / "b.png")
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(root / "c.png")
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FAST = ["--rotations", "off"]


# --- 1. --report obeys the rules of the outputs -------------------------------------------------------


def test_report_never_overwrites_an_input(folder, tmp_path):
    before = _hashes(folder)
    result = runner.invoke(
        app, ["anonymize", str(folder), "-o", str(tmp_path / "out"), *FAST, "--report", str(folder / "a.jpg")]
    )
    assert result.exit_code == 2 and "refusing to write over an input" in result.stderr
    result = runner.invoke(
        app,
        [
            "anonymize",
            str(folder),
            "-o",
            str(tmp_path / "out"),
            *FAST,
            "--overwrite",
            "--report",
            str(folder / "a.jpg"),
        ],
    )
    assert result.exit_code == 2 and "refusing to write over an input" in result.stderr
    assert _hashes(folder) == before and not (tmp_path / "out").exists()  # refused before any work


def test_report_never_replaces_an_existing_file_without_overwrite(folder, tmp_path):
    report = tmp_path / "report.json"
    report.write_text("precious")
    result = runner.invoke(
        app, ["anonymize", str(folder / "c.png"), "-o", str(tmp_path / "out"), *FAST, "--report", str(report)]
    )
    assert result.exit_code == 2 and f"{report}: output already exists" in result.stderr
    assert report.read_text() == "precious"
    result = runner.invoke(
        app,
        [
            "anonymize",
            str(folder / "c.png"),
            "-o",
            str(tmp_path / "out"),
            *FAST,
            "--report",
            str(report),
            "--overwrite",
        ],
    )
    assert result.exit_code == 0 and json.loads(report.read_text())["summary"]["files"] == 1


def test_report_that_appears_during_the_run_is_not_replaced(folder, tmp_path, monkeypatch):
    report = tmp_path / "report.json"
    original = batch._process_one

    def process_while_someone_writes_the_report(*args, **kwargs):
        result = original(*args, **kwargs)
        report.write_text("someone else's")
        return result

    monkeypatch.setattr(batch, "_process_one", process_while_someone_writes_the_report)
    result = runner.invoke(
        app, ["anonymize", str(folder / "c.png"), "-o", str(tmp_path / "out"), *FAST, "--report", str(report)]
    )
    assert result.exit_code == 1 and f"{report}: output already exists" in result.stderr
    assert report.read_text() == "someone else's"


# --- 2. a symlink loop among the inputs is one line ----------------------------------------------------


@pytest.mark.parametrize("command", ["anonymize", "detect"])
def test_a_symlink_loop_is_one_line_and_the_rest_is_done(folder, tmp_path, command):
    os.symlink("loop.jpg", folder / "loop.jpg")
    args = [command, str(folder), *FAST, "--json"]
    if command == "anonymize":
        args += ["-o", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"{folder / 'loop.jpg'}: symbolic link loop" in result.stderr and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    if command == "anonymize":
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.png", "c.png", batch.MANIFEST_NAME]


# --- 3. two runs into one folder never replace each other's files -------------------------------------


def test_an_output_that_appears_meanwhile_is_reported_not_replaced(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    encode = batch.encode_image

    def encode_while_another_run_publishes(image, pixels, path, **kwargs):
        payload = encode(image, pixels, path, **kwargs)
        if Path(path).name == "b.png":
            Path(path).write_bytes(b"the other run's picture")
        return payload

    monkeypatch.setattr(batch, "encode_image", encode_while_another_run_publishes)
    result = runner.invoke(app, ["anonymize", str(folder), "-o", str(out), *FAST, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    loser = next(f for f in report["files"] if f["source"].endswith("b.png"))
    assert loser["status"] == "failed" and loser["output"] is None and "output already exists" in loser["error"]
    assert report["summary"]["files_written"] == 2
    assert (out / "b.png").read_bytes() == b"the other run's picture"


# --- 6. the lower ones ---------------------------------------------------------------------------------


def test_an_output_path_that_is_a_file_is_refused_before_any_work(folder, tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.write_text("a file")
    monkeypatch.setattr(batch, "load_image", lambda *a, **k: pytest.fail("an image was read"))
    result = runner.invoke(app, ["anonymize", str(folder), "-o", str(target)])
    assert result.exit_code == 2 and f"{target}: the output path exists and is not a folder" in result.stderr
    assert target.read_text() == "a file"


def test_ctrl_c_prints_the_summary_and_writes_the_report(folder, tmp_path, monkeypatch):
    original = batch.anonymize
    calls = []

    def interrupted_on_the_second_file(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, "anonymize", interrupted_on_the_second_file)
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["anonymize", str(folder), "-o", str(tmp_path / "out"), *FAST, "--report", str(report)])
    assert result.exit_code == 130
    assert "interrupted after 1 of 3 files" in result.stderr and "faces found: 1" in result.stderr
    written = json.loads(report.read_text())
    assert written["summary"]["interrupted"] is True and [f["status"] for f in written["files"]] == ["anonymized"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", batch.MANIFEST_NAME]


def test_a_later_run_removes_stale_temporaries(folder, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".a.jpg.lookalike-{dead.stdout.strip()}-k1ll3d.tmp"
    stale.write_bytes(b"half a picture")
    result = runner.invoke(app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST])
    assert result.exit_code == 0 and not stale.exists()


# --- resume --------------------------------------------------------------------------------------------


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / batch.MANIFEST_NAME).read_text().splitlines()]


def _manifest_records(out: Path) -> list[dict]:
    """The lines that parse (a killed run may leave half a line)."""
    records = []
    for line in (out / batch.MANIFEST_NAME).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return records


def test_the_manifest_records_each_file_as_it_finishes(folder, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["anonymize", str(folder), "-o", str(out), *FAST]).exit_code == 0
    final = [r for r in _manifest(out) if r["status"] != "writing"]
    assert [Path(r["input"]).name for r in final] == ["a.jpg", "b.png", "c.png"]
    for record in final:
        source = Path(record["input"])
        assert record["input_size"] == source.stat().st_size
        assert record["input_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert record["output_sha256"] == hashlib.sha256(Path(record["output"]).read_bytes()).hexdigest()
        assert record["settings"]["method"] == "blur" and record["settings"]["rotations"] == "off"
        assert record["seconds"] >= 0
    assert [r["status"] for r in final] == ["anonymized", "anonymized", "no_face"]


def test_resume_skips_what_is_done_and_does_the_rest(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert (
        runner.invoke(app, ["anonymize", str(folder / "a.jpg"), str(folder / "b.png"), "-o", str(out), *FAST]).exit_code
        == 0
    )
    done = _hashes(out)
    # a run killed after publishing c.png but before recording it as finished: only its "writing" line
    assert runner.invoke(app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST]).exit_code == 0
    lines = (out / batch.MANIFEST_NAME).read_text().splitlines()
    (out / batch.MANIFEST_NAME).write_text("\n".join(lines[:-1]) + '\n{"input": "half a li')
    decoded = []
    original = batch.load_image
    monkeypatch.setattr(batch, "load_image", lambda path, **k: decoded.append(Path(path).name) or original(path, **k))
    (folder / "d.png").write_bytes((folder / "c.png").read_bytes())
    monkeypatch.chdir(tmp_path)  # the output folder named another way than before
    result = runner.invoke(app, ["anonymize", str(folder), "-o", "out", *FAST, "--resume", "--json"])
    assert result.exit_code == 0, result.stderr
    assert decoded == ["d.png"]  # the done files were not decoded again
    summary = json.loads(result.stdout)["summary"]
    assert summary["skipped_as_done"] == 3 and summary["files_written"] == 1
    assert "skipped as done: 3" in result.stderr
    assert {k: v for k, v in _hashes(out).items() if k in done and k != batch.MANIFEST_NAME} == {
        k: v for k, v in done.items() if k != batch.MANIFEST_NAME
    }
    assert _manifest_records(out)[-1]["input"].endswith("d.png")  # recorded after the half line, not in it


def test_resume_redoes_a_file_whose_input_changed(folder, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST]).exit_code == 0
    Image.fromarray(np.full((48, 64, 3), 30, np.uint8)).save(folder / "c.png")
    again = runner.invoke(app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST, "--resume"])
    assert again.exit_code == 1 and "output already exists" in again.stderr  # it is redone, not skipped
    forced = runner.invoke(app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST, "--resume", "--overwrite"])
    assert forced.exit_code == 0
    assert np.asarray(Image.open(out / "c.png"))[0, 0, 0] == 30


def test_a_rerun_with_other_settings_is_refused_unless_overwrite(folder, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST]).exit_code == 0
    before = _hashes(out)
    other = runner.invoke(
        app, ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST, "--resume", "--method", "pixelate"]
    )
    assert other.exit_code == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "with other settings (method 'blur' -> 'pixelate')" in other.stderr
    assert _hashes(out) == before
    forced = runner.invoke(
        app,
        ["anonymize", str(folder / "c.png"), "-o", str(out), *FAST, "--resume", "--method", "pixelate", "--overwrite"],
    )
    assert forced.exit_code == 0 and _manifest(out)[-1]["settings"]["method"] == "pixelate"
