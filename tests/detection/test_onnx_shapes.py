"""The shipped CenterFace model has symbolic shapes and runs at any size (no network needed)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.detection.centerface import MODEL_PATH
from lookalike.detection.onnx_shapes import CENTERFACE_DIMS, make_centerface_dynamic, read_io_dims, set_io_dims

pytestmark = pytest.mark.skipif(not MODEL_PATH.exists(), reason="run scripts/make_centerface_model.py first")


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return MODEL_PATH.read_bytes()


def test_declared_dims_are_symbolic(model_bytes: bytes) -> None:
    dims = read_io_dims(model_bytes)
    for name, want in CENTERFACE_DIMS.items():
        assert dims[name] == want
    assert isinstance(dims["input.1"][2], str) and isinstance(dims["input.1"][3], str)


def test_rewrite_round_trip_keeps_everything_else(model_bytes: bytes) -> None:
    fixed = set_io_dims(model_bytes, {"input.1": [10, 3, 32, 32]})
    assert read_io_dims(fixed)["input.1"] == [10, 3, 32, 32]
    back = make_centerface_dynamic(fixed)
    # Unknown fields (nodes, weights) survive: the size only changes by the dim encoding.
    assert abs(len(back) - len(model_bytes)) == 0
    assert read_io_dims(back) == read_io_dims(model_bytes)


def test_unknown_name_raises(model_bytes: bytes) -> None:
    with pytest.raises(KeyError):
        set_io_dims(model_bytes, {"no-such-tensor": [1]})


def test_fixed_and_dynamic_models_agree(model_bytes: bytes) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    fixed = set_io_dims(model_bytes, {"input.1": [1, 3, 32, 32]})
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    a = ort.InferenceSession(fixed, so, providers=["CPUExecutionProvider"]).run(None, {"input.1": x})
    b = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"]).run(None, {"input.1": x})
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("hw", [(32, 32), (64, 96), (160, 32), (256, 448)])
def test_inference_at_several_sizes(model_bytes: bytes, hw: tuple[int, int]) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input.1": np.zeros((1, 3, *hw), np.float32)})
    assert [o.shape for o in outs] == [(1, c, hw[0] // 4, hw[1] // 4) for c in (1, 2, 2, 10)]
