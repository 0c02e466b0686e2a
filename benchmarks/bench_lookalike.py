"""The README's lookalike figures: `lookalike benchmark` on hold-out OMI faces, and the gallery.

Hold-out: faces 0601-0804 were never used for anything the method ships or was tuned on (the donor
bank's prototypes and the reference crowd come from faces 0001-0600, the perception head was trained on
0001-0600, FaceNet's threshold calibrated on 0001-0400). The folder of hold-out faces is made of links
in the report folder, so the real command runs on exactly those files.

Variants: blur 0.15 (the strongest blur baseline), swap (the whole face from one donor, no check), the
checked swap (whole-face swaps from one donor after another under the lookalike method's check and
fallbacks at the default level: the baseline at equal protection, compared face by face), and the
lookalike method at the default level steered on both recognizers, and on one recognizer only
(leave-one-out: judged by the other). Protection is measured against a gallery of all hold-out originals.

    python benchmarks/bench_lookalike.py                  # 204 faces, ~20 min on 2 cores
    python benchmarks/bench_lookalike.py --limit 20       # a quick look (top-1 is then not meaningful)
    python benchmarks/bench_lookalike.py --gallery        # only the picture docs/images/lookalike_gallery.png
    python benchmarks/bench_lookalike.py --timing 40 --levels low,medium,high   # speed, alone on the machine
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_baselines import _pct, markdown_table
from lookalike.io import write_bytes_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OMI_FACES = REPO.parent / "shared" / "data" / "omi" / "faces"
HOLDOUT = range(601, 805)
RESULTS = REPO / "benchmarks" / "results" / "lookalike_omi.json"
GALLERY = REPO / "docs" / "images" / "lookalike_gallery.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report-dir", type=Path, default=Path("/tmp/lookalike-lookalike"))
    parser.add_argument("--levels", default="medium", help="lookalike levels for the benchmark, comma-separated")
    parser.add_argument("--steer", default="both,dlib,facenet")
    parser.add_argument("--gallery", action="store_true", help="only draw the gallery")
    parser.add_argument(
        "--timing",
        type=int,
        default=0,
        metavar="N",
        help="only time the method on N hold-out faces in this process alone (run it on a quiet machine)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not update benchmarks/results and docs/images")
    args = parser.parse_args()
    if not OMI_FACES.is_dir():
        print(f"skipped: {OMI_FACES} not found (the OMI faces are only on the development machines)")
        return 0
    if args.gallery:
        return gallery(save=not args.no_save)
    if args.timing:
        return timing(args.timing, args.levels.split(","), save=not args.no_save)

    shutil.rmtree(args.report_dir, ignore_errors=True)  # never read an older run's report
    images = args.report_dir / "holdout"
    images.mkdir(parents=True)
    for number in HOLDOUT:
        (images / f"{number:04d}.jpg").symlink_to(OMI_FACES / f"{number:04d}.jpg")
    command = [
        "lookalike",
        "benchmark",
        "--images",
        str(images),
        "--methods",
        "blur,swap,checked-swap,lookalike",
        "--levels",
        "blur=0.15",
        "--levels",
        "checked-swap=medium",
        "--levels",
        f"lookalike={args.levels}",
        "--steer",
        args.steer,
        "--jobs",
        str(args.jobs),
        "-o",
        str(args.report_dir / "report"),
    ]
    command += ["--limit", str(args.limit)] if args.limit else []
    started = time.perf_counter()
    finished = subprocess.run(
        [str(Path(sys.executable).with_name("lookalike")), *command[1:]], stdout=subprocess.DEVNULL
    )
    wall = time.perf_counter() - started
    report_file = args.report_dir / "report" / "report.json"
    if finished.returncode not in (0, 1) or not report_file.exists():
        print(f"$ {' '.join(command)}\nfailed with exit {finished.returncode}; nothing saved")
        return finished.returncode or 1
    report = json.loads(report_file.read_text())
    print(f"$ {' '.join(command)}\nexit {finished.returncode}, wall time {wall / 60:.1f} min\n")
    print(
        markdown_table(report)
        + "\n\n"
        + leave_one_out_table(report)
        + "\n\n"
        + fallback_table(report)
        + "\n\n"
        + paired_table(paired(report))
    )
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
        summary["command"] = " ".join(command).replace(str(args.report_dir), "REPORT_DIR")
        summary["wall_seconds"] = round(wall, 1)
        summary["fallbacks"] = fallbacks(report)
        summary["paired"] = paired(report)
        write_text_atomic(RESULTS, json.dumps(summary, indent=1) + "\n")
        print(f"\nsaved {RESULTS.relative_to(REPO)}")
    return finished.returncode


def leave_one_out_table(report: dict) -> str:
    """Protection of each variant by each recognizer, marking the recognizers the loop did not consult."""
    names = list(report["recognizers"])
    lines = [
        "| variant | steered by | " + " | ".join(f"{n} match / top-1 / top-5" for n in names) + " |",
        "|" + "---|" * (2 + len(names)),
    ]
    for v in report["variants"]:
        steered = v.get("steered_by")
        cells = [v["label"], ", ".join(steered) if steered else "-"]
        for n in names:
            p = v["protection"][n]
            held = " (held out)" if steered and n not in steered else ""
            cells.append(f"{_pct(p['match_rate'])} / {_pct(p['top1_rate'])} / {_pct(p['top5_rate'])}{held}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fallbacks(report: dict) -> dict:
    out = {}
    for v in report["variants"]:
        rows = [r for r in report["per_face"] if r["variant"] == v["label"]]
        kinds: dict[str, int] = {}
        for r in rows:
            if r.get("fallback"):
                kind = r["fallback"].split(" (")[0]
                kinds[kind] = kinds.get(kind, 0) + 1
        out[v["label"]] = {"faces": len(rows), "fallbacks": kinds}
    return out


def fallback_table(report: dict) -> str:
    lines = ["| variant | faces | fell back (blurred lookalike / blur / solid) |", "|---|---|---|"]
    for label, f in fallbacks(report).items():
        kinds = f["fallbacks"]
        total = sum(kinds.values())
        share = _pct(total / f["faces"]) if f["faces"] else "n/a"
        lines.append(
            f"| {label} | {f['faces']} | {share} ({kinds.get('blurred lookalike', 0)} / {kinds.get('blur', 0)} / "
            f"{kinds.get('solid', 0)}) |"
        )
    return "\n".join(lines)


#: Per-face measures compared face by face, and whether higher is better.
PAIRED = {
    "perceptual_similarity": True,
    "pose_error": False,
    "landmark_error": False,
    "mouth_error": False,
    "eye_error": False,
}


def paired(report: dict, baseline: str = "checked-swap medium", ours: str = "lookalike medium") -> dict:
    """The lookalike method against the checked swap face by face (same check, so equal protection): for
    each measure, the means over the faces both have it for, and on how many of those faces ours is better,
    worse or equal."""
    rows: dict[str, dict] = {}
    for r in report["per_face"]:
        rows.setdefault(r["variant"], {})[(r["file"], r["face"])] = r
    if baseline not in rows or ours not in rows:
        return {}
    out = {"baseline": baseline, "ours": ours, "measures": {}}
    for measure, higher_better in PAIRED.items():
        pairs = [
            (rows[baseline][key][measure], rows[ours][key][measure])
            for key in rows[ours]
            if key in rows[baseline]
            and rows[baseline][key][measure] is not None
            and rows[ours][key][measure] is not None
        ]
        if not pairs:
            continue
        better = sum((o > b) == higher_better for b, o in pairs if o != b)
        equal = sum(o == b for b, o in pairs)
        out["measures"][measure] = {
            "faces": len(pairs),
            "baseline_mean": round(float(np.mean([b for b, _ in pairs])), 4),
            "ours_mean": round(float(np.mean([o for _, o in pairs])), 4),
            "ours_better": better,
            "ours_worse": len(pairs) - better - equal,
            "equal": equal,
        }
    return out


def paired_table(result: dict) -> str:
    if not result:
        return "(no paired comparison: the report lacks the checked swap or the lookalike row)"
    lines = [
        f"| measure (faces both keep) | {result['baseline']} | {result['ours']} | ours better / worse / equal |",
        "|---|---|---|---|",
    ]
    for measure, m in result["measures"].items():
        lines.append(
            f"| {measure.replace('_', ' ')} ({m['faces']}) | {m['baseline_mean']:.4f} | {m['ours_mean']:.4f} | "
            f"{m['ours_better']} / {m['ours_worse']} / {m['equal']} |"
        )
    return "\n".join(lines)


def timing(count: int, levels: list[str], save: bool = True) -> int:
    """Seconds per face of the lookalike method, one process on both cores, after a warm-up face.

    End to end for the method: everything :func:`lookalike.anonymize` does once the face is detected
    (measurement, donor choice, every candidate, the checks, fallbacks, composition); detection with
    dense landmarks is timed apart, per image.
    """
    from lookalike.faces import detect
    from lookalike.io.images import load_image
    from lookalike.pipeline import anonymize

    numbers = list(HOLDOUT)[: count + 1]
    images = [load_image(OMI_FACES / f"{n:04d}.jpg").rgb for n in numbers]
    detection, faces = [], []
    for image in images:
        started = time.perf_counter()
        faces.append(detect(image))
        detection.append(time.perf_counter() - started)
    out: dict = {"faces": count, "detection_seconds_per_image": _stats(detection[1:])}
    for level in levels:
        anonymize(images[0], method="lookalike", privacy=level, faces=faces[0])  # warm-up: models load
        seconds, fellback = [], 0
        for image, found in zip(images[1:], faces[1:]):
            if not found:
                continue  # nothing to time: "per face" of an image without one would be 0
            started = time.perf_counter()
            result = anonymize(image, method="lookalike", privacy=level, faces=found)
            seconds.append((time.perf_counter() - started) / max(len(found), 1))
            fellback += sum(record.fallback is not None for record in result.faces)
        out[level] = {**_stats(seconds), "fallbacks": fellback}
        print(
            f"lookalike {level}: median {out[level]['median']:.3f} s/face, mean {out[level]['mean']:.3f}, "
            f"p90 {out[level]['p90']:.3f} ({count} faces, {fellback} fell back)",
            flush=True,
        )
    print(f"detection + landmarks: median {out['detection_seconds_per_image']['median']:.3f} s/image")
    if save and RESULTS.exists():
        summary = json.loads(RESULTS.read_text())
        summary["timing"] = out
        write_text_atomic(RESULTS, json.dumps(summary, indent=1) + "\n")
        print(f"saved into {RESULTS.relative_to(REPO)}")
    return 0


def _stats(values: list[float]) -> dict:
    return {
        "median": round(float(np.median(values)), 4),
        "mean": round(float(np.mean(values)), 4),
        "p90": round(float(np.percentile(values, 90)), 4),
    }


def gallery(save: bool = True, count: int = 24, tile: int = 112) -> int:
    """original | blur 0.15 | swap | lookalike low | medium | high, for ``count`` hold-out faces spread evenly."""
    import cv2

    from lookalike.faces import detect
    from lookalike.io.images import load_image
    from lookalike.pipeline import anonymize

    numbers = np.linspace(HOLDOUT.start, HOLDOUT.stop - 1, count).round().astype(int)
    columns = [
        ("original", None),
        ("blur 0.15", {"method": "blur", "blur_sigma": 0.15}),
        ("swap", {"method": "swap"}),
        ("lookalike low", {"method": "lookalike", "privacy": "low"}),
        ("lookalike medium", {"method": "lookalike", "privacy": "medium"}),
        ("lookalike high", {"method": "lookalike", "privacy": "high"}),
    ]
    rows, notes = [], []
    for number in numbers:
        image = load_image(OMI_FACES / f"{number:04d}.jpg").rgb
        faces = detect(image)
        if not faces:
            print(f"{number:04d}: no face found, left out")
            continue
        face = max(faces, key=lambda f: f.width * f.height)
        x0, y0, x1, y1 = face.box
        pad = 0.25 * max(x1 - x0, y1 - y0)
        box = (slice(max(0, int(y0 - pad)), int(y1 + pad)), slice(max(0, int(x0 - pad)), int(x1 + pad)))
        tiles, note = [], [f"{number:04d}"]
        for label, options in columns:
            if options is None:
                result = image
            else:
                anonymized = anonymize(image, faces=[face], **options)
                result = anonymized.rgb
                record = anonymized.faces[0]
                if record.fallback:
                    note.append(f"{label}: {record.fallback.split(' (')[0]}")
            tiles.append(cv2.resize(np.ascontiguousarray(result[box]), (tile, tile), interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(tiles))
        notes.append(", ".join(note))
        print(notes[-1], flush=True)
    half = (len(rows) + 1) // 2
    left, right = np.vstack(rows[:half]), np.vstack(rows[half:])
    if right.shape[0] < left.shape[0]:
        right = np.vstack([right, np.full((left.shape[0] - right.shape[0],) + right.shape[1:], 255, np.uint8)])
    gap = np.full((left.shape[0], tile // 4, 3), 255, np.uint8)
    picture = np.hstack([left, gap, right])
    header = np.full((28, picture.shape[1], 3), 255, np.uint8)
    for side in range(2):
        for i, (label, _) in enumerate(columns):
            x = side * (left.shape[1] + gap.shape[1]) + i * tile + 4
            cv2.putText(header, label, (x, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    picture = np.vstack([header, picture])
    if save:
        ok, data = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise RuntimeError("could not encode the gallery")
        write_bytes_atomic(GALLERY, data.tobytes())
        print(f"saved {GALLERY.relative_to(REPO)} ({len(data) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
