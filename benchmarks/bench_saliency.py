"""The README's saliency figures: deletion curves, transfer between recognizers, and speed.

On OMI faces (default 0001-0200), for every face:
- saliency by FaceNet gradient (integrated gradients), FaceNet occlusion, dlib occlusion and both
  recognizers' occlusion combined;
- deletion curves: the face's regions are neutralised one after another (the same blur fill the saliency
  uses) in each saliency's ranked order, in a random order and in a fixed canonical order (eyes, nose,
  mouth, brows, cheeks, chin, forehead, jaw); after each region, the identity distance from the unchanged
  face is measured with *both* recognizers, at the original's alignment. Each curve is interpolated over
  the fraction of the face area changed; its area (AUC, mean distance over 0..100% of the area) says how
  fast the order moves identity. Orders from one recognizer measured with the other are the transfer figures.
- speed (after the deletion pass): seconds per face of each method, in this process alone (no workers
  running, torch on both cores), after a warm-up,
  for faces already detected and meshed; and how well fewer integrated-gradient steps agree with 16.

    python benchmarks/bench_saliency.py                 # ~25 min on 2 cores
    python benchmarks/bench_saliency.py --faces 1-20    # a quick look
    python benchmarks/bench_saliency.py --timing-only   # redo only the speed figures, on a quiet machine
    python benchmarks/bench_saliency.py --summary-only  # tables and plot again from the saved curves
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OMI_FACES = REPO.parent / "shared" / "data" / "omi" / "faces"
RESULTS = REPO / "benchmarks" / "results" / "saliency_omi.json"
PLOT = REPO / "docs" / "images" / "saliency_deletion.png"
GRID = np.linspace(0.0, 1.0, 41)
RECOGNIZERS = ("dlib", "facenet")

#: name -> (recognizer, method) given to identity_saliency
SOURCES = {
    "facenet gradient": ("facenet", "gradient"),
    "facenet occlusion": ("facenet", "occlusion"),
    "dlib occlusion": ("dlib", "occlusion"),
    "both recognizers, occlusion": ("both", "occlusion"),
}


def face_curves(path: Path, index: int, seed: int) -> dict:
    """Every ordering's deletion curve for the largest face of one image (runs in a worker)."""
    from lookalike.faces import detect
    from lookalike.identity import get_recognizer
    from lookalike.io.images import load_image
    from lookalike.landmarks import CANONICAL_ORDER, SALIENCY_REGIONS
    from lookalike.landmarks.partition import region_areas
    from lookalike.saliency import face_window, identity_saliency

    image = load_image(path).rgb
    faces = detect(image)
    if not faces:
        return {"file": path.name, "error": "no face found"}
    face = max(faces, key=lambda f: f.width * f.height)
    orders: dict[str, list[str]] = {}
    statuses = {}
    for name, (recognizer, method) in SOURCES.items():
        saliency = identity_saliency(image, face, recognizer, method)
        statuses[name] = saliency.status
        if saliency.status == "skipped":
            return {"file": path.name, "error": f"{name}: {saliency.reason}"}
        orders[name] = saliency.ranking
    rng = np.random.default_rng(seed + index)
    orders["random"] = [SALIENCY_REGIONS[i] for i in rng.permutation(len(SALIENCY_REGIONS))]
    orders["canonical"] = list(CANONICAL_ORDER)

    window = face_window(image, face)
    areas = dict(zip(SALIENCY_REGIONS, region_areas(window.labels) / window.face_area))
    prefixes = {frozenset(order[:k]) for order in orders.values() for k in range(len(order) + 1)}
    prefixes = sorted(prefixes, key=lambda s: (len(s), sorted(s)))
    distances = {}
    for name in RECOGNIZERS:
        recognizer = get_recognizer(name)
        chips = np.stack(
            [recognizer.align(window.neutralized(sorted(p)), window.face, reference=window.crop) for p in prefixes]
        )
        embeddings = recognizer.embed_aligned(chips)
        reference = embeddings[prefixes.index(frozenset())]
        distances[name] = dict(zip(prefixes, np.atleast_1d(recognizer.distance(reference[None], embeddings))))
    curves = {}
    for order_name, order in orders.items():
        cumulative = np.concatenate([[0.0], np.cumsum([areas[r] for r in order])])
        curves[order_name] = {
            "area": cumulative.round(5).tolist(),
            **{
                name: [round(float(distances[name][frozenset(order[:k])]), 5) for k in range(len(order) + 1)]
                for name in RECOGNIZERS
            },
        }
    return {"file": path.name, "orders": orders, "curves": curves, "statuses": statuses}


def timing(paths: list[Path], steps_list: tuple[int, ...]) -> dict:
    """Seconds per face of each method in this process alone, and gradient agreement against 16 steps."""
    from scipy.stats import spearmanr

    from lookalike.faces import detect
    from lookalike.io.images import load_image
    from lookalike.saliency import SaliencyConfig, identity_saliency

    prepared = []
    for path in paths:
        image = load_image(path).rgb
        faces = detect(image)
        if faces:
            prepared.append((image, max(faces, key=lambda f: f.width * f.height)))
    image, face = prepared[0]
    for recognizer, method in SOURCES.values():  # warm-up: models load once
        identity_saliency(image, face, recognizer, method)
    seconds: dict[str, list[float]] = {}
    correlation: dict[str, list[float]] = {}
    for image, face in prepared:
        for name, (recognizer, method) in SOURCES.items():
            started = time.perf_counter()
            identity_saliency(image, face, recognizer, method)
            seconds.setdefault(name, []).append(time.perf_counter() - started)
        reference = identity_saliency(image, face, "facenet", "gradient", SaliencyConfig(steps=16))
        ref_shares = [reference.per_recognizer["facenet"][r] for r in sorted(reference.per_recognizer["facenet"])]
        for steps in steps_list:
            started = time.perf_counter()
            result = identity_saliency(image, face, "facenet", "gradient", SaliencyConfig(steps=steps))
            key = f"facenet gradient, {steps} steps"
            seconds.setdefault(key, []).append(time.perf_counter() - started)
            shares = [result.per_recognizer["facenet"][r] for r in sorted(result.per_recognizer["facenet"])]
            correlation.setdefault(key, []).append(float(spearmanr(ref_shares, shares)[0]))
    return {
        "faces": len(prepared),
        "seconds_per_face": {
            k: {
                "median": round(float(np.median(v)), 4),
                "mean": round(float(np.mean(v)), 4),
                "p90": round(float(np.percentile(v, 90)), 4),
            }
            for k, v in seconds.items()
        },
        "spearman_vs_16_steps": {k: round(float(np.mean(v)), 4) for k, v in correlation.items()},
    }


def summarize(records: list[dict]) -> dict:
    good = [r for r in records if "curves" in r]
    orderings = list(good[0]["curves"])
    summary: dict = {}
    for measured in RECOGNIZERS:
        per_order = {}
        aucs = {}
        for order in orderings:
            curves = np.array([np.interp(GRID, r["curves"][order]["area"], r["curves"][order][measured]) for r in good])
            aucs[order] = curves.mean(axis=1)
            per_order[order] = {
                "auc": round(float(aucs[order].mean()), 4),
                "auc_ci95": round(float(1.96 * aucs[order].std(ddof=1) / np.sqrt(len(good))), 4),
                "at_10pct": round(float(np.interp(0.1, GRID, curves.mean(0))), 4),
                "at_25pct": round(float(np.interp(0.25, GRID, curves.mean(0))), 4),
                "at_50pct": round(float(np.interp(0.5, GRID, curves.mean(0))), 4),
                "mean_curve": curves.mean(0).round(4).tolist(),
            }
        for order in orderings:
            if order in ("random", "canonical"):
                continue
            for other in ("random", "canonical"):
                gain = aucs[order] - aucs[other]
                per_order[order][f"beats_{other}"] = round(float(np.mean(gain > 0)), 4)
                # paired: each face's own AUC difference, so face-to-face spread does not hide the gain
                per_order[order][f"gain_over_{other}"] = round(float(gain.mean()), 4)
                per_order[order][f"gain_over_{other}_ci95"] = round(
                    float(1.96 * gain.std(ddof=1) / np.sqrt(len(good))), 4
                )
        summary[measured] = per_order
    return summary


def plot(summary: dict, faces: int, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    styles = {"random": ("gray", "--"), "canonical": ("black", ":")}
    colours = iter(["tab:red", "tab:orange", "tab:blue", "tab:purple", "tab:green"])
    for axis_index, measured in enumerate(RECOGNIZERS):
        axis = figure.add_subplot(1, 2, axis_index + 1)
        for order, values in summary[measured].items():
            colour, line = styles.get(order, (None, "-"))
            label = order if order in styles else f"saliency: {order}"
            axis.plot(
                GRID * 100,
                values["mean_curve"],
                line,
                color=colour or next(colours),
                label=f"{label} (AUC {values['auc']:.3f})",
                linewidth=1.8,
            )
        colours = iter(["tab:red", "tab:orange", "tab:blue", "tab:purple", "tab:green"])
        axis.set_xlabel("face area neutralised (%)")
        axis.set_ylabel(f"{measured} distance from the unchanged face")
        axis.set_title(f"measured with {measured}", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.suptitle(
        f"Deletion curves on {faces} OMI faces: regions neutralised in each order (higher = faster)", fontsize=10
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def print_tables(result: dict) -> None:
    summary, faces = result["deletion"], result["faces_measured"]
    print(
        f"\nDeletion curves on {faces} faces ({result['face_range']}); AUC = mean distance over 0-100% of the "
        "face area neutralised (higher = identity moves faster)\n"
    )
    for measured in RECOGNIZERS:
        print(f"measured with {measured}:\n")
        print(
            "| order | AUC (±95% CI) | at 10% area | at 25% | at 50% | beats random | beats canonical | "
            "AUC gain over canonical (paired, ±95% CI) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for order, v in summary[measured].items():
            beats = (
                f"{v['beats_random']:.0%} | {v['beats_canonical']:.0%} | "
                f"{v['gain_over_canonical']:+.4f} ± {v['gain_over_canonical_ci95']:.4f}"
                if "beats_random" in v
                else "— | — | —"
            )
            print(
                f"| {order} | {v['auc']:.3f} ± {v['auc_ci95']:.3f} | {v['at_10pct']:.3f} | {v['at_25pct']:.3f} | "
                f"{v['at_50pct']:.3f} | {beats} |"
            )
        print()
    speed = result["timing"]
    print(f"Speed ({speed['faces']} faces, this process alone, face already detected and meshed):\n")
    print("| method | median s/face | mean | p90 | Spearman vs 16 steps |\n|---|---|---|---|---|")
    for name, v in speed["seconds_per_face"].items():
        rho = speed["spearman_vs_16_steps"].get(name)
        print(
            f"| {name} | {v['median']:.3f} | {v['mean']:.3f} | {v['p90']:.3f} | {'' if rho is None else f'{rho:.3f}'} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default="1-200", help="OMI face numbers, e.g. 1-200")
    parser.add_argument("--timing-faces", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--timing-only", action="store_true", help="only redo the speed figures in --output")
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="only recompute the deletion summary, tables and plot from the curves in --output",
    )
    args = parser.parse_args()
    if not OMI_FACES.is_dir():
        print(f"skipped: {OMI_FACES} not found (the OMI faces are only on the development machines)")
        return 0
    from lookalike.io import write_text_atomic
    from lookalike.parallel import run_tasks

    first, last = (int(v) for v in args.faces.split("-"))
    paths = [p for p in sorted(OMI_FACES.iterdir()) if p.stem.isdigit() and first <= int(p.stem) <= last]
    if args.summary_only:
        # Recompute the deletion summary and plot from the per-face curves already in --output.
        result = json.loads(args.output.read_text())
        result["deletion"] = summarize(result["per_face"])
        write_text_atomic(args.output, json.dumps(result, indent=1))
        plot(result["deletion"], result["faces_measured"], args.plot)
        print_tables(result)
        return 0
    if args.timing_only:
        # Redo only the speed figures (e.g. when the first run shared the CPU) into the existing results.
        result = json.loads(args.output.read_text())
        result["timing"] = timing(paths[: args.timing_faces], steps_list=(1, 2, 4, 8))
        write_text_atomic(args.output, json.dumps(result, indent=1))
        print_tables(result)
        return 0
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"  deletion curves: {done}/{total} faces, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    records = run_tasks(
        [(face_curves, (p, i, args.seed)) for i, p in enumerate(paths)],
        paths,
        jobs=args.jobs,
        progress=progress,
        on_failure=lambda i, message: {"file": paths[i].name, "error": message},
    )
    deletion_seconds = time.perf_counter() - started
    started = time.perf_counter()
    speed = timing(paths[: args.timing_faces], steps_list=(1, 2, 4, 8))
    print(f"timing pass: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    failures = [r for r in records if "error" in r]
    result = {
        "data": "OMI synthetic faces (CC BY-NC-SA 4.0), largest face of each image",
        "face_range": args.faces,
        "faces_measured": len(records) - len(failures),
        "failures": failures,
        "statuses": {
            s: sum(1 for r in records if "statuses" in r and r["statuses"].get(next(iter(SOURCES))) == s)
            for s in ("computed", "degraded")
        },
        "deletion": summarize(records),
        "timing": speed,
        "deletion_seconds": round(deletion_seconds, 1),
        "jobs": args.jobs,
        "per_face": records,
    }
    write_text_atomic(args.output, json.dumps(result, indent=1))
    plot(result["deletion"], result["faces_measured"], args.plot)
    print_tables(result)
    print(
        f"\nfailures: {len(failures)}; deletion pass {result['deletion_seconds']:.0f} s with {args.jobs} workers; "
        f"results in {args.output}, plot in {args.plot}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
