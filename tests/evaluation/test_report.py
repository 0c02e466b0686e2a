"""The report renderer on small hand-made runs: files written, a self-contained escaped page, worst cases,
degenerate input, and (when present) a real sample run."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from lookalike.evaluation.report import plot_distances, plot_tradeoff, write_report
from lookalike.evaluation.runner import ORIGINAL, EvaluationRun

# deliberately not the usual pair: the renderer must take recognizer names from the report
RECOGNIZERS = {"dlib": 0.6, "arcface": 0.4}
METRIC_KEYS = (
    "match_rate",
    "top1_rate",
    "top5_rate",
    "median_rank",
    "distance",
    "detection_rate",
    "landmark_error",
    "pose_error",
    "mouth_error",
    "eye_error",
    "face_ssim",
    "ssim_outside",
    "psnr_outside",
    "seconds_per_face",
)
SAMPLE = Path("/tmp/run_sample.pkl")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _stats(values: list[float]) -> dict:
    if not values:
        return dict.fromkeys(("mean", "median", "p10", "p90", "min", "max"), None) | {"n": 0}
    v = np.asarray(values, float)
    return {
        "n": v.size,
        "mean": v.mean(),
        "median": float(np.median(v)),
        "p10": float(np.percentile(v, 10)),
        "p90": float(np.percentile(v, 90)),
        "min": v.min(),
        "max": v.max(),
    }


def _rate(count: int, n: int) -> float | None:
    return count / n if n else None


def _face(
    file: str,
    variant: str,
    ranks: dict[str, int],
    distances: dict[str, float | None],
    *,
    detected: bool = True,
    face: int = 0,
    status: str = "measured",
    ssim: float | None = 0.6,
) -> dict:
    row = {
        "file": file,
        "face": face,
        "variant": variant,
        "status": status,
        "box": [0, 0, 10, 10],
        "detected": detected,
    }
    for name, threshold in RECOGNIZERS.items():
        distance = distances.get(name)
        row |= {
            f"{name}_distance": distance,
            f"{name}_rank": ranks[name],
            f"{name}_match": distance is None or distance <= threshold,
        }
    measured = status == "measured" and detected
    row |= {k: (0.05 if measured else None) for k in ("landmark_error", "pose_error", "mouth_error", "eye_error")}
    return row | {"face_ssim": ssim if status == "measured" else None}


def _variant(
    label: str,
    rows: list[dict],
    method: str | None = None,
    level: float | None = None,
    steered_by: tuple[str, ...] = (),
) -> dict:
    rows = [r for r in rows if r["variant"] == label]
    n = len(rows)
    protection = {}
    for name, threshold in RECOGNIZERS.items():
        ranks = [r[f"{name}_rank"] for r in rows]
        protection[name] = {
            "threshold": threshold,
            "match_rate": _rate(sum(r[f"{name}_match"] for r in rows), n),
            "top1_rate": _rate(sum(k == 1 for k in ranks), n),
            "top5_rate": _rate(sum(k <= 5 for k in ranks), n),
            "median_rank": float(np.median(ranks)) if ranks else None,
            "distance": _stats([r[f"{name}_distance"] for r in rows if r[f"{name}_distance"] is not None]),
        }
    utility = {
        "detection_rate": _rate(sum(r["detected"] for r in rows), n),
        "extra_faces": 0,
        **{
            k: _stats([r[k] for r in rows if r[k] is not None])
            for k in ("landmark_error", "pose_error", "mouth_error", "eye_error", "face_ssim")
        },
        "ssim_outside": _stats([0.999] if n else []),
        "psnr_outside": _stats([70.0] if n else []),
    }
    entry = {
        "label": label,
        "faces": n,
        "steered_by": list(steered_by),
        "held_out": [k for k in RECOGNIZERS if k not in steered_by],
        "unmeasured_faces": sum(r["status"] != "measured" for r in rows),
        "protection": protection,
        "utility": utility,
        "speed": {"seconds_per_face": 0.01 if n else None, "seconds_per_image": None},
    }
    if method is not None:
        entry |= {"method": method, "level": level, "level_meaning": "strength"}
    return entry


def _run(
    rows: list[dict],
    variants: list[dict],
    per_file: list[dict],
    *,
    kind: str = "benchmark",
    gallery: int | None = None,
    thumbnails: dict | None = None,
    **extra,
) -> EvaluationRun:
    faces = len({(r["file"], r["face"]) for r in rows}) if gallery is None else gallery
    report = {
        "kind": kind,
        "created": "2026-01-01T00:00:00+00:00",
        "command": "lookalike benchmark --images x",
        "inputs": {"images": "x"},
        "seconds_total": 1.5,
        "config": {"recognizers": list(RECOGNIZERS)},
        "recognizers": {k: {"threshold": t, "distance": f"{k} distance"} for k, t in RECOGNIZERS.items()},
        "software": {"python": "3.11"},
        "metrics": {
            k: {"better": "lower" if "rate" in k and k != "detection_rate" else "higher", "meaning": f"meaning of {k}"}
            for k in METRIC_KEYS
        },
        "gallery": {
            "faces": faces,
            "chance_top1": 1 / faces if faces else None,
            "nearest_other_original": {k: _stats([0.5, 0.7] if faces > 1 else []) for k in RECOGNIZERS},
        },
        "files": {
            "total": len(per_file),
            "measured": sum(f["status"] == "measured" for f in per_file),
            "no_face": sum(f["status"] == "no_face" for f in per_file),
            "failed": sum(f["status"] == "failed" for f in per_file),
            "faces": faces,
        },
        "detection_seconds_per_image": 0.2 if rows else None,
        "variants": variants,
        "per_file": per_file,
        "per_face": rows,
        **extra,
    }
    if thumbnails is None:
        thumbnails = {}
        for r in rows:
            thumbnails[(r["file"], r["face"], ORIGINAL)] = _jpeg(200)
            if r["status"] == "measured":
                thumbnails[(r["file"], r["face"], r["variant"])] = _jpeg(60)
    return EvaluationRun(json.loads(json.dumps(report)), thumbnails)


def _jpeg(grey: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((16, 16, 3), grey, np.uint8))
    assert ok
    return data.tobytes()


def _file(
    name: str,
    labels: list[str],
    status: str = "measured",
    error: str | None = None,
    variant_status: dict[str, tuple[str, str]] | None = None,
) -> dict:
    variant_status = variant_status or {}
    return {
        "file": name,
        "status": status,
        "error": error,
        "faces": 1 if status == "measured" else 0,
        "variants": {
            label: {
                "status": variant_status.get(label, ("measured", None))[0],
                "error": variant_status.get(label, ("measured", None))[1],
                "extra_faces": 0,
                "ssim_outside": 0.999,
                "psnr_outside": 70.0,
                "seconds": 0.01,
            }
            for label in labels
        }
        if status == "measured"
        else {},
    }


@pytest.fixture
def run() -> EvaluationRun:
    """Three photos, two blur levels: one face still found by dlib, one no longer detected."""
    labels = ["blur 0.05", "blur 0.2"]
    rows = [
        _face("<script>.jpg", "blur 0.05", {"dlib": 1, "arcface": 2}, {"dlib": 0.45, "arcface": 0.5}),
        _face("b.jpg", "blur 0.05", {"dlib": 3, "arcface": 3}, {"dlib": 0.7, "arcface": 0.6}),
        _face("c.jpg", "blur 0.05", {"dlib": 2, "arcface": 2}, {"dlib": 0.8, "arcface": 0.7}),
        _face("<script>.jpg", "blur 0.2", {"dlib": 2, "arcface": 3}, {"dlib": 0.8, "arcface": 0.9}),
        _face("b.jpg", "blur 0.2", {"dlib": 3, "arcface": 2}, {"dlib": 0.9, "arcface": 0.8}),
        _face("c.jpg", "blur 0.2", {"dlib": 3, "arcface": 3}, {"dlib": 0.85, "arcface": 0.95}, detected=False),
    ]
    variants = [_variant("blur 0.05", rows, "blur", 0.05), _variant("blur 0.2", rows, "blur", 0.2)]
    files = [_file(name, labels) for name in ("<script>.jpg", "b.jpg", "c.jpg")]
    return _run(rows, variants, files)


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def _without_data(page: str) -> str:
    return re.sub(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+", "DATA", page)


def test_writes_all_files_and_json_round_trips(run, tmp_path):
    out = tmp_path / "new" / "report"
    paths = write_report(run, out)
    assert set(paths) == {"json", "html", "tradeoff", "distances"}
    assert json.loads(paths["json"].read_text()) == run.report
    for key in ("tradeoff", "distances"):
        assert paths[key].read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in out.iterdir()) == ["distances.png", "report.html", "report.json", "tradeoff.png"]


def test_page_is_self_contained_and_escaped(run, tmp_path):
    page = write_report(run, tmp_path)["html"].read_text()
    for reference in ("http://", "https://", 'src="/', "<script"):
        assert reference not in page
    assert "&lt;script&gt;.jpg" in page
    assert page.count("data:image/png;base64,") == 2
    assert page.count("data:image/jpeg;base64,") > 0
    for label in ("blur 0.05", "blur 0.2"):
        assert label in page
    assert "at least 200 originals" in page  # a gallery of 3


def test_summary_shows_each_recognizer_its_own_figures(run, tmp_path):
    page = _without_data(write_report(run, tmp_path)["html"].read_text())
    summary = _section(page, "summary")
    row = re.search(r"<tr><td>blur 0\.05</td>(.*?)</tr>", summary).group(1)
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    # faces, then dlib (match, top-1, top-5, median rank, median distance), then arcface
    assert cells[:11] == [
        "3",
        "33.3%\u2020",
        "33.3%",
        "100.0%",
        "2",
        "0.700",
        "0.0%\u2020",
        "0.0%",
        "100.0%",
        "2",
        "0.600",
    ]
    assert "lower is better" in summary and "higher is better" in summary
    assert "held out" in summary


def test_worst_cases_list_the_retrieved_and_the_lost(run, tmp_path):
    page = _without_data(write_report(run, tmp_path)["html"].read_text())
    still = _section(page, "still-recognized")
    assert "&lt;script&gt;.jpg #0" in still and "dlib #1" in still
    assert "b.jpg" not in still
    lost = _section(page, "no-longer-detected")
    assert "c.jpg #0" in lost and "blur 0.2" in lost
    assert "b.jpg" not in lost
    assert "none" in _section(page, "problems")


def test_examples_are_spread_and_limited(run, tmp_path):
    page = _without_data(write_report(run, tmp_path, examples=2, worst=0)["html"].read_text())
    examples = _section(page, "examples")
    assert examples.count('<div class="row">') == 2
    assert "dlib #1 \u00b7 arcface #2" in examples
    assert '<div class="card">' not in _section(page, "still-recognized")


def test_degenerate_run_still_renders(tmp_path):
    labels = ["solid"]
    files = [
        _file("broken.jpg", labels, status="failed", error="broken.jpg: cannot identify image <file>"),
        _file("empty.png", labels, status="no_face"),
    ]
    run = _run([], [_variant("solid", [], "solid", None)], files, gallery=0)
    paths = write_report(run, tmp_path)
    assert all(p.exists() for p in paths.values())
    assert paths["tradeoff"].read_bytes().startswith(PNG_MAGIC)
    page = paths["html"].read_text()
    problems = _section(page, "problems")
    assert "broken.jpg: cannot identify image &lt;file&gt;" in problems
    assert "no_face" in problems
    assert "stay in every denominator" in problems
    assert "n/a" in _section(page, "summary")
    assert "No faces were measured" in page


def test_unmeasured_versions_and_unpaired_files_are_problems(tmp_path):
    rows = [
        _face("a.jpg", "anonymized", {"dlib": 1, "arcface": 1}, {}, detected=False, status="missing"),
        _face("b.jpg", "anonymized", {"dlib": 4, "arcface": 9}, {"dlib": 0.9, "arcface": 0.8}),
    ]
    files = [
        _file("a.jpg", ["anonymized"], variant_status={"anonymized": ("missing", "a.jpg: no anonymized file")}),
        _file("b.jpg", ["anonymized"]),
    ]
    run = _run(rows, [_variant("anonymized", rows)], files, kind="evaluate", unpaired_anonymized=["extra.png"])
    page = _without_data(write_report(run, tmp_path)["html"].read_text())
    problems = _section(page, "problems")
    assert "a.jpg: no anonymized file" in problems and "missing" in problems
    assert "extra.png" in problems
    # the missing face has no anonymized thumbnail, so it is counted but not shown
    still = _section(page, "still-recognized")
    assert "1 face version in all; showing 0" in still


def test_plots_accept_an_empty_report(tmp_path):
    assert plot_tradeoff({}, tmp_path / "t.png").read_bytes().startswith(PNG_MAGIC)
    assert plot_distances({}, tmp_path / "d.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.skipif(not SAMPLE.exists(), reason=f"no sample run at {SAMPLE}")
def test_renders_the_sample_run(tmp_path):
    with SAMPLE.open("rb") as fh:
        run = pickle.load(fh)
    paths = write_report(run, tmp_path)
    page = paths["html"].read_text()
    for variant in run.report["variants"]:
        assert variant["label"] in page
    assert "https://" not in page and "http://" not in page
