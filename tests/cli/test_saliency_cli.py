"""`lookalike saliency`."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app
from lookalike.landmarks import SALIENCY_REGIONS

runner = CliRunner()


def test_saliency_json_and_picture(photos, tmp_path):
    picture = tmp_path / "saliency.png"
    result = runner.invoke(app, ["saliency", str(photos / "a.jpg"), "-o", str(picture), "--strength", "0.4", "--json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    (face,) = record["faces"]
    assert face["status"] == "computed" and face["methods"] == {"facenet": "occlusion"}
    assert {r["region"] for r in face["regions"]} == set(SALIENCY_REGIONS)
    assert face["mask"]["strength"] == 0.4 and face["mask"]["regions"]
    shares = {r["region"]: r["share"] for r in face["regions"]}
    assert sum(shares[n] for n in face["mask"]["regions"]) >= 0.4 - 0.01
    with Image.open(picture) as written:
        assert written.format == "PNG" and written.width > 800


def test_saliency_table_for_both_recognizers(photos):
    result = runner.invoke(app, ["saliency", str(photos / "c.jpg"), "--recognizer", "both"])
    assert result.exit_code == 0, result.stderr
    assert "mask at 0.5" in result.stdout and "computed" in result.stdout


def test_saliency_refuses_impossible_choices(photos, tmp_path):
    result = runner.invoke(app, ["saliency", str(photos / "a.jpg"), "--recognizer", "dlib", "--method", "gradient"])
    assert result.exit_code == 2 and "differentiable" in result.stderr
    result = runner.invoke(app, ["saliency", str(photos / "a.jpg"), "-o", str(photos / "a.jpg")])
    assert result.exit_code == 2
    result = runner.invoke(app, ["saliency", str(photos / "a.jpg"), "-o", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "PNG" in result.stderr


def test_saliency_of_a_broken_file_is_one_line(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    result = runner.invoke(app, ["saliency", str(broken)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(broken) in lines[0]


def test_saliency_without_a_face_says_so(tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(blank)
    result = runner.invoke(app, ["saliency", str(blank), "--json", "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["faces"] == [] and "no face found" in result.stderr
    assert (tmp_path / "s.png").is_file()
