"""Read the constant tensors of a frozen TensorFlow ``GraphDef`` without TensorFlow.

Only the handful of protobuf messages needed to reach ``Const`` nodes are declared, at run time, with
:mod:`google.protobuf.descriptor_pb2`; the field numbers are those of TensorFlow's ``graph.proto``,
``node_def.proto``, ``attr_value.proto``, ``tensor.proto`` and ``tensor_shape.proto``. Fields we do not
declare (function library, versions, ...) are skipped by the parser as unknown fields. The schema is
declared as proto2 so that scalar attribute fields have presence (``HasField``); the wire format is the
same, and the parser accepts packed and unpacked repeated scalars either way.

Examples
--------
>>> from lookalike.identity.facenet.graph import read_graph          # doctest: +SKIP
>>> nodes, consts = read_graph("graph_final.pb")                      # doctest: +SKIP
>>> consts["InceptionResnetV1/Conv2d_1a_3x3/weights"].shape          # doctest: +SKIP
(3, 3, 3, 32)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# TensorFlow DataType enum values -> numpy dtypes (only the ones a frozen inference graph uses).
_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    19: np.float16,
}

_F = descriptor_pb2.FieldDescriptorProto


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    repeated: bool = False,
    type_name: str | None = None,
    packed: bool = False,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        f.type_name = type_name
    if packed:
        f.options.packed = True


@functools.lru_cache(maxsize=1)
def _graph_def_class() -> type:
    """Build (once) a message class compatible with ``tensorflow.GraphDef``."""
    fd = descriptor_pb2.FileDescriptorProto(name="lookalike_tf_min.proto", package="lookalike_tf", syntax="proto2")

    dim = fd.message_type.add(name="Dim")
    _field(dim, "size", 1, _F.TYPE_INT64)
    _field(dim, "name", 2, _F.TYPE_STRING)
    shape = fd.message_type.add(name="TensorShapeProto")
    _field(shape, "dim", 2, _F.TYPE_MESSAGE, True, ".lookalike_tf.Dim")
    _field(shape, "unknown_rank", 3, _F.TYPE_BOOL)

    tensor = fd.message_type.add(name="TensorProto")
    _field(tensor, "dtype", 1, _F.TYPE_INT32)  # an enum on the wire is a varint, like int32
    _field(tensor, "tensor_shape", 2, _F.TYPE_MESSAGE, type_name=".lookalike_tf.TensorShapeProto")
    _field(tensor, "tensor_content", 4, _F.TYPE_BYTES)
    _field(tensor, "float_val", 5, _F.TYPE_FLOAT, True, packed=True)
    _field(tensor, "double_val", 6, _F.TYPE_DOUBLE, True, packed=True)
    _field(tensor, "int_val", 7, _F.TYPE_INT32, True, packed=True)
    _field(tensor, "int64_val", 10, _F.TYPE_INT64, True, packed=True)
    _field(tensor, "bool_val", 11, _F.TYPE_BOOL, True, packed=True)
    _field(tensor, "half_val", 13, _F.TYPE_INT32, True, packed=True)

    lst = fd.message_type.add(name="ListValue")
    _field(lst, "s", 2, _F.TYPE_BYTES, True)
    _field(lst, "i", 3, _F.TYPE_INT64, True, packed=True)
    _field(lst, "f", 4, _F.TYPE_FLOAT, True, packed=True)
    _field(lst, "b", 5, _F.TYPE_BOOL, True, packed=True)
    _field(lst, "type", 6, _F.TYPE_INT32, True, packed=True)

    attr = fd.message_type.add(name="AttrValue")
    _field(attr, "list", 1, _F.TYPE_MESSAGE, type_name=".lookalike_tf.ListValue")
    _field(attr, "s", 2, _F.TYPE_BYTES)
    _field(attr, "i", 3, _F.TYPE_INT64)
    _field(attr, "f", 4, _F.TYPE_FLOAT)
    _field(attr, "b", 5, _F.TYPE_BOOL)
    _field(attr, "type", 6, _F.TYPE_INT32)
    _field(attr, "shape", 7, _F.TYPE_MESSAGE, type_name=".lookalike_tf.TensorShapeProto")
    _field(attr, "tensor", 8, _F.TYPE_MESSAGE, type_name=".lookalike_tf.TensorProto")

    node = fd.message_type.add(name="NodeDef")
    _field(node, "name", 1, _F.TYPE_STRING)
    _field(node, "op", 2, _F.TYPE_STRING)
    _field(node, "input", 3, _F.TYPE_STRING, True)
    _field(node, "device", 4, _F.TYPE_STRING)
    # map<string, AttrValue> is sugar for a repeated nested MapEntry message.
    entry = node.nested_type.add(name="AttrEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=".lookalike_tf.AttrValue")
    _field(node, "attr", 5, _F.TYPE_MESSAGE, True, ".lookalike_tf.NodeDef.AttrEntry")

    graph = fd.message_type.add(name="GraphDef")
    _field(graph, "node", 1, _F.TYPE_MESSAGE, True, ".lookalike_tf.NodeDef")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("lookalike_tf.GraphDef"))


def tensor_to_numpy(t) -> np.ndarray:
    """Decode a ``TensorProto`` message into a numpy array."""
    if t.dtype not in _DTYPES:
        raise ValueError(f"unsupported TensorFlow dtype {t.dtype}")
    dtype = np.dtype(_DTYPES[t.dtype])
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    count = int(np.prod(shape)) if shape else 1
    if t.tensor_content:
        return np.frombuffer(t.tensor_content, dtype=dtype).reshape(shape).copy()
    if t.dtype == 19:
        vals = np.asarray(t.half_val, np.uint16).view(np.float16)
    else:
        src = {np.float32: t.float_val, np.float64: t.double_val, np.int64: t.int64_val, np.bool_: t.bool_val}.get(
            _DTYPES[t.dtype], t.int_val
        )
        vals = np.asarray(src, dtype=dtype)
    if vals.size == count:
        return vals.reshape(shape)
    # TensorFlow stores a constant filled with one value as a single element.
    out = np.empty(count, dtype=dtype)
    out[:] = vals[-1] if vals.size else 0
    return out.reshape(shape)


@dataclass
class Node:
    """What we keep of a ``NodeDef``: enough to follow the graph and read op attributes."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict = field(default_factory=dict)


def read_graph(path: str | Path) -> tuple[dict[str, Node], dict[str, np.ndarray]]:
    """Parse a frozen GraphDef: ``(nodes by name, constant arrays by node name)``."""
    graph = _graph_def_class()()
    graph.ParseFromString(Path(path).read_bytes())
    nodes: dict[str, Node] = {}
    consts: dict[str, np.ndarray] = {}
    for n in graph.node:
        attrs = {}
        for key, val in n.attr.items():
            for name in ("s", "i", "f", "b", "type"):
                if val.HasField(name):
                    attrs[key] = getattr(val, name)
            if val.HasField("list"):
                attrs[key] = list(val.list.i) or list(val.list.f) or list(val.list.s)
        nodes[n.name] = Node(n.name, n.op, list(n.input), attrs)
        if n.op == "Const":
            consts[n.name] = tensor_to_numpy(n.attr["value"].tensor)
    return nodes, consts
