"""Exact, pickle-free serialisation of detector state and snapshots (pure: stdlib + numpy).

:func:`dumps` / :func:`loads` turn nested containers into JSON bytes and back, exactly:

================  ==========================================================================
value             encoding
================  ==========================================================================
``None``, bool,   JSON as is
str
int               JSON number inside the int64 range, else ``{"$int": "<hex>"}`` (any size)
float             JSON number when finite (shortest repr, exact), else
                  ``{"$float": "<16 hex digits of the IEEE-754 bits>"}`` (nan payload kept)
list              JSON array
tuple             ``{"$tuple": [...]}``
dict              JSON object when every key is a str not starting with ``$``, else
                  ``{"$dict": [[key, value], ...]}`` (int keys stay int)
numpy array       ``{"$nd": {"dtype": "<f8", "shape": [...], "data": "<base64>"}}``: the raw
                  little-endian C-order bytes; ``"scalar": true`` for numpy scalars
================  ==========================================================================

:func:`encode_snapshot` / :func:`decode_snapshot` wrap a :class:`~streamem.state.base.Snapshot`
in a JSON document ``{"format", "schema_version", "checksum", "body"}`` where ``checksum`` is
the SHA-256 of the canonical JSON text of ``body``. Decoding refuses (with
:class:`~streamem.errors.StateError`) truncated, corrupt, foreign and newer documents.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

import numpy as np

from streamem.errors import StateError
from streamem.state.base import SCHEMA_VERSION, Snapshot

__all__ = [
    "FORMAT",
    "UnknownSchemaVersionError",
    "decode_snapshot",
    "dumps",
    "encode_snapshot",
    "loads",
]

FORMAT = "streamem-snapshot"
"""Value of the ``format`` field that marks a streamem snapshot document."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ARRAY_KINDS = frozenset("biufcUS")  # bool, int, uint, float, complex, unicode, bytes


class UnknownSchemaVersionError(StateError):
    """A snapshot was written with a ``schema_version`` this streamem does not know.

    Stores re-raise it instead of silently falling back to an older snapshot: the fix is to
    upgrade streamem, not to lose state.

    Examples
    --------
    >>> issubclass(UnknownSchemaVersionError, StateError)
    True
    """


def _dump_text(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _encode_array(arr: np.ndarray[Any, Any] | np.generic, where: str) -> dict[str, Any]:
    a = np.asarray(arr)
    if a.dtype.kind not in _ARRAY_KINDS or a.dtype.fields is not None:
        raise StateError(
            f"{where}: numpy dtype {a.dtype!r} cannot be saved; use a numeric, bool or "
            "string dtype (object and structured arrays are not supported)"
        )
    le = a.dtype.newbyteorder("<")
    a = a.astype(le, copy=False)
    body: dict[str, Any] = {
        "dtype": le.str,
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes(order="C")).decode("ascii"),
    }
    if isinstance(arr, np.generic):
        body["scalar"] = True
    return {"$nd": body}


def _encode(obj: Any, where: str) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)):  # first: np.float64 subclasses float
        return _encode_array(obj, where)
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        if _INT64_MIN <= obj <= _INT64_MAX:
            return int(obj)
        return {"$int": hex(obj)}
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return {"$float": struct.pack(">d", obj).hex()}
    if isinstance(obj, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, f"{where}.{k}") for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise StateError(
                    f"{where}: dict key {k!r} of type {type(k).__name__} cannot be saved; "
                    "use str or int keys"
                )
            items.append([_encode(k, where), _encode(v, f"{where}[{k!r}]")])
        return {"$dict": items}
    raise StateError(
        f"{where}: value of type {type(obj).__name__} cannot be saved; convert it to a numpy "
        "array, int, float, str, bool, None, list, tuple or dict"
    )


_MAX_NDIM = 32  # numpy's limit (before numpy 2.0); our states use at most 3


def _decode_shape(shape: Any, where: str) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise StateError(
            f"{where}: array shape {str(shape)[:80]} is not a list of at most {_MAX_NDIM} "
            "non-negative integers; the snapshot is corrupt"
        )
    return tuple(shape)


def _decode_array(body: Any, where: str) -> np.ndarray[Any, Any] | np.generic:
    try:
        dtype = np.dtype(body["dtype"])
        shape = _decode_shape(body["shape"], where)
        raw = base64.b64decode(body["data"].encode("ascii"), validate=True)
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(
            f"{where}: malformed array record ({exc}); the snapshot is corrupt"
        ) from exc
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype:
        raise StateError(f"{where}: unsupported array dtype {dtype!r}; the snapshot is corrupt")
    # exact (Python int) arithmetic: a claimed shape cannot wrap around to match the data
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise StateError(
            f"{where}: array of shape {shape} and dtype {dtype.str} needs {expected} bytes but "
            f"has {len(raw)}; the snapshot is corrupt"
        )
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if body.get("scalar"):
        return arr[()]
    return arr


_MAX_DEPTH = 100
"""Deepest container nesting :func:`_decode` accepts (what streamem writes nests < 10 deep)."""


def _decode(obj: Any, where: str, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise StateError(
            f"{where[:120]}: containers nested more than {_MAX_DEPTH} deep; the snapshot is "
            "corrupt (streamem never writes such nesting)"
        )
    depth += 1
    if isinstance(obj, list):
        return [_decode(v, f"{where}[{i}]", depth) for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, val),) = obj.items()
        if tag.startswith("$"):
            try:
                if tag == "$int":
                    return int(val, 16)
                if tag == "$float":
                    (f,) = struct.unpack(">d", bytes.fromhex(val))
                    return f
                if tag == "$tuple":
                    return tuple(_decode(v, f"{where}[{i}]", depth) for i, v in enumerate(val))
                if tag == "$dict":
                    return {_decode(k, where, depth): _decode(v, f"{where}[{k!r}]", depth)
                            for k, v in val}
                if tag == "$nd":
                    return _decode_array(val, where)
            except StateError:
                raise
            except (TypeError, ValueError, struct.error) as exc:
                raise StateError(
                    f"{where}: malformed {tag} record ({exc}); the snapshot is corrupt"
                ) from exc
            raise StateError(f"{where}: unknown tag {tag!r}; the snapshot is corrupt or newer")
    return {k: _decode(v, f"{where}.{k}", depth) for k, v in obj.items()}


def dumps(obj: Any) -> bytes:
    """Serialise nested containers of arrays and scalars to JSON bytes, exactly.

    Parameters
    ----------
    obj
        ``None``, bool, int (any size), float (nan/inf included), str, numpy arrays and
        scalars, and lists, tuples and dicts (str or int keys) of those.

    Returns
    -------
    bytes
        ASCII JSON; :func:`loads` gives back an equal object with the same types.

    Raises
    ------
    StateError
        For a value that cannot be represented (object arrays, sets, custom classes).

    Examples
    --------
    >>> import numpy as np
    >>> blob = dumps({"w": np.array([0.25, 0.75]), "pos": {0: 2**70}})
    >>> back = loads(blob)
    >>> back["w"].dtype, back["w"].tolist(), back["pos"]
    (dtype('float64'), [0.25, 0.75], {0: 1180591620717411303424})
    """
    return _dump_text(_encode(obj, "$")).encode("ascii")


def loads(data: bytes) -> Any:
    """Inverse of :func:`dumps`.

    Parameters
    ----------
    data
        Bytes produced by :func:`dumps`.

    Returns
    -------
    Any
        The object, with arrays as writable numpy arrays of the original dtype and shape.

    Raises
    ------
    StateError
        When ``data`` is not valid JSON or holds a malformed record.

    Examples
    --------
    >>> loads(dumps((1, float("nan"), None)))
    (1, nan, None)
    """
    try:
        raw = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"not a streamem state document: {exc}") from exc
    except RecursionError as exc:
        raise StateError(f"not a streamem state document: {_TOO_DEEP}") from exc
    return _decode(raw, "$")


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Serialise a :class:`Snapshot` to a checksummed JSON document.

    Parameters
    ----------
    snapshot
        The snapshot; ``snapshot.detector`` may hold anything :func:`dumps` accepts.

    Returns
    -------
    bytes
        ``{"format": "streamem-snapshot", "schema_version": N, "checksum": "sha256:...",
        "body": {...}}`` as ASCII JSON, ending with a newline.

    Examples
    --------
    >>> import numpy as np
    >>> s = Snapshot(key="global", sequence=3, created_at=1.5,
    ...              detector={"means": np.zeros((2, 3))}, positions={0: 120})
    >>> blob = encode_snapshot(s)
    >>> blob[:48]
    b'{"format":"streamem-snapshot","schema_version":1'
    >>> decode_snapshot(blob).positions
    {0: 120}
    """
    body = {
        "key": snapshot.key,
        "sequence": int(snapshot.sequence),
        "created_at": float(snapshot.created_at),
        "positions": _encode({int(p): int(o) for p, o in snapshot.positions.items()}, "positions"),
        "counters": _encode({str(k): int(v) for k, v in snapshot.counters.items()}, "counters"),
        "detector": _encode(snapshot.detector, "detector"),
    }
    if snapshot.parsing:  # (absent from snapshots of JSON/CSV input and older ones)
        body["parsing"] = _encode(snapshot.parsing, "parsing")
    if snapshot.feedback:  # (absent until an operator gave a verdict)
        body["feedback"] = _encode(snapshot.feedback, "feedback")
    body_text = _dump_text(body)
    checksum = hashlib.sha256(body_text.encode("ascii")).hexdigest()
    head = _dump_text(
        {
            "format": FORMAT,
            "schema_version": snapshot.schema_version,
            "checksum": f"sha256:{checksum}",
        }
    )
    return f'{head[:-1]},"body":{body_text}}}\n'.encode("ascii")


_TOO_DEEP = "JSON nested too deeply to parse (streamem never writes such nesting)"


def _refuse_constant(name: str) -> Any:
    """``json.loads`` hook for ``NaN``/``Infinity`` tokens, which streamem never writes."""
    raise ValueError(f"non-standard JSON constant {name} (streamem writes non-finite floats "
                     "as $float records)")


def _header(doc: Any, size: int) -> int:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(
            f'not a streamem snapshot (no "format": "{FORMAT}" field in {size} bytes); '
            "point streamem at a directory or topic that holds only streamem checkpoints"
        )
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StateError(f"invalid schema_version {version!r}; the snapshot is corrupt")
    if version > SCHEMA_VERSION:
        raise UnknownSchemaVersionError(
            f"unknown schema_version {version}: written by a newer streamem (this one reads up "
            f"to {SCHEMA_VERSION}); upgrade streamem to load it"
        )
    if version != SCHEMA_VERSION:
        raise UnknownSchemaVersionError(
            f"unknown schema_version {version}: this streamem reads only {SCHEMA_VERSION}; "
            "use the streamem release that wrote it"
        )
    return version


def decode_snapshot(data: bytes) -> Snapshot:
    """Parse and verify a document written by :func:`encode_snapshot`.

    Parameters
    ----------
    data
        The whole document.

    Returns
    -------
    Snapshot
        With ``positions`` as ``{int: int}`` and arrays restored exactly.

    Raises
    ------
    UnknownSchemaVersionError
        When a newer (or unknown) streamem wrote it.
    StateError
        When it is empty, truncated, not JSON, not a snapshot, or fails its checksum.

    Examples
    --------
    >>> s = Snapshot(key="p1", sequence=7, created_at=0.0, detector={}, positions={1: 5})
    >>> decode_snapshot(encode_snapshot(s)) == s
    True
    >>> decode_snapshot(encode_snapshot(s)[:-20])
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: truncated snapshot: ...
    """
    if not data:
        raise StateError("empty snapshot (0 bytes); it was never written completely")
    try:
        doc = json.loads(data, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise StateError(f"corrupt snapshot: not ASCII JSON ({exc})") from exc
    except json.JSONDecodeError as exc:
        cut_off = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string")
        if cut_off or not data.rstrip().endswith(b"}"):
            raise StateError(
                f"truncated snapshot: the JSON ends early after {len(data)} bytes; "
                "it was cut off while being written, use an older snapshot"
            ) from exc
        raise StateError(f"corrupt snapshot: invalid JSON at byte {exc.pos} ({exc.msg})") from exc
    except ValueError as exc:  # an integer literal beyond the int-digits limit, NaN, Infinity
        raise StateError(f"corrupt snapshot: {exc}") from exc
    except RecursionError as exc:
        raise StateError(f"corrupt snapshot: {_TOO_DEEP}") from exc
    version = _header(doc, len(data))
    body = doc.get("body")
    expected = doc.get("checksum")
    try:
        canonical = _dump_text(body).encode("ascii")
    except ValueError as exc:  # NaN/Infinity literals never appear in what we write
        raise StateError(f"corrupt snapshot body: {exc}") from exc
    except RecursionError as exc:
        raise StateError(f"corrupt snapshot body: {_TOO_DEEP}") from exc
    actual = "sha256:" + hashlib.sha256(canonical).hexdigest()
    if expected != actual:
        raise StateError(
            f"bad checksum: header says {str(expected)[:80]!r} but the body hashes to "
            f"{actual!r}; the snapshot was modified or damaged, use an older snapshot"
        )
    return _snapshot_of(body, version)


def _malformed(what: str) -> StateError:
    return StateError(f"malformed snapshot body: {what}; the snapshot is corrupt")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _snapshot_of(body: Any, version: int) -> Snapshot:
    """The :class:`Snapshot` in a checksummed ``body``, every field of the expected type."""
    if not isinstance(body, dict):
        raise _malformed(f"the body is a {type(body).__name__}, not an object")
    missing = sorted({"key", "sequence", "created_at", "positions", "counters", "detector"}
                     - set(body))
    if missing:
        raise _malformed(f"it misses the field(s) {', '.join(missing)}")
    key, sequence, created_at = body["key"], body["sequence"], body["created_at"]
    if not isinstance(key, str):
        raise _malformed(f"key {str(key)[:40]!r} is not a string")
    if not _is_int(sequence) or sequence < 0:
        raise _malformed(f"sequence {str(sequence)[:40]!r} is not an integer >= 0")
    if isinstance(created_at, bool) or not isinstance(created_at, (int, float)) \
            or not math.isfinite(created_at):
        raise _malformed(f"created_at {str(created_at)[:40]!r} is not a finite number")
    positions = _decode(body["positions"], "positions")
    counters = _decode(body["counters"], "counters")
    detector = _decode(body["detector"], "detector")
    parsing = _decode(body.get("parsing", {}), "parsing")
    feedback = _decode(body.get("feedback", {}), "feedback")
    if not isinstance(positions, dict) or not all(
            _is_int(p) and _is_int(o) and p >= 0 and o >= 0 for p, o in positions.items()):
        raise _malformed(f"positions {str(positions)[:80]} are not {{partition: offset}} "
                         "integers >= 0")
    if not isinstance(counters, dict) or not all(
            isinstance(k, str) and _is_int(v) for k, v in counters.items()):
        raise _malformed(f"counters {str(counters)[:80]} are not {{name: integer}}")
    if not isinstance(detector, dict):
        raise _malformed(f"the detector state is a {type(detector).__name__}, not a mapping")
    if not isinstance(parsing, dict):
        raise _malformed(f"the parsing state is a {type(parsing).__name__}, not a mapping")
    if not isinstance(feedback, dict):
        raise _malformed(f"the feedback state is a {type(feedback).__name__}, not a mapping")
    return Snapshot(key=key, sequence=sequence, created_at=float(created_at), detector=detector,
                    positions=dict(positions), counters=dict(counters), parsing=parsing,
                    feedback=feedback, schema_version=version)
