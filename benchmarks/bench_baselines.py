"""The README's baseline figures: `lookalike benchmark` on the OMI faces with blur, pixelate and solid.

Runs the real command (timed from the outside, model loading included), then prints the summary table
as Markdown, saves the aggregate figures to benchmarks/results/baselines_omi.json and copies the two
plots to docs/images/. The full report (per face) stays in --report-dir.

    python benchmarks/bench_baselines.py                       # all 804 faces, ~17 min on 2 cores
    python benchmarks/bench_baselines.py --limit 40            # a quick look
    python benchmarks/bench_baselines.py --from-report /tmp/lookalike-baselines   # tables of a finished run

Hold-out: FaceNet's threshold was calibrated on OMI faces 0001-0400 (benchmarks/calibrate_facenet.py), so
a second table recomputes protection on faces 0401-0804 alone (gallery still all originals).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lookalike.io import write_bytes_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OMI_FACES = REPO.parent / "shared" / "data" / "omi" / "faces"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=OMI_FACES)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--report-dir", type=Path, default=Path("/tmp/lookalike-baselines"))
    parser.add_argument("--no-save", action="store_true", help="do not update benchmarks/results and docs/images")
    parser.add_argument("--from-report", type=Path, help="print the tables of this finished report folder, run nothing")
    args = parser.parse_args()
    if args.from_report:
        report = json.loads((args.from_report / "report.json").read_text())
        print(markdown_table(report) + "\n\n" + holdout_table(report))
        return 0
    if not args.images.is_dir():
        print(f"skipped: {args.images} not found (the OMI faces are only on the development machines)")
        return 0

    command = [
        "lookalike",
        "benchmark",
        "--images",
        str(args.images),
        "--methods",
        "blur,pixelate,solid",
        "-o",
        str(args.report_dir),
    ] + (["--limit", str(args.limit)] if args.limit else [])
    lookalike = Path(sys.executable).with_name("lookalike")
    shutil.rmtree(args.report_dir, ignore_errors=True)  # never read an older run's report
    started = time.perf_counter()
    finished = subprocess.run([str(lookalike), *command[1:]], stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if finished.returncode not in (0, 1) or not (args.report_dir / "report.json").exists():
        print(f"$ {' '.join(command)}\nfailed with exit {finished.returncode}; nothing saved")
        return finished.returncode or 1
    report = json.loads((args.report_dir / "report.json").read_text())
    print(f"$ {' '.join(command)}\nexit {finished.returncode}, wall time {wall / 60:.1f} min\n")
    print(markdown_table(report) + "\n\n" + holdout_table(report))

    if not args.no_save and args.limit is None:
        summary = {
            key: report[key]
            for key in (
                "created",
                "inputs",
                "seconds_total",
                "config",
                "recognizers",
                "software",
                "gallery",
                "files",
                "detection_seconds_per_image",
                "variants",
            )
        }
        summary["command"] = " ".join(command)
        summary["wall_seconds"] = round(wall, 1)
        summary["holdout_0401_0804"] = holdout_figures(report)
        results = REPO / "benchmarks" / "results" / "baselines_omi.json"
        write_text_atomic(results, json.dumps(summary, indent=1) + "\n")
        for name in ("tradeoff.png", "distances.png"):
            write_bytes_atomic(REPO / "docs" / "images" / f"baselines_{name}", (args.report_dir / name).read_bytes())
        print(f"\nsaved {results.relative_to(REPO)} and docs/images/baselines_*.png")
    return finished.returncode


def markdown_table(report: dict) -> str:
    names = list(report["recognizers"])
    head = [
        "method",
        *[f"{n} match / top-1 / median rank" for n in names],
        "detected",
        "landmark err (faces)",
        "face SSIM",
        "perceptual sim. (faces)",
        "age / gender MAD",
        "SSIM outside (min)",
        "s/face",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in report["variants"]:
        u = v["utility"]
        cells = [v["label"]]
        for n in names:
            p = v["protection"][n]
            cells.append(f"{_pct(p['match_rate'])} / {_pct(p['top1_rate'])} / {_num(p['median_rank'], 0)}")
        landmarks = u["landmark_error"]
        perceptual, attributes = u.get("perceptual_similarity") or {}, u.get("attributes") or {}
        cells += [
            _pct(u["detection_rate"]),
            f"{_num(landmarks['mean'], 3)} (n={landmarks['n']})",
            _num(u["face_ssim"]["mean"], 3),
            f"{_num(perceptual.get('mean'), 3)} (n={perceptual.get('n', 0)})",
            " / ".join(_num((attributes.get(a) or {}).get("mad"), 1) for a in ("age", "gender")),
            f"{_num(u['ssim_outside']['mean'], 5)} ({_num(u['ssim_outside']['min'], 4)})",
            _num(v["speed"]["seconds_per_face"], 3),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    gallery = report["gallery"]
    lines.append(
        f"\nGallery: {gallery['faces']} originals (chance top-1 {_pct(gallery['chance_top1'], 2)}); "
        f"files {report['files']}; detection+landmarks+embedding of originals "
        f"{report['detection_seconds_per_image']} s/image; total {report['seconds_total']} s."
    )
    return "\n".join(lines)


def holdout_figures(report: dict, first: int = 401) -> dict:
    """Match and top-1 per variant and recognizer on faces numbered ``first`` and up (file names 0001.jpg ...)."""
    rows = [r for r in report["per_face"] if _number(r["file"]) >= first]
    figures = {}
    for v in report["variants"]:
        mine = [r for r in rows if r["variant"] == v["label"]]
        figures[v["label"]] = {
            "faces": len(mine),
            **{
                n: {
                    "match_rate": round(sum(r[f"{n}_match"] for r in mine) / len(mine), 5) if mine else None,
                    "top1_rate": round(sum(r[f"{n}_rank"] == 1 for r in mine) / len(mine), 5) if mine else None,
                }
                for n in report["recognizers"]
            },
        }
    return figures


def holdout_table(report: dict) -> str:
    figures = holdout_figures(report)
    names = list(report["recognizers"])
    lines = [
        "| method (faces 0401-0804) | faces | " + " | ".join(f"{n} match / top-1" for n in names) + " |",
        "|" + "---|" * (2 + len(names)),
    ]
    for label, f in figures.items():
        lines.append(
            f"| {label} | {f['faces']} | "
            + " | ".join(f"{_pct(f[n]['match_rate'])} / {_pct(f[n]['top1_rate'])}" for n in names)
            + " |"
        )
    return "\n".join(lines)


def _number(file: str) -> int:
    stem = Path(file).stem
    return int(stem) if stem.isdigit() else 0


def _pct(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _num(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
