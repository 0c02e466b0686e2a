"""Whole evaluations on small folders composed from the astronaut: counting rules, bad input, workers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lookalike.evaluation import EvaluationConfig, evaluate_folders, run_benchmark
from lookalike.evaluation import variant as variant_of
from lookalike.evaluation import variants as variants_of
from lookalike.pipeline import anonymize
from lookalike.pipeline.methods import MethodSpec


def _save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture(scope="module")
def originals(tmp_path_factory, astronaut) -> Path:
    folder = tmp_path_factory.mktemp("originals")
    _save(folder / "a.jpg", astronaut)
    _save(folder / "b.png", astronaut[:, ::-1].copy())
    canvas = np.full((700, 900, 3), 90, np.uint8)
    canvas[100:600, 300:800] = cv2.resize(astronaut, (500, 500))
    _save(folder / "sub" / "c.jpg", canvas)
    _save(folder / "empty.png", np.full((200, 300, 3), 200, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


@pytest.fixture(scope="module")
def benchmark_run(originals):
    variants = variants_of("solid") + variants_of("blur", [0.025])
    return run_benchmark(originals, variants, jobs=1)


def test_benchmark_counts_every_file(benchmark_run):
    report = benchmark_run.report
    assert report["files"] == {"total": 5, "measured": 3, "no_face": 1, "failed": 1, "faces": 3}
    failed = [row for row in report["per_file"] if row["status"] == "failed"]
    assert failed[0]["file"] == "broken.jpg" and "broken.jpg" in failed[0]["error"]
    assert report["gallery"]["faces"] == 3
    assert [v["label"] for v in report["variants"]] == ["solid", "blur 0.025"]
    assert all(v["faces"] == 3 for v in report["variants"])
    assert len(report["per_face"]) == 6


def test_benchmark_measures_what_each_method_does(benchmark_run):
    solid, light_blur = benchmark_run.report["variants"]
    assert solid["utility"]["detection_rate"] == 0.0
    assert solid["protection"]["dlib"]["match_rate"] == 0.0
    assert light_blur["utility"]["detection_rate"] == 1.0
    assert light_blur["protection"]["dlib"]["match_rate"] == 1.0  # a light blur does not hide the person
    assert light_blur["utility"]["landmark_error"]["n"] == 3
    # the defect counters, on every face: a blur adds almost no edges where the face was
    assert light_blur["utility"]["defects"]["seam"]["n"] == 3 and light_blur["utility"]["defects"]["seam"]["max"] < 0.1
    assert light_blur["utility"]["fallback_kinds"]["none"] == 3
    for variant in (solid, light_blur):
        assert variant["utility"]["ssim_outside"]["min"] > 0.999  # only the face changed
        assert variant["speed"]["seconds_per_face"] > 0
        assert variant["held_out"] == ["dlib", "facenet"]
    assert light_blur["utility"]["face_ssim"]["mean"] > solid["utility"]["face_ssim"]["mean"]


def test_benchmark_keeps_thumbnails_for_the_galleries(benchmark_run):
    keys = set(benchmark_run.thumbnails)
    assert ("a.jpg", 0, "original") in keys and ("sub/c.jpg", 0, "solid") in keys
    assert benchmark_run.thumbnails[("a.jpg", 0, "blur 0.025")][:2] == b"\xff\xd8"  # JPEG


def test_a_failing_method_counts_its_faces_as_recognized(originals):
    broken = variant_of(MethodSpec("no-such-method", "a method the pipeline does not know"))
    run = run_benchmark(originals, [broken], limit=2)
    variant = run.report["variants"][0]
    assert variant["faces"] == 2 and variant["unmeasured_faces"] == 2
    for name in ("dlib", "facenet"):
        assert variant["protection"][name]["match_rate"] == 1.0
        assert variant["protection"][name]["top1_rate"] == 1.0
    assert variant["utility"]["detection_rate"] == 0.0
    statuses = {row["file"]: row["variants"]["no-such-method"]["status"] for row in run.report["per_file"]}
    assert statuses == {"a.jpg": "method_failed", "b.png": "method_failed"}


def test_evaluate_pairs_folders_and_reports_every_problem(tmp_path, originals, astronaut):
    anonymized = tmp_path / "anonymized"
    _save(anonymized / "a.jpg", anonymize(astronaut, method="solid").image)
    _save(anonymized / "b.jpg", astronaut[:, ::-1].copy())  # other suffix, same stem: paired; unchanged
    _save(anonymized / "empty.png", np.full((100, 100, 3), 200, np.uint8))  # no face in the original anyway
    _save(anonymized / "stray.jpg", astronaut)  # no original
    # sub/c.jpg is missing
    run = evaluate_folders(originals, anonymized, label="tool")
    report = run.report
    rows = {row["file"]: row for row in report["per_file"]}
    assert rows["a.jpg"]["variants"]["tool"]["status"] == "measured"
    assert rows["b.png"]["variants"]["tool"]["status"] == "measured"
    assert rows["sub/c.jpg"]["variants"]["tool"]["status"] == "missing"
    assert rows["broken.jpg"]["status"] == "failed"
    assert report["unpaired_anonymized"] == ["stray.jpg"]
    variant = report["variants"][0]
    assert variant["faces"] == 3 and variant["unmeasured_faces"] == 1
    # b is unchanged and c is missing: both count as matched; a (solid) is not
    assert variant["protection"]["dlib"]["match_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert variant["protection"]["dlib"]["distance"]["n"] == 2


def test_evaluate_reports_a_resized_image(tmp_path, astronaut):
    original, anonymized = tmp_path / "o", tmp_path / "a"
    _save(original / "x.png", astronaut)
    _save(anonymized / "x.png", cv2.resize(astronaut, (256, 256)))
    run = evaluate_folders(original, anonymized)
    row = run.report["per_file"][0]["variants"]["anonymized"]
    assert row["status"] == "size_mismatch" and "256x256" in row["error"]


def test_workers_give_the_same_figures(originals):
    variants = variants_of("pixelate", [8])
    config = EvaluationConfig(recognizers=("dlib",))
    one = run_benchmark(originals, variants, config, jobs=1, limit=2).report
    two = run_benchmark(originals, variants, config, jobs=2, limit=2).report
    assert [r["dlib_distance"] for r in one["per_face"]] == [r["dlib_distance"] for r in two["per_face"]]
    assert [r["file"] for r in two["per_file"]] == ["a.jpg", "b.png"]


def test_a_crashing_worker_fails_only_its_image():
    import operator
    import os

    from lookalike.evaluation.runner import _run

    tasks = [(operator.add, (1, 2)), (os._exit, (7,)), (operator.add, (3, 4)), (operator.add, (5, 6))]
    names = [(Path(f"in/{n}.jpg"), f"{n}.jpg") for n in "abcd"]
    results = _run(tasks, names, jobs=2, progress=None)
    assert results[0] == 3 and results[2] == 7 and results[3] == 11
    assert results[1].status == "failed" and results[1].error.startswith("in/b.jpg: the process working on it crashed")


def test_a_folder_anonymized_into_the_originals_is_not_read_as_originals(tmp_path, astronaut):
    photos = tmp_path / "photos"
    _save(photos / "a.png", astronaut)
    _save(photos / "anon" / "a.png", anonymize(astronaut, method="solid").image)
    run = evaluate_folders(photos, photos / "anon", EvaluationConfig(recognizers=("dlib",)), steered_by=("dlib",))
    report = run.report
    assert report["files"]["total"] == 1 and report["gallery"]["faces"] == 1
    assert report["unpaired_anonymized"] == []
    variant = report["variants"][0]
    assert variant["steered_by"] == ["dlib"] and variant["held_out"] == []


def test_unknown_steering_marks_no_recognizer_held_out(tmp_path, astronaut):
    original, anonymized = tmp_path / "o", tmp_path / "a"
    _save(original / "x.png", astronaut)
    _save(anonymized / "x.png", astronaut)
    variant = evaluate_folders(original, anonymized, EvaluationConfig(recognizers=("dlib",))).report["variants"][0]
    assert variant["steered_by"] is None and variant["held_out"] is None
    assert variant["protection"]["dlib"]["match_rate"] == 1.0  # unchanged: still the person


def test_evaluate_counts_a_face_added_elsewhere(tmp_path, astronaut):
    portrait = cv2.resize(astronaut[0:300, 110:350], (240, 300))
    canvas = np.full((400, 900, 3), 120, np.uint8)
    canvas[50:350, 30:270] = portrait
    added = anonymize(canvas, method="solid").image
    added[50:350, 600:840] = portrait
    original, anonymized = tmp_path / "o", tmp_path / "a"
    _save(original / "x.png", canvas)
    _save(anonymized / "x.png", added)
    run = evaluate_folders(original, anonymized, EvaluationConfig(recognizers=("dlib",)))
    assert run.report["variants"][0]["utility"]["extra_faces"] == 1
    assert run.report["variants"][0]["utility"]["detection_rate"] == 0.0


def test_a_failed_measurement_keeps_its_faces(tmp_path, astronaut, monkeypatch):
    from lookalike.evaluation import runner

    def explode(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(runner, "measure_versions", explode)
    original, anonymized = tmp_path / "o", tmp_path / "a"
    _save(original / "x.png", astronaut)
    _save(anonymized / "x.png", astronaut)
    report = evaluate_folders(original, anonymized, EvaluationConfig(recognizers=("dlib",))).report
    version = report["per_file"][0]["variants"]["anonymized"]
    assert version["status"] == "measure_failed" and version["error"].endswith("x.png: out of memory")
    assert report["variants"][0]["faces"] == 1 and report["variants"][0]["protection"]["dlib"]["match_rate"] == 1.0


def test_an_empty_folder_is_an_error(tmp_path):
    from lookalike.errors import ImageError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no image files found"):
        run_benchmark(tmp_path / "empty", variants_of("solid"))
