"""Protection as an attacker measures it: every recognizer, every way of cutting the face, top-1 and match.

For a folder of originals and a folder of their anonymized versions (paired by file name), each original's
main face is found once; then, for every recognizer the package ships and every attacker view, the
anonymized face (cut where the original face was: an attacker knows where faces were) is searched among
all originals cut the same way. Reported per recognizer and view: the match rate (distance within the
recognizer's own threshold) and the top-1 rate (the person's own original is the nearest of all; chance
is 1 / gallery), then the worst view per recognizer, and per face the worst over every recognizer and view.

Views: those of :data:`lookalike.identity.views.VIEWS` with the recognizer's landmarks found on the
anonymized image itself (the attacker has no original to align by), plus ``detector``: the attacker runs
the face detector on the anonymized image and embeds what it finds with the recognizer's own default
pipeline (the original's place when nothing is found there).

    python benchmarks/bench_attack.py ORIGINALS ANONYMIZED [--limit N] [--json OUT.json]

The gallery is every original in ORIGINALS (at least 200 for a meaningful top-1); ``--limit`` only
limits the probes.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from lookalike.evaluation.metrics import box_iou
from lookalike.faces import detect
from lookalike.identity import available_recognizers, get_recognizer
from lookalike.identity.views import VIEWS, view_embeddings
from lookalike.io import load_image

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("originals", type=Path)
    parser.add_argument("anonymized", type=Path)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--recognizers", default=",".join(available_recognizers()))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.originals.is_dir():
        print(f"skipped: {args.originals} not found")
        return 0
    names = [n for n in available_recognizers() if n in args.recognizers.split(",")]
    started = time.perf_counter()
    originals = sorted(p for p in args.originals.iterdir() if p.suffix.lower() in SUFFIXES)
    anonymized = {p.stem: p for p in args.anonymized.rglob("*") if p.suffix.lower() in SUFFIXES}
    view_names = [v.name for v in VIEWS] + ["detector"]

    kept, faces, gallery_arrays = _gallery(
        originals, names, args.originals / ".." / f"{args.originals.name}-gallery.pkl"
    )
    probes = [i for i, p in enumerate(kept) if p.stem in anonymized][: args.limit]

    results = {
        n: {
            "match": np.zeros((len(probes), len(view_names)), bool),
            "top1": np.zeros((len(probes), len(view_names)), bool),
            "rank": np.zeros((len(probes), len(view_names)), int),
        }
        for n in names
    }
    detected = 0
    for row, i in enumerate(probes):
        rgb = load_image(anonymized[kept[i].stem]).rgb
        face = faces[i]
        near = [f for f in detect(rgb) if box_iou(f.box, face.box) > 0.3]
        detected += bool(near)
        for name in names:
            recognizer = get_recognizer(name)
            probe = np.vstack(
                [view_embeddings(recognizer, rgb, face), recognizer.embed(rgb, near[0] if near else face)[None]]
            )
            for v in range(len(view_names)):
                distances = np.atleast_1d(recognizer.distance(gallery_arrays[name][:, v], probe[v][None]))
                own = distances[i]
                rank = int((distances < own).sum())
                results[name]["match"][row, v] = own <= recognizer.threshold
                results[name]["top1"][row, v] = rank == 0
                results[name]["rank"][row, v] = rank

    n = max(len(probes), 1)
    table = {}
    for name in names:
        per_view = {
            view: {
                "match": round(100 * results[name]["match"][:, v].mean(), 1) if probes else None,
                "top1": round(100 * results[name]["top1"][:, v].mean(), 1) if probes else None,
            }
            for v, view in enumerate(view_names)
        }
        table[name] = {
            "views": per_view,
            "any_view_match": round(100 * results[name]["match"].any(axis=1).mean(), 1) if probes else None,
            "any_view_top1": round(100 * results[name]["top1"].any(axis=1).mean(), 1) if probes else None,
        }
    anywhere = np.zeros(len(probes), bool)
    for name in names:
        anywhere |= results[name]["top1"].any(axis=1)
    report = {
        "originals": str(args.originals),
        "anonymized": str(args.anonymized),
        "gallery": len(kept),
        "probes": len(probes),
        "chance_top1": round(100 / max(len(kept), 1), 2),
        "detected_near_original": round(100 * detected / n, 1),
        "recognizers": table,
        "top1_by_any_recognizer_and_view": round(100 * anywhere.mean(), 1) if probes else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"gallery {len(kept)} originals (chance top-1 {report['chance_top1']}%), {len(probes)} anonymized faces; "
        f"detected where the face was: {report['detected_near_original']}%"
    )
    print("| recognizer | " + " | ".join(view_names) + " | any view |")
    print("|---|" + "---|" * (len(view_names) + 1))
    for name in names:
        cells = [f"{table[name]['views'][v]['match']} / {table[name]['views'][v]['top1']}" for v in view_names]
        print(
            f"| {name} match / top-1 % | "
            + " | ".join(cells)
            + f" | {table[name]['any_view_match']} / {table[name]['any_view_top1']} |"
        )
    print(f"top-1 by any recognizer under any view: {report['top1_by_any_recognizer_and_view']}%")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def _gallery(originals: list[Path], names: list[str], cache: Path):
    """The originals' main faces and their embeddings (G, views + detector, d) per recognizer, cached
    beside the originals' folder for the next run on the same files."""
    key = ([str(p) for p in originals], names, [v for v in VIEWS])
    if cache.is_file():
        with cache.open("rb") as handle:
            stored_key, value = pickle.load(handle)
        if stored_key == key:
            return value
    gallery = {n: [] for n in names}
    kept, faces = [], []
    for path in originals:
        rgb = load_image(path).rgb
        found = detect(rgb)
        if not found:
            continue
        kept.append(path)
        faces.append(found[0])
        for name in names:
            recognizer = get_recognizer(name)
            views = view_embeddings(recognizer, rgb, found[0])
            gallery[name].append(np.vstack([views, recognizer.embed(rgb, found[0])[None]]))
    value = (kept, faces, {n: np.stack(v) for n, v in gallery.items()})
    with cache.open("wb") as handle:
        pickle.dump((key, value), handle)
    return value


if __name__ == "__main__":
    sys.exit(main())
