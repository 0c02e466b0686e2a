"""The TF.js graph reader and its torch runner on small hand-made graphs, against NumPy references."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from lookalike.identity.tfjs_graph import GraphModule, read_tfjs_graph


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _conv_reference(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool = False) -> np.ndarray:
    """TensorFlow conv, "SAME" padding, NHWC, by loops. w: (kh, kw, cin, cout) or (kh, kw, C, 1)."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    oh, ow = -(-h // stride), -(-wd // stride)
    ph = max((oh - 1) * stride + kh - h, 0)
    pw = max((ow - 1) * stride + kw - wd, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    cout = c if depthwise else w.shape[3]
    out = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            if depthwise:
                out[:, i, j] = (patch * w[..., 0]).sum((1, 2))
            else:
                out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def _write_model(folder, nodes, weights, quantize=()):
    """A TF.js graph model: JSON + one shard; weights named in ``quantize`` stored as affine uint8."""
    specs, chunks = [], []
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype.kind == "i" else "float32"}
        if name in quantize:
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255
            q = np.round((value - lo) / scale).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            chunks.append(q.tobytes())
            weights[name] = (q * np.float32(scale) + np.float32(lo)).astype(np.float32)  # what a reader must see
        else:
            chunks.append(value.astype("<i4" if value.dtype.kind == "i" else "<f4").tobytes())
        specs.append(spec)
    (folder / "m.bin").write_bytes(b"".join(chunks))
    doc = {
        "format": "graph-model",
        "generatedBy": "test",
        "convertedBy": "test",
        "modelTopology": {"node": nodes},
        "weightsManifest": [{"paths": ["m.bin"], "weights": specs}],
    }
    (folder / "m.json").write_text(json.dumps(doc))
    return folder / "m.json"


def _node(name, op, inputs=(), **attr):
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def test_reads_runs_and_matches_numpy(tmp_path):
    rng = np.random.default_rng(0)
    w_conv = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    w_dw = rng.normal(size=(3, 3, 4, 1)).astype(np.float32)
    alpha = np.full(4, 0.125, np.float32)
    kernel = rng.normal(size=(7 * 7 * 4, 3)).astype(np.float32)
    weights = {
        "w_conv": w_conv,
        "bias": bias,
        "w_dw": w_dw,
        "alpha": alpha,
        "kernel": kernel,
        "pads": np.array([[0, 0], [1, 0], [0, 1], [0, 0]], np.int32),
        "shape": np.array([-1, 7 * 7 * 4], np.int32),
    }
    same, s2, s1 = {"s": _b64("SAME")}, {"list": {"i": ["1", "2", "2", "1"]}}, {"list": {"i": ["1", "1", "1", "1"]}}
    nodes = [
        # listed out of order on purpose (the reader sorts them); inputs with ":0" suffixes name the node
        _node("out", "MatMul", ["flat:0", "kernel"]),
        _node("flat", "Reshape", ["padded", "shape"]),
        _node("padded", "Pad", ["prelu", "pads"]),
        _node("prelu", "Add", ["relu", "neg_part"]),  # PReLU written out, as the TF.js graphs do
        _node("neg_part", "Mul", ["half_diff", "alpha"]),
        _node("half_diff", "Sub", ["dw", "abs"]),
        _node("relu", "Relu", ["dw"]),
        _node("abs", "Abs", ["dw"]),
        _node("dw", "DepthwiseConv2dNative", ["conv", "w_dw"], padding=same, strides=s1),
        _node(
            "conv",
            "_FusedConv2D",
            ["x", "w_conv", "bias"],
            padding=same,
            strides=s2,
            fused_ops={"list": {"s": [_b64("BiasAdd"), _b64("Relu")]}},
        ),
        _node("x", "Placeholder"),
    ] + [_node(k, "Const") for k in weights]
    path = _write_model(tmp_path, nodes, weights, quantize={"w_conv"})
    graph, constants, info = read_tfjs_graph(path)
    assert info["inputs"] == ["x"] and info["outputs"] == ["out"]
    order = [n["name"] for n in graph]
    assert order.index("conv") < order.index("dw") < order.index("prelu") < order.index("out")
    np.testing.assert_allclose(constants["w_conv"], weights["w_conv"], atol=1e-6)  # de-quantized

    x = rng.normal(size=(2, 11, 11, 2)).astype(np.float32)
    y = np.maximum(_conv_reference(x, weights["w_conv"], 2) + bias, 0)  # 6x6x4: SAME, stride 2, pad after
    y = _conv_reference(y, w_dw, 1, depthwise=True)
    y = np.maximum(y, 0) + alpha * (y - np.abs(y))
    y = np.pad(y, ((0, 0), (1, 0), (0, 1), (0, 0)))  # 7x7x4
    expected = y.reshape(2, -1) @ kernel  # flattened in NHWC order
    net = GraphModule(graph, constants, "x", "out")
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_unsupported_op_is_refused(tmp_path):
    nodes = [_node("x", "Placeholder"), _node("y", "Softmax", ["x"])]
    path = _write_model(tmp_path, nodes, {})
    with pytest.raises(ValueError, match="Softmax"):
        read_tfjs_graph(path)


def test_short_shard_is_refused(tmp_path):
    path = _write_model(
        tmp_path,
        [_node("x", "Placeholder"), _node("c", "Const"), _node("y", "Add", ["x", "c"])],
        {"c": np.ones(4, np.float32)},
    )
    (tmp_path / "m.bin").write_bytes(b"\0" * 8)
    with pytest.raises(ValueError, match="end before"):
        read_tfjs_graph(path)
