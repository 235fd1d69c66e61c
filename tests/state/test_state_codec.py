"""Round trips and failure modes of streamem.state.codec."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streamem.errors import StateError
from streamem.state.base import SCHEMA_VERSION, Snapshot
from streamem.state.codec import (
    UnknownSchemaVersionError,
    decode_snapshot,
    dumps,
    encode_snapshot,
    loads,
)


def assert_identical(a: Any, b: Any, where: str = "$") -> None:
    """Exact equality: same types, same dict key types and order, same float bits."""
    if isinstance(a, (np.ndarray, np.generic)):
        assert type(a) is type(b), where
        assert a.dtype.newbyteorder("<") == b.dtype.newbyteorder("<"), where
        assert np.shape(a) == np.shape(b), where
        a_le = np.asarray(a).astype(a.dtype.newbyteorder("<"))
        b_le = np.asarray(b).astype(b.dtype.newbyteorder("<"))
        assert a_le.tobytes() == b_le.tobytes(), where
        return
    assert type(a) is type(b), f"{where}: {type(a)} vs {type(b)}"
    if isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} vs {b!r}"
    elif isinstance(a, dict):
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b], where
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


numeric_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
)
arrays = numeric_dtypes.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
scalars_np = hnp.from_dtype(np.dtype("float64")).map(np.float64) | st.integers(
    -(2**63), 2**63 - 1
).map(np.int64)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    arrays,
    scalars_np,
)
keys = st.one_of(st.text(max_size=6), st.integers(min_value=-(2**70), max_value=2**70))
nested = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(nested)
def test_round_trip_is_exact(obj: Any) -> None:
    assert_identical(obj, loads(dumps(obj)))


@settings(max_examples=100, deadline=None)
@given(nested, st.dictionaries(st.integers(0, 1000), st.integers(0, 2**62), max_size=5))
def test_snapshot_round_trip_is_exact(detector: Any, positions: dict[int, int]) -> None:
    snap = Snapshot("p3", 12, 1.25, {"state": detector}, positions, {"events_learned": 7})
    back = decode_snapshot(encode_snapshot(snap))
    assert (back.key, back.sequence, back.created_at) == ("p3", 12, 1.25)
    assert_identical(back.positions, positions)
    assert back.counters == {"events_learned": 7}
    assert back.schema_version == SCHEMA_VERSION
    assert_identical(back.detector, {"state": detector})


def test_nan_payload_signed_zero_and_inf_keep_their_bits() -> None:
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    values = [payload_nan, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    back = loads(dumps(values))
    assert [struct.pack("<d", v) for v in back] == [struct.pack("<d", v) for v in values]
    arr = np.array(values)
    assert loads(dumps(arr)).tobytes() == arr.tobytes()


def test_huge_ints_beyond_the_decimal_digit_limit() -> None:
    big = -(2**20000) + 12345  # ~6000 decimal digits: past CPython's int/str limit
    assert loads(dumps({"x": big, 2**100: 2**64})) == {"x": big, 2**100: 2**64}


def test_numpy_generator_state_resumes_the_same_stream() -> None:
    rng = np.random.default_rng(123)
    rng.normal(size=17)
    state = loads(dumps(rng.bit_generator.state))
    clone = np.random.default_rng()
    clone.bit_generator.state = state
    assert np.array_equal(rng.normal(size=50), clone.normal(size=50))


def test_dollar_keys_and_key_types_are_preserved() -> None:
    obj = {"$int": "ff", "1": "str-key", 1: "int-key", "$nd": [1]}
    back = loads(dumps(obj))
    assert back == obj and [type(k) for k in back] == [str, str, int, str]
    assert loads(dumps({"$tuple": 1})) == {"$tuple": 1}


def test_arrays_come_back_writable_and_c_contiguous() -> None:
    a = np.asfortranarray(np.arange(12, dtype=">i2").reshape(3, 4))
    b = loads(dumps(a))
    b[0, 0] = 99
    assert b.flags.c_contiguous and b.dtype == np.dtype("<i2")
    assert np.array_equal(b[1:], a[1:])


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"a": {1, 2}}, "$.a: value of type set"),
        ({"w": np.array([object()], dtype=object)}, "$.w: numpy dtype"),
        ({(1, 2): 3}, "dict key (1, 2)"),
        ([1, b"raw"], "$[1]: value of type bytes"),
    ],
)
def test_unsupported_values_name_where_they_are(value: Any, fragment: str) -> None:
    with pytest.raises(StateError, match="cannot be saved") as err:
        dumps(value)
    assert fragment in str(err.value)


def _snapshot() -> Snapshot:
    rng = np.random.default_rng(0)
    return Snapshot(
        key="global",
        sequence=42,
        created_at=1700000000.5,
        detector={"means": rng.normal(size=(2, 3)), "rng": rng.bit_generator.state, "k": 2},
        positions={0: 1000, 3: 17},
        counters={"events_learned": 990},
    )


def test_every_truncation_is_reported_as_truncated() -> None:
    blob = encode_snapshot(_snapshot())
    assert blob.endswith(b"}\n")
    for cut in range(len(blob) - 1):  # blob[:-1] is still a complete document
        with pytest.raises(StateError) as err:
            decode_snapshot(blob[:cut])
        text = str(err.value)
        assert "truncated" in text or "empty" in text, (cut, text)


def test_bad_checksum_is_named() -> None:
    blob = encode_snapshot(_snapshot())
    tampered = blob.replace(b'"sequence":42', b'"sequence":43')
    assert tampered != blob
    with pytest.raises(StateError, match="bad checksum"):
        decode_snapshot(tampered)


def test_unknown_schema_version_says_upgrade() -> None:
    blob = encode_snapshot(_snapshot())
    newer = blob.replace(b'"schema_version":1', b'"schema_version":7')
    with pytest.raises(UnknownSchemaVersionError, match="unknown schema_version 7") as err:
        decode_snapshot(newer)
    assert "newer streamem" in str(err.value) and "upgrade" in str(err.value)


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (b"", "empty"),
        (b'{"a": 1}', "not a streamem snapshot"),
        (b"[1, 2, 3]", "not a streamem snapshot"),
        (b'{"format":"streamem-snapshot","schema_version":"1"}', "invalid schema_version"),
        (b"\xff\xfe garbage }", "corrupt snapshot"),
        (b'{"format": "streamem-snapshot", x}', "corrupt snapshot"),
    ],
)
def test_foreign_documents_are_refused(blob: bytes, fragment: str) -> None:
    with pytest.raises(StateError, match=fragment):
        decode_snapshot(blob)


def test_checksum_is_over_the_canonical_body() -> None:
    blob = encode_snapshot(_snapshot())
    doc = json.loads(blob)
    assert doc["format"] == "streamem-snapshot" and doc["checksum"].startswith("sha256:")
    pretty = json.dumps(doc, indent=2).encode()  # reformatting alone keeps it valid
    assert decode_snapshot(pretty).sequence == 42


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_damage_is_detected(data: st.DataObject) -> None:
    blob = bytearray(encode_snapshot(_snapshot()))
    pos = data.draw(st.integers(0, len(blob) - 2))  # the final newline is insignificant
    flip = data.draw(st.integers(1, 255))
    blob[pos] ^= flip
    with pytest.raises(StateError):
        decode_snapshot(bytes(blob))


def test_real_detector_state_survives_a_snapshot_bit_for_bit() -> None:
    """The codec carries everything Detector.to_state() holds: the restored detector
    scores the next events exactly like the original."""
    from streamem import Detector

    rng = np.random.default_rng(5)
    det = Detector(warmup=300, random_state=0)
    det.process(rng.normal(size=(1500, 4)))
    snap = Snapshot("global", 1, 0.0, det.to_state(), {0: 1500})
    restored = Detector.from_state(decode_snapshot(encode_snapshot(snap)).detector)
    X = rng.normal(size=(400, 4))
    X[::50] += 8.0  # some anomalies, so thresholds and protection paths run too
    a, b = det.process(X), restored.process(X)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.is_anomaly, b.is_anomaly)
    assert_identical(det.to_state(), restored.to_state())
