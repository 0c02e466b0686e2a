"""`lookalike similarity` and `lookalike perception train | eval`."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app

runner = CliRunner()


def test_similarity_of_two_photos(photos):
    result = runner.invoke(
        app, ["similarity", str(photos / "a.jpg"), str(photos / "b.png"), str(photos / "c.jpg"), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    pairs = json.loads(result.stdout)["pairs"]
    assert len(pairs) == 3
    for pair in pairs:
        assert 0.0 <= pair["perceptual_similarity"] <= 1.0
        assert pair["dlib"]["same"] is True  # all three are the astronaut


def test_similarity_names_an_image_without_a_face(photos, tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(blank)
    result = runner.invoke(app, ["similarity", str(photos / "a.jpg"), str(blank)])
    assert result.exit_code == 1
    assert f"{blank}: no face found" in result.stderr


def test_perception_train_and_eval_report_skipped_triplets(photos, tmp_path):
    judgments = tmp_path / "t.csv"
    judgments.write_text("anchor,positive,negative\na.jpg,b.png,c.jpg\nb.png,a.jpg,c.jpg\na.jpg,b.png,gone.jpg\nx\n")
    model = tmp_path / "m.npz"
    result = runner.invoke(
        app,
        [
            "perception",
            "train",
            "--triplets",
            str(judgments),
            "--images",
            str(photos),
            "-o",
            str(model),
            "--epochs",
            "2",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "triplets used: 2" in result.stderr
        and "image missing: 1" in result.stderr
        and "malformed row: 1" in result.stderr
    )
    result = runner.invoke(
        app,
        [
            "perception",
            "eval",
            "--triplets",
            str(judgments),
            "--images",
            str(photos),
            "--model",
            str(model),
            "--json",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["agreement"]) == {"learned", "dlib", "facenet", "geometry"}
    assert report["triplets"]["skipped"] == {"malformed row": 1, "image missing": 1}


def test_perception_usage_errors(photos, tmp_path):
    result = runner.invoke(
        app, ["perception", "eval", "--triplets", str(tmp_path / "none.csv"), "--images", str(photos)]
    )
    assert result.exit_code == 2 and "none.csv: no such file" in result.stderr
    judgments = tmp_path / "t.csv"
    judgments.write_text("anchor,positive,negative\n")
    result = runner.invoke(
        app, ["perception", "eval", "--triplets", str(judgments), "--images", str(photos), "--faces", "9-1"]
    )
    assert result.exit_code == 2 and "--faces" in result.stderr
