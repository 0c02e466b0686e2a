"""Read and rewrite the declared input/output shapes of an ONNX model without the ``onnx`` package.

The ``onnx`` package cannot be installed next to mediapipe (both pin protobuf), yet a model that declares a
fixed input size (CenterFace ships with 1x3x32x32) must have its shapes made symbolic before onnxruntime
accepts other sizes. The ONNX file is a protobuf ``ModelProto``; we describe at run time only the few fields
on the path ``ModelProto.graph -> GraphProto.input/output -> ValueInfoProto.type -> TypeProto.tensor_type ->
shape -> dim`` and let protobuf keep every other field as unknown fields, which it writes back unchanged.

Example
-------
>>> from lookalike.detection.onnx_shapes import read_io_dims, set_io_dims
>>> data = open("centerface.onnx", "rb").read()                    # doctest: +SKIP
>>> read_io_dims(data)["input.1"]                                   # doctest: +SKIP
[1, 3, 32, 32]
>>> new = set_io_dims(data, {"input.1": ["N", 3, "H", "W"]})        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

Dim = int | str | None
"""One dimension: an int (fixed size), a str (symbolic name) or None (unknown)."""

_F = descriptor_pb2.FieldDescriptorProto


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    *,
    repeated: bool = False,
    type_name: str | None = None,
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


@lru_cache(maxsize=1)
def _model_class() -> Any:
    """Build the minimal ``ModelProto`` class once, in a private pool so it cannot clash with a real onnx."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="lookalike_onnx_min.proto", package="lookalike_onnx_min", syntax="proto2"
    )
    p = ".lookalike_onnx_min."

    dim = fd.message_type.add(name="Dimension")
    dim.oneof_decl.add(name="value")  # dim_value and dim_param exclude each other, as in onnx.proto
    _field(dim, "dim_value", 1, _F.TYPE_INT64, oneof=0)
    _field(dim, "dim_param", 2, _F.TYPE_STRING, oneof=0)
    _field(dim, "denotation", 3, _F.TYPE_STRING)

    shape = fd.message_type.add(name="TensorShapeProto")
    _field(shape, "dim", 1, _F.TYPE_MESSAGE, repeated=True, type_name=p + "Dimension")

    tensor = fd.message_type.add(name="TensorType")
    _field(tensor, "elem_type", 1, _F.TYPE_INT32)
    _field(tensor, "shape", 2, _F.TYPE_MESSAGE, type_name=p + "TensorShapeProto")

    typ = fd.message_type.add(name="TypeProto")
    _field(typ, "tensor_type", 1, _F.TYPE_MESSAGE, type_name=p + "TensorType")

    vi = fd.message_type.add(name="ValueInfoProto")
    _field(vi, "name", 1, _F.TYPE_STRING)
    _field(vi, "type", 2, _F.TYPE_MESSAGE, type_name=p + "TypeProto")

    graph = fd.message_type.add(name="GraphProto")
    _field(graph, "input", 11, _F.TYPE_MESSAGE, repeated=True, type_name=p + "ValueInfoProto")
    _field(graph, "output", 12, _F.TYPE_MESSAGE, repeated=True, type_name=p + "ValueInfoProto")

    model = fd.message_type.add(name="ModelProto")
    _field(model, "graph", 7, _F.TYPE_MESSAGE, type_name=p + "GraphProto")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("lookalike_onnx_min.ModelProto"))


def _parse(data: bytes) -> Any:
    model = _model_class()()
    model.ParseFromString(data)
    if not model.HasField("graph"):
        raise ValueError("not an ONNX model: no graph field")
    return model


def _dims_of(value_info: Any) -> list[Dim]:
    out: list[Dim] = []
    for d in value_info.type.tensor_type.shape.dim:
        which = d.WhichOneof("value")
        out.append(d.dim_value if which == "dim_value" else d.dim_param if which == "dim_param" else None)
    return out


def read_io_dims(data: bytes) -> dict[str, list[Dim]]:
    """Declared dims of every graph input and output, by tensor name.

    Example
    -------
    >>> read_io_dims(open("model.onnx", "rb").read())   # doctest: +SKIP
    {'input.1': ['N', 3, 'H', 'W'], '537': ['N', 1, 'h4', 'w4'], ...}
    """
    graph = _parse(data).graph
    return {vi.name: _dims_of(vi) for vi in [*graph.input, *graph.output]}


def set_io_dims(data: bytes, dims: Mapping[str, Sequence[Dim]]) -> bytes:
    """Return the model with the declared dims of the named inputs/outputs replaced; nothing else changes.

    Raises ``KeyError`` when a name is neither a graph input nor output, so typos do not pass silently.

    Example
    -------
    >>> new = set_io_dims(data, {"input.1": ["N", 3, "H", "W"]})   # doctest: +SKIP
    """
    model = _parse(data)
    todo = dict(dims)
    for vi in [*model.graph.input, *model.graph.output]:
        if vi.name not in todo:
            continue
        shape = vi.type.tensor_type.shape
        del shape.dim[:]
        for v in todo.pop(vi.name):
            d = shape.dim.add()
            if isinstance(v, str):
                d.dim_param = v
            elif v is not None:
                d.dim_value = int(v)
    if todo:
        raise KeyError(f"not graph inputs/outputs: {sorted(todo)}")
    return model.SerializeToString()


#: Symbolic shapes for CenterFace: an RGB batch in, four maps at a quarter of the input size out.
CENTERFACE_DIMS: dict[str, list[Dim]] = {
    "input.1": ["N", 3, "H", "W"],
    "537": ["N", 1, "h4", "w4"],  # heatmap
    "538": ["N", 2, "h4", "w4"],  # log scale (h, w)
    "539": ["N", 2, "h4", "w4"],  # sub-cell offset (y, x)
    "540": ["N", 10, "h4", "w4"],  # 5 landmarks (y, x) relative to the box
}


def make_centerface_dynamic(data: bytes) -> bytes:
    """Rewrite the fixed 1x3x32x32 CenterFace declarations to :data:`CENTERFACE_DIMS`."""
    return set_io_dims(data, CENTERFACE_DIMS)
