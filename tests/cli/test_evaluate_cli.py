"""`lookalike benchmark` and `lookalike evaluate`: reports written, bad input reported, usage errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli import app

runner = CliRunner()


def test_benchmark_writes_the_report(photos, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "benchmark",
            "--images",
            str(photos),
            "--methods",
            "solid,blur",
            "--levels",
            "blur=0.05",
            "--limit",
            "2",
            "-o",
            str(out),
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.html", "tradeoff.png", "distances.png"}
    report = json.loads((out / "report.json").read_text())
    assert [v["label"] for v in report["variants"]] == ["solid", "blur 0.05"]
    assert report["files"]["total"] == 2  # --limit
    assert "solid" in result.stdout and "blur 0.05" in result.stdout  # the summary table
    assert "at least 200 originals" in result.stderr


def test_evaluate_reports_a_missing_file_and_exits_1(photos, tmp_path, astronaut):
    anonymized = tmp_path / "anon"
    anonymized.mkdir()
    Image.fromarray(np.zeros_like(astronaut)).save(anonymized / "a.jpg")
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--original",
            str(photos),
            "--anonymized",
            str(anonymized),
            "-o",
            str(out),
            "--recognizers",
            "dlib",
            "--jobs",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 1
    assert "b.png" in result.stderr and "c.jpg" in result.stderr and "no anonymized file" in result.stderr
    report = json.loads(result.stdout)  # stdout is only the JSON
    assert report["variants"][0]["faces"] == 3
    assert list(report["recognizers"]) == ["dlib"]
    assert (out / "report.html").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--methods", "blur,sharpen"], "unknown method 'sharpen'"),
        (["--levels", "blur"], "expected METHOD=L1,L2"),
        (["--methods", "blur", "--levels", "pixelate=8"], "'pixelate' is not among --methods"),
        (["--levels", "blur=-1"], "level '-1' is not a valid blur_sigma"),
        (["--levels", "blur=0.1,0.1"], "listed twice"),
        (["--methods", "solid", "--levels", "solid=3"], "has no levels"),
        (["--recognizers", "arcface"], "--recognizers"),
        (["--limit", "0"], "--limit"),
        (["--methods", "lookalike", "--steer", "arcface"], "--steer: steer: expected all, both, or recognizer names"),
        (["--methods", "lookalike", "--steer", ","], "--steer: expected distinct steering sets"),
        (["--methods", "lookalike", "--steer", "both,facenet+dlib"], "--steer: expected distinct steering sets"),
        (["--methods", "lookalike", "--levels", "lookalike=extreme"], "level 'extreme' is not a valid privacy"),
    ],
)
def test_benchmark_usage_errors(photos, tmp_path, arguments, message):
    result = runner.invoke(app, ["benchmark", "--images", str(photos), "-o", str(tmp_path / "r"), *arguments])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_evaluate_names_a_missing_folder(tmp_path, photos):
    result = runner.invoke(
        app, ["evaluate", "--original", str(photos), "--anonymized", str(tmp_path / "nope"), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert "nope: not a folder" in result.stderr


def test_the_report_folder_may_not_be_an_input(photos, tmp_path):
    result = runner.invoke(app, ["benchmark", "--images", str(photos), "-o", str(photos)])
    assert result.exit_code == 2 and "is an input folder" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["benchmark", "--images", str(photos), "-o", str(blocker / "report")])
    assert result.exit_code == 2 and "cannot create the report folder" in result.stderr


def test_evaluate_steered_by(photos, tmp_path):
    result = runner.invoke(
        app, ["evaluate", "--original", str(photos), "--anonymized", str(photos), "--steered-by", "arcface"]
    )
    assert result.exit_code == 2 and "--steered-by" in result.stderr


def test_benchmark_steer_makes_one_row_per_steering_choice():
    from lookalike.cli.evaluate import _variants
    from lookalike.identity import available_recognizers

    variants = _variants("blur,lookalike", ["lookalike=medium"], "all,dlib")
    assert [v.label for v in variants] == [
        "blur 0.025",
        "blur 0.05",
        "blur 0.1",
        "blur 0.15",
        "lookalike medium",
        "lookalike medium (steer dlib)",
    ]
    assert [v.steered_by for v in variants[4:]] == [available_recognizers(), ("dlib",)]
