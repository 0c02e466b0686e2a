"""The README's lookalike figures on hold-out OMI faces, through the commands a user runs.

1. ``lookalike anonymize HOLDOUT -o OUT/<variant> --method lookalike --steer S --report OUT/<variant>.json``
   for the default (steering on every recognizer shipped) on all hold-out faces, and for each
   leave-one-out set (steering on all recognizers but one) on the first ``--loo`` of them;
2. ``benchmarks/bench_attack.py``: every recognizer under every attacker view, match and top-1 against
   the gallery of all hold-out originals;
3. ``lookalike evaluate``: detection, perceptual similarity, pose and expression, perceived attributes
   (ethnicity moved), SSIM outside the faces;
4. from the run's report: fallbacks by kind, relaxed donor matches, seconds per face.

Hold-out: faces 0601-0804 were never used for anything the method ships or was tuned on (donor bank and
reference crowd: 0001-0600; perception head: 0001-0600; thresholds: 0001-0600).

    python benchmarks/bench_holdout.py [--limit N] [--loo 60] [--held mobileface] [--out /tmp/lookalike-holdout]

Writes ``benchmarks/results/holdout_omi.json`` (``holdout_omi_<level>.json`` for another ``--privacy``;
not with ``--no-save``) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OMI_FACES = REPO.parent / "shared" / "data" / "omi" / "faces"
HOLDOUT = range(601, 805)
RESULTS = REPO / "benchmarks" / "results" / "holdout_omi.json"  # at the default level; others: holdout_omi_<level>.json
BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N hold-out faces for the default run")
    parser.add_argument("--loo", type=int, default=60, help="hold-out faces for each leave-one-out run (0: none)")
    parser.add_argument(
        "--held", default=None, help="leave-one-out runs only for these recognizers (comma-separated; default: each)"
    )
    parser.add_argument("--privacy", default="medium")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lookalike-holdout"))
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if not OMI_FACES.is_dir():
        print(f"skipped: {OMI_FACES} not found (the OMI faces are only on the development machines)")
        return 0
    from lookalike.identity import available_recognizers

    recognizers = available_recognizers()
    gallery = args.out / "holdout"
    numbers = list(HOLDOUT)
    _links(gallery, numbers)
    runs = [("all", numbers[: args.limit])]
    if args.loo and len(recognizers) > 1:
        held_out = recognizers if args.held is None else tuple(args.held.split(","))
        runs += [("+".join(n for n in recognizers if n != held), numbers[: args.loo]) for held in held_out]
    results = {"privacy": args.privacy, "recognizers": list(recognizers), "runs": {}}
    for steer, faces in runs:
        label = f"steer {steer}"
        inputs = args.out / f"in-{len(faces)}"
        _links(inputs, faces)
        output = args.out / steer
        report = args.out / f"{steer}.json"
        _run(
            [
                BIN / "lookalike",
                "anonymize",
                inputs,
                "-o",
                output,
                "--method",
                "lookalike",
                "--privacy",
                args.privacy,
                "--steer",
                steer,
                "--report",
                report,
                "--overwrite",
            ]
        )
        attack_json = args.out / f"{steer}-attack.json"
        _run([sys.executable, REPO / "benchmarks" / "bench_attack.py", gallery, output, "--json", attack_json])
        evaluation = args.out / f"{steer}-evaluate"
        _run(
            [
                BIN / "lookalike",
                "evaluate",
                "--original",
                inputs,
                "--anonymized",
                output,
                "-o",
                evaluation,
                "--steered-by",
                ",".join(steer.split("+")) if steer != "all" else ",".join(recognizers),
                "--jobs",
                "1",
            ]
        )
        results["runs"][label] = {
            "faces": len(faces),
            "attack": json.loads(attack_json.read_text()),
            "evaluate": _utility(evaluation / "report.json"),
            "run": _from_report(json.loads(report.read_text())),
        }
        _print(label, results["runs"][label])
    results_file = RESULTS if args.privacy == "medium" else RESULTS.with_name(f"holdout_omi_{args.privacy}.json")
    if not args.no_save:
        if results_file.is_file():  # runs not repeated this time keep their last figures
            earlier = json.loads(results_file.read_text())
            if earlier.get("privacy") == results["privacy"]:
                results["runs"] = {**earlier.get("runs", {}), **results["runs"]}
        results_file.write_text(json.dumps(results, indent=1))
        print(f"written: {results_file}")
    return 0


def _links(folder: Path, numbers) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        link = folder / f"{n:04d}.jpg"
        if not link.exists():
            link.symlink_to(OMI_FACES / f"{n:04d}.jpg")


def _run(command) -> None:
    print("$", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, stdout=subprocess.DEVNULL)


def _from_report(report: dict) -> dict:
    faces = [face for entry in report["files"] for face in entry["faces"]]
    records = [face.get("lookalike") or {} for face in faces]
    kinds: dict[str, int] = {}
    for record in records:
        fallback = record.get("fallback")
        kind = "none" if not fallback else fallback.split(" (")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    seconds = [r["seconds"] for r in records if r.get("seconds") is not None]
    relaxed = [r.get("donor_match") for r in records if r.get("donor_match") not in (None, "strict")]
    return {
        "faces": len(faces),
        "fallbacks": kinds,
        "fallback_rate": round(sum(v for k, v in kinds.items() if k != "none") / max(len(faces), 1), 4),
        "relaxed_donor_matches": len(relaxed),
        "ethnicity_gap_over_25": sum((r.get("donor_gaps") or {}).get("ethnicity", 0) > 25 for r in records),
        "seconds_median": round(statistics.median(seconds), 3) if seconds else None,
        "seconds_mean": round(statistics.mean(seconds), 3) if seconds else None,
    }


def _utility(path: Path) -> dict:
    report = json.loads(path.read_text())
    variant = report["variants"][0] if "variants" in report else report
    return {"utility": variant.get("utility"), "protection": variant.get("protection")}


def _print(label: str, run: dict) -> None:
    attack = run["attack"]
    print(f"\n## {label}: {run['faces']} faces; gallery {attack['gallery']} (chance {attack['chance_top1']}%)")
    print(
        f"fallbacks: {run['run']['fallbacks']} (rate {run['run']['fallback_rate']}); relaxed donor matches: "
        f"{run['run']['relaxed_donor_matches']}; seconds per face median {run['run']['seconds_median']}"
    )
    for name, row in attack["recognizers"].items():
        views = ", ".join(f"{v} {c['match']}/{c['top1']}" for v, c in row["views"].items())
        print(
            f"  {name}: match/top-1 % by view: {views}; worst (any view) {row['any_view_match']}/{row['any_view_top1']}"
        )


if __name__ == "__main__":
    sys.exit(main())
