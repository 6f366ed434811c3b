"""The ONNX noise rewrite: tiny hand-built models run by the real onnxruntime, and the real joe model."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.engines._onnx_noise import (
    NoiseSite,
    UnsupportedModelError,
    _bytes_field,
    _encode_varint,
    _fields,
    _parse_node,
    _varint_field,
    make_seedable,
    noise_feed,
    short_site,
)
from ebook2audio.engines.piper import _seedable_model, bundled_voice

FLOAT, DOUBLE = 1, 11


def _attribute(name: str, *, f: float | None = None, i: int | None = None) -> bytes:
    payload = _bytes_field(1, name.encode())
    if f is not None:
        payload += _encode_varint(2 << 3 | 5) + struct.pack("<f", f) + _varint_field(20, 1)  # FLOAT
    if i is not None:
        payload += _varint_field(3, i) + _varint_field(20, 2)  # INT
    return _bytes_field(5, payload)


def _value_info(field: int, name: str, dims: list[int], elem_type: int = FLOAT) -> bytes:
    shape = b"".join(_bytes_field(1, _varint_field(1, d)) for d in dims)
    tensor_type = _varint_field(1, elem_type) + _bytes_field(2, shape)
    return _bytes_field(field, _bytes_field(1, name.encode()) + _bytes_field(2, _bytes_field(1, tensor_type)))


def _model(op_type: str = "RandomNormalLike", attributes: bytes = b"", opset: int = 15) -> bytes:
    """A one-node model: ``y = op_type(x)``, x and y float [2, 3], then ``z = y + x`` after it."""
    random_node = _bytes_field(1, b"x") + _bytes_field(2, b"y") + _bytes_field(3, b"noise")
    random_node += _bytes_field(4, op_type.encode())
    add_node = _bytes_field(1, b"y") + _bytes_field(1, b"x") + _bytes_field(2, b"z") + _bytes_field(4, b"Add")
    graph = (
        _bytes_field(1, random_node + attributes)
        + _bytes_field(1, add_node)
        + _bytes_field(2, b"tiny")
        + _value_info(11, "x", [2, 3])
        + _value_info(12, "z", [2, 3])
    )
    opset_import = _bytes_field(1, b"") + _varint_field(2, opset)
    return _varint_field(1, 8) + _bytes_field(8, opset_import) + _bytes_field(7, graph)


def _session(model: bytes):  # type: ignore[no-untyped-def]
    import onnxruntime

    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


def test_noise_comes_from_the_new_input_with_mean_and_scale() -> None:
    seedable = make_seedable(_model(attributes=_attribute("mean", f=5.0) + _attribute("scale", f=2.0)))
    assert seedable.sites == (
        NoiseSite("ebook2audio_noise_0", "ebook2audio_noise_0/count", node_name="noise", mean=5.0, scale=2.0),
    )
    session = _session(seedable.model)
    x = np.full((2, 3), 100.0, dtype=np.float32)
    noise = np.arange(10, dtype=np.float32)  # longer than needed: its first 6 values are used
    z, count = session.run(["z", "ebook2audio_noise_0/count"], {"x": x, "ebook2audio_noise_0": noise})
    assert np.array_equal(z, 100.0 + 5.0 + 2.0 * np.arange(6, dtype=np.float32).reshape(2, 3))
    assert count.tolist() == [6]


def test_plain_standard_normal_and_float_dtype_need_no_arithmetic() -> None:
    seedable = make_seedable(_model(attributes=_attribute("dtype", i=FLOAT) + _attribute("seed", f=3.0)))
    z = _session(seedable.model).run(
        ["z"], {"x": np.zeros((2, 3), np.float32), "ebook2audio_noise_0": np.ones(6, np.float32)}
    )[0]
    assert np.array_equal(z, np.ones((2, 3), np.float32))


def test_a_short_buffer_fails_and_names_its_site() -> None:
    seedable = make_seedable(_model())
    with pytest.raises(Exception) as caught:  # onnxruntime's own exception type
        _session(seedable.model).run(
            None, {"x": np.zeros((2, 3), np.float32), "ebook2audio_noise_0": np.ones(5, np.float32)}
        )
    assert short_site(seedable.sites, str(caught.value)) == seedable.sites[0]
    assert short_site(seedable.sites, "INVALID_ARGUMENT : some other failure") is None


def _subgraph_attribute(op_type: str) -> bytes:
    node = _bytes_field(1, b"x") + _bytes_field(2, b"y") + _bytes_field(4, op_type.encode())
    graph = _bytes_field(1, node) + _bytes_field(2, b"branch")
    return _bytes_field(5, _bytes_field(1, b"then_branch") + _bytes_field(6, graph) + _varint_field(20, 5))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_model("If", _subgraph_attribute("RandomNormalLike")), "RandomNormalLike node inside a subgraph"),
        (_model("RandomUniformLike"), "cannot seed a RandomUniformLike node"),
        (_model("RandomNormal"), "cannot seed a RandomNormal node"),
        (_model(attributes=_attribute("dtype", i=DOUBLE)), "noise of data type 11"),
        (_model(opset=9), "opset 9 is too old"),
        (b"\x0a\x02", "truncated"),
    ],
)
def test_models_it_cannot_seed_are_refused(model: bytes, message: str) -> None:
    with pytest.raises(UnsupportedModelError, match=message):
        make_seedable(model)


def test_a_voice_it_cannot_seed_still_loads_unseeded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "odd.onnx"
    path.write_bytes(_model("RandomUniformLike"))
    assert _seedable_model(path) == (None, ())
    assert "its noise cannot be seeded" in caplog.text


def test_noise_depends_on_seed_stream_and_site_never_on_the_buffer_size() -> None:
    sites = (NoiseSite("a", "a/count", "", 0.0, 1.0), NoiseSite("b", "b/count", "", 0.0, 1.0))
    short = noise_feed(sites, 42, 0, {"a": 10, "b": 10})
    long = noise_feed(sites, 42, 0, {"a": 100_000, "b": 7})
    assert np.array_equal(long["a"][:10], short["a"])
    assert np.array_equal(long["b"], short["b"][:7])
    assert short["a"].dtype == np.float32
    assert not np.array_equal(short["a"], short["b"])
    assert not np.array_equal(noise_feed(sites, 42, 1, {"a": 10, "b": 10})["a"], short["a"])
    assert not np.array_equal(noise_feed(sites, 43, 0, {"a": 10, "b": 10})["a"], short["a"])
    big = noise_feed(sites[:1], 7, 0, {"a": 200_000})["a"]
    assert abs(float(big.mean())) < 0.01
    assert abs(float(big.std()) - 1.0) < 0.01  # standard normal, like RandomNormalLike's


def _ops(model: bytes) -> list[str]:
    buf = memoryview(model)
    graph_field = next(f for f in _fields(buf) if f.number == 7)
    graph = buf[graph_field.value_start : graph_field.end]
    return [_parse_node(graph, f).op_type.decode() for f in _fields(graph) if f.number == 1]


def test_the_joe_model_loses_its_two_random_nodes_and_nothing_else() -> None:
    original = bundled_voice().model_path.read_bytes()
    seedable = make_seedable(original)
    assert [s.node_name for s in seedable.sites] == ["/dp/RandomNormalLike", "/RandomNormalLike"]
    before, after = _ops(original), _ops(seedable.model)
    assert before.count("RandomNormalLike") == 2
    assert "RandomNormalLike" not in after
    assert len(after) == len(before) - 2 + 2 * 5  # Shape, Size, Reshape, Slice, Reshape per site
    assert 0 < len(seedable.model) - len(original) < 4096  # the weights are copied, not re-encoded
