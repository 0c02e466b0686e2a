"""Benchmark the CenterFace detector (and optionally deface itself) on OMI portraits and composed canvases.

Usage::

    .venv/bin/python benchmarks/bench_detection.py
    .venv/bin/python benchmarks/bench_detection.py --deface-python /tmp/deface-venv/bin/python

The deface comparison runs deface 1.5.0's ``CenterFace`` class in its own interpreter (it needs numpy 2 and
its own OpenCV, so it lives in a throwaway venv outside the repo), at its defaults: full resolution,
threshold 0.2. Results are printed and written to ``benchmarks/results/detection.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import imageio.v2 as iio
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lookalike.detection import CenterFaceDetector, DetectorConfig  # noqa: E402

OMI_DIR = ROOT / ".." / "shared" / "data" / "omi" / "faces"
BUCKETS = [(0, 28), (28, 40), (40, 64), (64, 128), (128, 10**9)]
CANVASES = [  # (name, height, width, background, face widths)
    ("coffee-1280x960", 960, 1280, "coffee", [24, 24, 28, 32, 40, 48, 64, 96, 128, 160]),
    (
        "chelsea-3000x2000",
        2000,
        3000,
        "chelsea",
        [24] * 6 + [28, 32, 32, 40, 48, 48, 64, 80, 96, 128, 160, 200, 250, 300],
    ),
    (
        "mixed-4000x3000",
        3000,
        4000,
        "mixed",
        [24] * 8 + [28] * 4 + [32] * 4 + [40, 48, 64, 64, 96, 128, 192, 256, 300, 300],
    ),
]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9))


def background(kind: str, h: int, w: int) -> np.ndarray:
    tiles = {
        "coffee": [skimage.data.coffee()],
        "chelsea": [skimage.data.chelsea()],
        "mixed": [skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()],
    }[kind]
    out = np.full((h, w, 3), 110, np.uint8)
    y = 0
    i = 0
    while y < h:  # rows of tiles alternating the sources: busy texture everywhere
        x = 0
        t = tiles[i % len(tiles)]
        while x < w:
            hh, ww = min(t.shape[0], h - y), min(t.shape[1], w - x)
            out[y : y + hh, x : x + ww] = t[:hh, :ww]
            x += t.shape[1]
        y += t.shape[0]
        i += 1
    return out


def face_sources(omi: list[Path], det: CenterFaceDetector) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, face box) pairs to paste: OMI portraits with a single clear face, else the astronaut."""
    out = []
    for p in omi[:40]:
        img = iio.imread(p)[:, :, :3]
        faces = det(img)
        if len(faces) == 1:
            out.append((img, faces[0].box))
        if len(out) >= 12:
            break
    if not out:
        img = skimage.data.astronaut()
        out.append((img[28:208, 150:302].copy(), np.array([32, 30, 120, 150], np.float32)))
    return out


def compose(name: str, h: int, w: int, bg: str, sizes: list[int], sources: list, seed: int) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    canvas = background(bg, h, w)
    truth: list[tuple[int, np.ndarray]] = []
    order = list(rng.permutation(len(sizes)))
    x, y, row_h = 15, 15, 0
    for j, i in enumerate(order):
        size = sizes[i]
        src, box = sources[j % len(sources)]
        f = size / float(box[2] - box[0])
        # Paste the face with a margin of half a face around it, not the whole portrait, so faces can be dense.
        m = 0.5 * (box[2] - box[0])
        x0, y0 = int(max(0, box[0] - m)), int(max(0, box[1] - m))
        x1, y1 = int(min(src.shape[1], box[2] + m)), int(min(src.shape[0], box[3] + m))
        crop = src[y0:y1, x0:x1]
        c = cv2.resize(
            crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))), interpolation=cv2.INTER_AREA
        )
        if x + c.shape[1] > w - 15:
            x, y, row_h = 15, y + row_h + int(rng.integers(10, 60)), 0
        if y + c.shape[0] > h - 15:
            raise RuntimeError(f"canvas {name} too small for its faces")
        canvas[y : y + c.shape[0], x : x + c.shape[1]] = c
        truth.append(
            (
                size,
                np.array(
                    [x + (box[0] - x0) * f, y + (box[1] - y0) * f, x + (box[2] - x0) * f, y + (box[3] - y0) * f],
                    np.float32,
                ),
            )
        )
        x += c.shape[1] + int(rng.integers(10, 80))
        row_h = max(row_h, c.shape[0])
    return canvas, truth


def score_canvas(boxes: list[np.ndarray], truth: list) -> dict:
    hit = [any(iou(b, t) >= 0.4 for b in boxes) for _, t in truth]
    fp = [b for b in boxes if all(iou(b, t) < 0.2 for _, t in truth)]
    per: dict[str, list[int]] = {}
    for (size, _), ok in zip(truth, hit):
        lo, hi = next(bk for bk in BUCKETS if bk[0] <= size < bk[1])
        key = f"{lo}-{hi - 1}px" if hi < 10**8 else f">={lo}px"
        per.setdefault(key, [0, 0])
        per[key][0] += int(ok)
        per[key][1] += 1
    return {
        "found": int(sum(hit)),
        "faces": len(truth),
        "false_pos": len(fp),
        "missed_sizes": sorted(s for (s, _), ok in zip(truth, hit) if not ok),
        "per_bucket": per,
    }


DEFACE_HELPER = textwrap.dedent("""
    import json, sys, time, io, contextlib
    import imageio.v2 as iio
    from deface.centerface import CenterFace
    paths, backend, thr = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    with contextlib.redirect_stdout(io.StringIO()):
        cf = CenterFace(in_shape=None, backend=backend)
    cf(iio.imread(paths[0]), threshold=thr)  # warm-up, like our side
    out = []
    for p in paths:
        img = iio.imread(p)
        t = time.perf_counter()
        dets, _ = cf(img, threshold=thr)
        out.append({"path": p, "sec": time.perf_counter() - t, "boxes": dets[:, :4].tolist()})
    print(json.dumps({"backend": cf.backend, "results": out}))
""")


def run_deface(python: str, paths: list[str], backend: str, thr: float = 0.2) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(DEFACE_HELPER)
    try:
        # Pass the paths in a file-free way; thousands of short names fit in argv.
        r = subprocess.run(
            [python, f.name, json.dumps(paths), backend, str(thr)], capture_output=True, text=True, check=True
        )
    finally:
        os.unlink(f.name)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--omi-dir", type=Path, default=OMI_DIR)
    ap.add_argument("--deface-python", help="python of a venv with deface==1.5.0 installed")
    ap.add_argument(
        "--deface-backend",
        default="opencv",
        choices=["opencv", "onnxrt", "auto"],
        help="deface's backend; plain `pip install deface` has only opencv",
    )
    ap.add_argument("--threshold", type=float, default=None, help="override our score threshold")
    ap.add_argument("--limit", type=int, default=0, help="only the first N OMI images (quick runs)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "detection.json")
    args = ap.parse_args()

    cfg = DetectorConfig() if args.threshold is None else DetectorConfig(score_threshold=args.threshold)
    det = CenterFaceDetector(cfg)
    det(skimage.data.astronaut())  # load the session outside the timings
    report: dict = {
        "config": asdict(cfg),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
    }

    omi_dir = args.omi_dir.resolve()
    omi = sorted(omi_dir.glob("*.jpg")) + sorted(omi_dir.glob("*.png")) if omi_dir.is_dir() else []
    if args.limit:
        omi = omi[: args.limit]
    if not omi:
        print(f"SKIP: no OMI faces at {omi_dir}; nothing to benchmark.")
        sys.exit(0)

    # --- OMI: one face per image expected ---
    counts: dict[str, int] = {}
    secs = []
    for p in omi:
        img = iio.imread(p)
        t = time.perf_counter()
        faces = det(img)
        secs.append(time.perf_counter() - t)
        counts[p.name] = len(faces)
    report["omi"] = {
        "images": len(omi),
        "one": sum(c == 1 for c in counts.values()),
        "zero": sorted(n for n, c in counts.items() if c == 0),
        "many": {n: c for n, c in counts.items() if c > 1},
        "sec_per_image": float(np.mean(secs)),
        "image_size": list(iio.imread(omi[0]).shape),
    }

    # --- composed canvases ---
    sources = face_sources(omi, det)
    tmp = Path(tempfile.mkdtemp(prefix="bench_det_"))
    canvases = []
    for k, (name, h, w, bg, sizes) in enumerate(CANVASES):
        canvas, truth = compose(name, h, w, bg, sizes, sources, seed=k)
        path = tmp / f"{name}.png"
        iio.imwrite(path, canvas)
        t = time.perf_counter()
        faces = det(canvas)
        sec = time.perf_counter() - t
        res = score_canvas([f.box for f in faces], truth)
        res.update(name=name, sec=sec, sec_per_face=sec / len(truth), path=str(path))
        canvases.append((res, truth))
    report["canvases"] = [r for r, _ in canvases]

    # --- rotations: what the 4-way search costs on the OMI images and the first canvas ---
    det4 = det.with_config(rotations=(0, 90, 180, 270))
    sub = omi[:50]
    rot_counts, rsecs = [], []
    for p in sub:
        img = iio.imread(p)
        t = time.perf_counter()
        rot_counts.append(len(det4(img)))
        rsecs.append(time.perf_counter() - t)
    turned = [np.rot90(iio.imread(p), k) for k, p in zip([1, 2, 3] * 10, sub[:30])]
    found_turned = sum(len(det4(im)) == 1 for im in turned)
    found_turned_upright_only = sum(len(det(im)) == 1 for im in turned)
    report["rotations"] = {
        "images": len(sub),
        "one": sum(c == 1 for c in rot_counts),
        "many": sum(c > 1 for c in rot_counts),
        "sec_per_image": float(np.mean(rsecs)),
        "turned_images": len(turned),
        "turned_found_4way": found_turned,
        "turned_found_upright_only": found_turned_upright_only,
    }

    # --- deface, same images ---
    if args.deface_python:
        d_omi = run_deface(args.deface_python, [str(p) for p in omi], args.deface_backend)
        dc = {Path(r["path"]).name: len(r["boxes"]) for r in d_omi["results"]}
        report["deface_omi"] = {
            "backend": d_omi["backend"],
            "threshold": 0.2,
            "one": sum(c == 1 for c in dc.values()),
            "zero": sorted(n for n, c in dc.items() if c == 0),
            "many": {n: c for n, c in dc.items() if c > 1},
            "sec_per_image": float(np.mean([r["sec"] for r in d_omi["results"]])),
        }
        d_can = run_deface(args.deface_python, [r["path"] for r, _ in canvases], args.deface_backend)
        report["deface_canvases"] = []
        for (res, truth), dr in zip(canvases, d_can["results"]):
            s = score_canvas([np.array(b) for b in dr["boxes"]], truth)
            s.update(name=res["name"], sec=dr["sec"], sec_per_face=dr["sec"] / len(truth))
            report["deface_canvases"].append(s)
    else:
        print("deface comparison skipped (pass --deface-python /tmp/deface-venv/bin/python to run it)\n")

    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out}")


def print_table(r: dict) -> None:
    o = r["omi"]
    thr = r["config"]["score_threshold"]
    print(f"OMI portraits ({o['images']} images {o['image_size']}), ours thr={thr}")
    rows = [("ours", o)] + (
        [(f"deface ({r['deface_omi']['backend']}, thr 0.2)", r["deface_omi"])] if "deface_omi" in r else []
    )
    print(f"  {'detector':28s} {'one':>5s} {'zero':>5s} {'>1':>5s} {'s/img':>7s}")
    for name, x in rows:
        print(f"  {name:28s} {x['one']:5d} {len(x['zero']):5d} {len(x['many']):5d} {x['sec_per_image']:7.3f}")
        if x["zero"]:
            print(f"    zero faces: {', '.join(x['zero'][:40])}{' ...' if len(x['zero']) > 40 else ''}")
        if x["many"]:
            many = ", ".join(f"{n}:{c}" for n, c in list(x["many"].items())[:40])
            print(f"    >1 faces:   {many}{' ...' if len(x['many']) > 40 else ''}")
    print("\nComposed canvases (recall per face-width bucket, false positives, seconds)")
    keys = [f"{lo}-{hi - 1}px" if hi < 10**8 else f">={lo}px" for lo, hi in BUCKETS]
    print(
        f"  {'canvas':20s} {'detector':8s} "
        + " ".join(f"{k:>9s}" for k in keys)
        + f" {'recall':>7s} {'FP':>4s} {'sec':>7s} {'s/face':>7s}"
    )
    sides = [("ours", r["canvases"])] + ([("deface", r["deface_canvases"])] if "deface_canvases" in r else [])
    for i in range(len(r["canvases"])):
        for name, lst in sides:
            c = lst[i]
            cells = " ".join(
                f"{c['per_bucket'][k][0]:>4d}/{c['per_bucket'][k][1]:<4d}" if k in c["per_bucket"] else f"{'-':>9s}"
                for k in keys
            )
            print(
                f"  {c['name']:20s} {name:8s} {cells} {c['found']:3d}/{c['faces']:<3d} {c['false_pos']:4d} "
                f"{c['sec']:7.2f} {c['sec_per_face']:7.3f}"
            )
    ro = r["rotations"]
    print(
        f"\nrotations=(0,90,180,270) on {ro['images']} OMI images: one face {ro['one']}, >1 {ro['many']}, "
        f"{ro['sec_per_image']:.3f} s/img (vs {o['sec_per_image']:.3f} upright only)"
    )
    print(
        f"  {ro['turned_images']} OMI images turned 90/180/270: found {ro['turned_found_4way']} with 4 rotations, "
        f"{ro['turned_found_upright_only']} upright only"
    )


if __name__ == "__main__":
    main()
