"""Calibrate and validate the ArcFace-aligned recognizers (mobilefacenet, mobileface) on OMI faces.

For every recognizer (default: all of ``lookalike.identity.arcface``'s TF.js ports that are registered):

- threshold: the cosine distance at which 0.1% of impostor pairs are accepted (all pairs of distinct OMI
  faces 1..N; every OMI portrait is a different synthetic person);
- genuine acceptance at that threshold: each face against itself after a horizontal flip, a random
  crop/shift of a few percent, brightness x0.8 and x1.2, and JPEG quality 40 (as
  benchmarks/calibrate_facenet.py);
- rank-1 retrieval: each variant searched among the N originals, how often its own original is nearest;
- independence: Pearson and Spearman correlation of its impostor-pair distances with dlib's and FaceNet's
  (``--with-baselines`` also scores dlib and FaceNet on the variants, for comparison).

Faces are found by ``lookalike.detect`` (landmarks off; the recognizers align on its five keypoints) once
per original; the keypoints of flipped / cropped copies are mapped through the known transform.
``--normalisations`` compares candidate input scalings of each network on genuine/impostor separation
(d'), ``--box-fit`` measures where the detector's box lands in the aligned crop (the box fallback).

Usage::

    .venv/bin/python benchmarks/calibrate_recognizers.py [--n 600] [--with-baselines] [--normalisations] [--box-fit]
    .venv/bin/python benchmarks/calibrate_recognizers.py --recognizers mobilefacenet --normalisations \
        --out benchmarks/results/mobilefacenet_rejected.json      # the port that failed validation

Writes ``benchmarks/results/recognizers_threshold.json`` (or ``--out``); prints a skip message and exits 0 without OMI
data. Detections are cached in ``--cache`` (default: the system temp folder), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OMI = ROOT / ".." / "shared" / "data" / "omi" / "faces"
RESULT = ROOT / "benchmarks" / "results" / "recognizers_threshold.json"
FMR = 1e-3

from calibrate_facenet import variants  # noqa: E402  (same genuine variants as FaceNet's calibration)

#: Candidate input normalisations (scale, offset) on RGB 0-255, for --normalisations.
NORMALISATIONS = {
    "(x-127.5)/128": (1 / 128, -127.5 / 128),
    "x/255": (1 / 255, 0.0),
    "x": (1.0, 0.0),
    "BGR, the recognizer's own scaling": "bgr",
}


def load_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def detections(files: list[Path], cache: Path):
    """One ``Face`` per file (largest found), from the cache when it covers these files."""
    from lookalike import detect
    from lookalike.types import Face

    key = [p.name for p in files]
    if cache.is_file():
        d = np.load(cache)
        if list(d["names"])[: len(key)] == key:  # a cache of more faces serves fewer
            return [
                None if not np.isfinite(b).all() else Face(box=b, score=float(s), keypoints=k)
                for b, s, k in list(zip(d["boxes"], d["scores"], d["keypoints"]))[: len(key)]
            ]
    faces = []
    for i, p in enumerate(files):
        found = detect(load_rgb(p), landmarks=False)
        faces.append(found[0] if found else None)
        if (i + 1) % 100 == 0:
            print(f"  detected {i + 1}/{len(files)}", flush=True)
    nan = np.full(4, np.nan, np.float32)
    np.savez(
        cache,
        names=np.array(key),
        boxes=np.stack([f.box if f else nan for f in faces]),
        scores=np.array([f.score if f else 0.0 for f in faces]),
        keypoints=np.stack([f.keypoints if f else np.full((5, 2), np.nan, np.float32) for f in faces]),
    )
    return faces


def embed_all(rec, samples) -> tuple[np.ndarray, float]:
    """Embeddings of (image, face) samples, and seconds per face for align + embed."""
    t0 = time.perf_counter()
    crops = np.stack([rec.align(img, face) for img, face in samples])
    emb = rec.embed_aligned(crops)
    return emb, (time.perf_counter() - t0) / len(samples)


def evaluate(rec, emb: np.ndarray, kinds: list[str], n: int) -> dict:
    """emb: (n * (1 + len(kinds)), d) as original, variants... per face."""
    e = emb.reshape(n, 1 + len(kinds), -1)
    orig = e[:, 0]
    d = np.asarray(rec.distance(orig[:, None], orig[None]), np.float64)
    imp = d[np.triu_indices(n, 1)]
    thr = float(np.quantile(imp, FMR))
    gen = {k: np.asarray(rec.distance(orig, e[:, j + 1]), np.float64) for j, k in enumerate(kinds)}
    allg = np.concatenate(list(gen.values()))
    rank1 = {}
    for j, k in enumerate(kinds):
        dv = np.asarray(rec.distance(e[:, j + 1][:, None], orig[None]), np.float64)  # (variant, original)
        rank1[k] = float((dv.argmin(1) == np.arange(n)).mean())
    rank1["all"] = float(np.mean([rank1[k] for k in kinds]))
    return {
        "threshold": thr,
        "impostor_pairs": int(imp.size),
        "impostor_distance": {"min": float(imp.min()), "q0.1%": thr, "median": float(np.median(imp))},
        "false_match_rate": float((imp <= thr).mean()),
        "genuine_pairs": int(allg.size),
        "genuine_acceptance": {k: float((g <= thr).mean()) for k, g in gen.items()}
        | {"all": float((allg <= thr).mean())},
        "genuine_distance_max": {k: float(g.max()) for k, g in gen.items()},
        "genuine_distance_mean": float(allg.mean()),
        "d_prime": float((imp.mean() - allg.mean()) / np.sqrt((imp.var() + allg.var()) / 2)),
        "rank1_retrieval": rank1,
    }


def impostor_distances(rec, orig: np.ndarray) -> np.ndarray:
    n = len(orig)
    return np.asarray(rec.distance(orig[:, None], orig[None]), np.float64)[np.triu_indices(n, 1)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


#: Ports that failed validation and are not registered (weights not shipped; make them with
#: scripts/make_human_recognizers.py --models NAME), measured here to document why.
UNREGISTERED = {"mobilefacenet": ("lookalike.identity.mobilefacenet", "MobileFaceNetRecognizer")}


def get_recognizer(name: str):
    from lookalike.identity import get_recognizer as registered

    if name in UNREGISTERED:
        module, cls = UNREGISTERED[name]
        return _unregistered(module, cls)
    return registered(name)


_INSTANCES: dict = {}


def _unregistered(module: str, cls: str):
    import importlib

    if cls not in _INSTANCES:
        _INSTANCES[cls] = getattr(importlib.import_module(module), cls)()
    return _INSTANCES[cls]


def main() -> int:
    from lookalike.identity import available_recognizers

    ports = [n for n in available_recognizers() if n not in ("dlib", "facenet")] + list(UNREGISTERED)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="use OMI faces 1..N")
    ap.add_argument("--recognizers", nargs="+", default=[p for p in ports if p not in UNREGISTERED], choices=ports)
    ap.add_argument("--with-baselines", action="store_true", help="also calibrate dlib and FaceNet on the same pairs")
    ap.add_argument("--normalisations", action="store_true", help="compare candidate input normalisations (d')")
    ap.add_argument("--box-fit", action="store_true", help="measure the detector box in the aligned crop")
    ap.add_argument("--out", type=Path, default=RESULT, help="where to write the JSON results")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lookalike_omi_detections.npz")
    args = ap.parse_args()
    files = sorted(OMI.glob("*.jpg"))[: args.n] if OMI.is_dir() else []
    if len(files) < 10:
        print(f"SKIP: OMI faces not found in {OMI.resolve()} - nothing calibrated.")
        return 0

    t0 = time.time()
    faces = detections(files, args.cache)
    missing = [p.name for p, f in zip(files, faces) if f is None]
    print(f"{len(files)} OMI faces, detection {time.time() - t0:.0f}s, {len(missing)} without a face: {missing}")
    keep = [(p, f) for p, f in zip(files, faces) if f is not None]
    rng = np.random.default_rng(0)
    samples, kinds = [], []
    for p, face in keep:
        img = load_rgb(p)
        var = variants(img, face, rng)
        kinds = [k for k, _, _ in var]
        samples += [(img, face)] + [(im, f) for _, im, f in var]
    n = len(keep)

    if args.box_fit:
        from lookalike.identity.arcface import alignment_matrix

        boxes = []
        for _, face in keep:
            M = alignment_matrix(face)
            corners = np.array([face.box[:2], face.box[2:]], np.float64) @ M[:, :2].T + M[:, 2]
            boxes.append(corners.reshape(-1))
        boxes = np.array(boxes)
        print(
            "detector box in the 112 crop (x0, y0, x1, y1): mean", boxes.mean(0).round(1), "sd", boxes.std(0).round(1)
        )

    results = {
        "faces": n,
        "omi_files": f"{files[0].name}..{files[-1].name}",
        "no_face": missing,
        "target_fmr": FMR,
        "detector": "lookalike.detect(landmarks=False)",
        "variants": kinds,
        "distance": "cosine (1 - cos)",
        "recognizers": {},
    }
    originals: dict[str, np.ndarray] = {}
    names = list(args.recognizers) + (["dlib", "facenet"] if args.with_baselines else [])
    for name in names:
        rec = get_recognizer(name)
        emb, sec = embed_all(rec, samples)
        res = evaluate(rec, emb, kinds, n) | {"seconds_per_face_align_embed": sec}
        if name not in ("dlib", "facenet"):
            res["threshold_rounded"] = round(res["threshold"], 4)
        originals[name] = emb.reshape(n, 1 + len(kinds), -1)[:, 0]
        results["recognizers"][name] = res
        g = res["genuine_acceptance"]
        print(
            f"{name}: threshold {res['threshold']:.4f} (FMR {res['false_match_rate']:.2%}), genuine acceptance "
            f"{g['all']:.1%} { ({k: round(v, 3) for k, v in g.items() if k != 'all'}) }, d' {res['d_prime']:.2f}, "
            f"rank-1 {res['rank1_retrieval']['all']:.1%}, {sec * 1000:.0f} ms/face",
            flush=True,
        )
        if args.normalisations and name not in ("dlib", "facenet"):
            crops = np.stack([rec.align(img, face) for img, face in samples])
            table = {}
            for label, norm in NORMALISATIONS.items():
                old = rec.input_scale, rec.input_offset
                c = crops[..., ::-1].copy() if norm == "bgr" else crops
                if norm != "bgr":
                    rec.input_scale, rec.input_offset = norm
                try:
                    r = evaluate(rec, rec.embed_aligned(c), kinds, n)
                finally:
                    rec.input_scale, rec.input_offset = old
                table[label] = {
                    "d_prime": r["d_prime"],
                    "threshold": r["threshold"],
                    "genuine_acceptance": r["genuine_acceptance"]["all"],
                    "rank1": r["rank1_retrieval"]["all"],
                }
                print(
                    f"  input {label:<20} d' {r['d_prime']:.2f}  genuine acceptance "
                    f"{r['genuine_acceptance']['all']:.1%}"
                    f"  rank-1 {r['rank1_retrieval']['all']:.1%}",
                    flush=True,
                )
            res["normalisations"] = table

    # Independence: correlation of impostor-pair distances with dlib's and FaceNet's on the same originals.
    for base in ("dlib", "facenet"):
        if base not in originals:
            rec = get_recognizer(base)
            originals[base] = embed_all(rec, [(load_rgb(p), f) for p, f in keep])[0]
    dist = {name: impostor_distances(get_recognizer(name), e) for name, e in originals.items()}
    results["correlation_impostor_distances"] = {
        f"{a} vs {b}": {"pearson": float(np.corrcoef(dist[a], dist[b])[0, 1]), "spearman": spearman(dist[a], dist[b])}
        for i, a in enumerate(dist)
        for b in list(dist)[i + 1 :]
    }
    for k, v in results["correlation_impostor_distances"].items():
        print(f"correlation {k}: pearson {v['pearson']:.3f}, spearman {v['spearman']:.3f}")
    results["command"] = "python benchmarks/calibrate_recognizers.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
