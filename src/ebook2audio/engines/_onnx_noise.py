"""Seedable noise for ONNX voices: ``RandomNormalLike`` nodes rewritten to read graph inputs.

onnxruntime keeps a random node's generator inside the kernel, advancing with every ``run``, so the
same text synthesised twice gives different audio. :func:`make_seedable` rewrites the model once, in
memory, so that each ``RandomNormalLike(x)`` becomes::

    Reshape(Slice(noise_K, [0], [Size(x)]), Shape(x)) * scale + mean

where ``noise_K`` is a new 1-D float input that the caller fills with standard normal samples
(:func:`noise_feed`, from a seed). A buffer longer than needed is fine (its first ``Size(x)``
values are used); a shorter one makes the ``Reshape`` fail (:func:`short_site` names it), and the
caller retries with a longer one. ``[Size(x)]`` is also a new graph output, so the caller learns
how much noise a model needs and sizes the next buffers from that. Because a seeded generator's
first values do not depend on how many are drawn, the audio depends on the seed only, never on the
buffer sizes.

The rewrite edits the protobuf wire format directly (no ``onnx`` dependency): only the top-level
graph's nodes, inputs and initializers change; every other byte of the model (the 60 MB of weights
included) is copied as is. Models with random operators this module cannot rewrite (``RandomNormal``,
``RandomUniform*``, ``Multinomial``, ``Bernoulli``, random nodes inside subgraphs, non-float noise)
raise :class:`UnsupportedModelError`: the caller keeps the original model (unseeded).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NOISE_PREFIX = "ebook2audio_noise_"
_RANDOM_NORMAL_LIKE = b"RandomNormalLike"
_OTHER_RANDOM_OPS = frozenset(
    {b"RandomNormal", b"RandomUniform", b"RandomUniformLike", b"Multinomial", b"Bernoulli"}
)
_SHORT_RE = re.compile(rf"'({NOISE_PREFIX}\d+)/Reshape'")  # in "... running Reshape node. Name:'...'"
# Every random operator's name contains one of these (a node's bytes include its subgraphs').
_RANDOM_MARKER = re.compile(rb"Random|Multinomial|Bernoulli")
_FLOAT = 1  # TensorProto.FLOAT
_INT64 = 7  # TensorProto.INT64
_ATTR_GRAPH, _ATTR_GRAPHS = 5, 10  # AttributeProto.AttributeType

# Field numbers of the ONNX protobuf messages used here (onnx/onnx.proto).
_MODEL_GRAPH, _MODEL_OPSET = 7, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_ATTRIBUTE, _NODE_DOMAIN = 1, 2, 3, 4, 5, 7
_ATTR_NAME, _ATTR_F, _ATTR_I, _ATTR_G, _ATTR_GRAPHS_FIELD, _ATTR_TYPE = 1, 2, 3, 6, 11, 20


class UnsupportedModelError(ValueError):
    """The model samples noise in a way :func:`make_seedable` cannot rewrite."""


@dataclass(frozen=True)
class NoiseSite:
    """One rewritten ``RandomNormalLike`` node."""

    input_name: str  # the new graph input feeding it: 1-D float32 standard normal samples
    count_name: str  # the new graph output: how many of them a run used (1-D int64, one value)
    node_name: str  # the original node's name (diagnostics)
    mean: float
    scale: float


@dataclass(frozen=True)
class SeedableModel:
    """A serialized model whose noise comes from :attr:`sites`' inputs (no random node left)."""

    model: bytes
    sites: tuple[NoiseSite, ...]


# --- protobuf wire format --------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    number: int
    wire_type: int
    start: int  # first byte of the key
    end: int  # one past the field's last byte
    value_start: int  # first byte of the value (the payload, for length-delimited fields)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise UnsupportedModelError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise UnsupportedModelError("malformed protobuf varint")


def _fields(buf: memoryview, start: int = 0, end: int | None = None) -> Iterator[_Field]:
    pos, end = start, len(buf) if end is None else end
    while pos < end:
        key, value_start = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, field_end = _varint(buf, value_start)
        elif wire_type == 1:
            field_end = value_start + 8
        elif wire_type == 5:
            field_end = value_start + 4
        elif wire_type == 2:
            length, value_start = _varint(buf, value_start)
            field_end = value_start + length
        else:
            raise UnsupportedModelError(f"unsupported protobuf wire type {wire_type}")
        if field_end > end:
            raise UnsupportedModelError("truncated protobuf message")
        yield _Field(number, wire_type, pos, field_end, value_start)
        pos = field_end


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint(number << 3) + _encode_varint(value)


def _node(op_type: str, inputs: list[str], outputs: list[str], name: str) -> bytes:
    payload = b"".join(_bytes_field(_NODE_INPUT, i.encode()) for i in inputs)
    payload += b"".join(_bytes_field(_NODE_OUTPUT, o.encode()) for o in outputs)
    payload += _bytes_field(_NODE_NAME, name.encode()) + _bytes_field(_NODE_OP_TYPE, op_type.encode())
    return _bytes_field(_GRAPH_NODE, payload)


def _tensor(name: str, data_type: int, values: list[int] | list[float], dims: list[int]) -> bytes:
    # TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian).
    raw = struct.pack(f"<{len(values)}{'q' if data_type == _INT64 else 'f'}", *values)
    payload = b"".join(_varint_field(1, d) for d in dims)
    payload += _varint_field(2, data_type) + _bytes_field(8, name.encode()) + _bytes_field(9, raw)
    return _bytes_field(_GRAPH_INITIALIZER, payload)


def _vector_value_info(field: int, name: str, elem_type: int, length: int | None) -> bytes:
    # ValueInfoProto{name, type: TypeProto{tensor_type{elem_type, shape{dim{dim_value | dim_param}}}}}
    dim = _varint_field(1, length) if length is not None else _bytes_field(2, f"{name}_length".encode())
    tensor_type = _varint_field(1, elem_type) + _bytes_field(2, _bytes_field(1, dim))
    value_type = _bytes_field(2, _bytes_field(1, tensor_type))
    return _bytes_field(field, _bytes_field(1, name.encode()) + value_type)


# --- the rewrite ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ParsedNode:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    name: str
    op_type: bytes
    domain: str
    attributes: Mapping[str, tuple[int, memoryview]]  # name -> (attribute type, raw AttributeProto)


def _parse_node(buf: memoryview, field: _Field) -> _ParsedNode:
    inputs: list[str] = []
    outputs: list[str] = []
    name, op_type, domain = "", b"", ""
    attributes: dict[str, tuple[int, memoryview]] = {}
    for sub in _fields(buf, field.value_start, field.end):
        value = buf[sub.value_start : sub.end]
        if sub.number == _NODE_INPUT:
            inputs.append(bytes(value).decode())
        elif sub.number == _NODE_OUTPUT:
            outputs.append(bytes(value).decode())
        elif sub.number == _NODE_NAME:
            name = bytes(value).decode()
        elif sub.number == _NODE_OP_TYPE:
            op_type = bytes(value)
        elif sub.number == _NODE_DOMAIN:
            domain = bytes(value).decode()
        elif sub.number == _NODE_ATTRIBUTE:
            attr_name, attr_type = "", 0
            for part in _fields(value):
                if part.number == _ATTR_NAME:
                    attr_name = bytes(value[part.value_start : part.end]).decode()
                elif part.number == _ATTR_TYPE:
                    attr_type = _varint(value, part.value_start)[0]
            attributes[attr_name] = (attr_type, value)
    return _ParsedNode(tuple(inputs), tuple(outputs), name, op_type, domain, attributes)


def _attribute_float(node: _ParsedNode, name: str, default: float) -> float:
    if name not in node.attributes:
        return default
    raw = node.attributes[name][1]
    for part in _fields(raw):
        if part.number == _ATTR_F and part.wire_type == 5:
            return float(struct.unpack("<f", raw[part.value_start : part.end])[0])
    return default


def _attribute_int(node: _ParsedNode, name: str) -> int | None:
    if name not in node.attributes:
        return None
    raw = node.attributes[name][1]
    for part in _fields(raw):
        if part.number == _ATTR_I and part.wire_type == 0:
            return _varint(raw, part.value_start)[0]
    return None


def _subgraphs(node: _ParsedNode) -> Iterator[memoryview]:
    for attr_type, raw in node.attributes.values():
        if attr_type not in (_ATTR_GRAPH, _ATTR_GRAPHS):
            continue
        for part in _fields(raw):
            if part.number in (_ATTR_G, _ATTR_GRAPHS_FIELD):
                yield raw[part.value_start : part.end]


def _refuse_random_ops(graph: memoryview) -> None:
    """Raise if ``graph`` (a subgraph's GraphProto) holds a random node: they are not rewritten."""
    for field in _fields(graph):
        if field.number != _GRAPH_NODE or not _RANDOM_MARKER.search(graph[field.start : field.end]):
            continue
        node = _parse_node(graph, field)
        if node.op_type in _OTHER_RANDOM_OPS or node.op_type == _RANDOM_NORMAL_LIKE:
            kind = node.op_type.decode()
            raise UnsupportedModelError(f"cannot seed a {kind} node inside a subgraph ({node.name})")
        for sub in _subgraphs(node):
            _refuse_random_ops(sub)


def _default_opset(model: memoryview) -> int:
    for field in _fields(model):
        if field.number != _MODEL_OPSET:
            continue
        domain, version = "", 0
        for part in _fields(model, field.value_start, field.end):
            if part.number == _OPSET_DOMAIN:
                domain = bytes(model[part.value_start : part.end]).decode()
            elif part.number == _OPSET_VERSION:
                version = _varint(model, part.value_start)[0]
        if domain in ("", "ai.onnx"):
            return version
    return 0


def _replacement(node: _ParsedNode, index: int, site: NoiseSite) -> tuple[bytes, bytes]:
    """New nodes for a ``RandomNormalLike`` node, and the initializers they use."""
    prefix = f"{NOISE_PREFIX}{index}"
    x, out = node.inputs[0], node.outputs[0]
    shape, size, flat = (f"{prefix}/{part}" for part in ("shape", "size", "flat"))
    count = site.count_name
    zero, one = f"{prefix}/zero", f"{prefix}/one"
    initializers = _tensor(zero, _INT64, [0], [1]) + _tensor(one, _INT64, [1], [1])
    nodes = _node("Shape", [x], [shape], f"{prefix}/Shape")
    nodes += _node("Size", [x], [size], f"{prefix}/Size")
    nodes += _node("Reshape", [size, one], [count], f"{prefix}/Reshape_count")
    nodes += _node("Slice", [site.input_name, zero, count], [flat], f"{prefix}/Slice")
    steps = (("Mul", site.scale, 1.0), ("Add", site.mean, 0.0))  # x * scale + mean
    transform = [(op, value) for op, value, neutral in steps if value != neutral]
    current = f"{prefix}/standard" if transform else out
    nodes += _node("Reshape", [flat, shape], [current], f"{prefix}/Reshape")
    for step, (op, value) in enumerate(transform):
        constant = f"{prefix}/{op.lower()}_value"
        initializers += _tensor(constant, _FLOAT, [value], [])
        target = out if step == len(transform) - 1 else f"{prefix}/{op.lower()}"
        nodes += _node(op, [current, constant], [target], f"{prefix}/{op}")
        current = target
    return nodes, initializers


def make_seedable(model: bytes) -> SeedableModel:
    """Rewrite every top-level ``RandomNormalLike`` node of ``model`` (serialized ModelProto)."""
    buf = memoryview(model)
    graph_fields = [f for f in _fields(buf) if f.number == _MODEL_GRAPH]
    if len(graph_fields) != 1:
        raise UnsupportedModelError("the model has no graph")
    graph_field = graph_fields[0]
    graph = buf[graph_field.value_start : graph_field.end]
    opset = _default_opset(buf)

    pieces: list[bytes | memoryview] = []
    extra_initializers: list[bytes] = []
    sites: list[NoiseSite] = []
    for field in _fields(graph):
        # Only nodes that mention a random operator (in themselves or in a subgraph) are parsed.
        if field.number == _GRAPH_NODE and _RANDOM_MARKER.search(graph[field.start : field.end]):
            node = _parse_node(graph, field)
            standard = node.domain in ("", "ai.onnx")
            if node.op_type in _OTHER_RANDOM_OPS or (node.op_type == _RANDOM_NORMAL_LIKE and not standard):
                raise UnsupportedModelError(f"cannot seed a {node.op_type.decode()} node ({node.name})")
            for sub in _subgraphs(node):
                _refuse_random_ops(sub)
            if node.op_type == _RANDOM_NORMAL_LIKE:
                if opset < 10:
                    raise UnsupportedModelError(f"opset {opset} is too old to seed (10 or later needed)")
                dtype = _attribute_int(node, "dtype")
                if dtype not in (None, _FLOAT):
                    raise UnsupportedModelError(f"cannot seed {node.name}: noise of data type {dtype}")
                site = NoiseSite(
                    input_name=f"{NOISE_PREFIX}{len(sites)}",
                    count_name=f"{NOISE_PREFIX}{len(sites)}/count",
                    node_name=node.name,
                    mean=_attribute_float(node, "mean", 0.0),
                    scale=_attribute_float(node, "scale", 1.0),
                )
                nodes, initializers = _replacement(node, len(sites), site)
                sites.append(site)
                pieces.append(nodes)
                extra_initializers.append(initializers)
                continue
        pieces.append(graph[field.start : field.end])
    pieces.extend(extra_initializers)
    pieces.extend(_vector_value_info(_GRAPH_INPUT, site.input_name, _FLOAT, None) for site in sites)
    pieces.extend(_vector_value_info(_GRAPH_OUTPUT, site.count_name, _INT64, 1) for site in sites)
    new_graph = b"".join(pieces)
    new_model = b"".join(
        [
            buf[: graph_field.start],
            _bytes_field(_MODEL_GRAPH, new_graph),
            buf[graph_field.end :],
        ]
    )
    return SeedableModel(model=new_model, sites=tuple(sites))


def short_site(sites: tuple[NoiseSite, ...], message: str) -> NoiseSite | None:
    """The site whose buffer was too short, from an onnxruntime error message (None: another error)."""
    found = _SHORT_RE.search(message)
    if found is None:
        return None
    return next((site for site in sites if site.input_name == found.group(1)), None)


def noise_feed(
    sites: tuple[NoiseSite, ...], seed: int, stream: int, sizes: Mapping[str, int]
) -> dict[str, Any]:
    """Standard normal float32 buffers (numpy arrays) for ``sites``, one independent generator each.

    A site's samples depend on (``seed``, ``stream``, its index) only: a longer buffer starts with
    the same values as a shorter one, so the size is free to grow (retry) without changing the audio.
    ``seed`` and ``stream`` are non-negative integers.
    """
    import numpy as np

    feed = {}
    for index, site in enumerate(sites):
        rng = np.random.default_rng([seed, stream, index])
        feed[site.input_name] = rng.standard_normal(sizes[site.input_name], dtype=np.float32)
    return feed
