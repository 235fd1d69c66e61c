"""Turn raw events into feature vectors (pure: stdlib + numpy).

A batch of raw payloads becomes a float matrix (NaN where a reading is missing or null) plus,
for every event that cannot be used, a reason from :data:`REJECT_REASONS`. The common case, a
batch of well-formed JSON lines with numeric values, is decoded with one ``json.loads`` call
and one ``np.array`` conversion; anything odd falls back to careful per-event decoding, so one
bad line never costs the rest of the batch.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

try:  # orjson parses JSON ~3x faster than the stdlib; the stdlib is the fallback
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency, this is for odd platforms
    _loads = json.loads

__all__ = ["REJECT_REASONS", "DecodedBatch", "FeatureExtractor", "Rejection"]

#: a text format's decoder (:class:`streamem.parsing.LineDecoder`)
LinesToRecords = Callable[[Sequence[bytes]], Sequence["dict[str, Any] | tuple[str, str]"]]
REJECT_REASONS = ("parse_error", "invalid_value", "no_features", "too_large", "wrong_type")
_MAX_ABS = 1e100  # the model rejects larger magnitudes (their squares overflow)


@dataclass(frozen=True)
class Rejection:
    """Why event ``index`` of a batch was not used."""

    index: int
    reason: str
    detail: str


class DecodedBatch:
    """A decoded batch: rows of ``X`` correspond to ``kept`` indices of the input.

    Keys, timestamps and ids are read from the decoded records on demand (:meth:`key`,
    :meth:`timestamp`, :meth:`id` for one row; :attr:`keys`, :attr:`timestamps`, :attr:`ids`
    for all rows), so a batch with no anomalies never pays for them.

    Examples
    --------
    >>> b = FeatureExtractor(["a"], key="k", timestamp="t").decode(
    ...     [b'{"a": 1, "k": "s1", "t": 5}', b'{"a": 2, "t": "1970-01-01T00:00:09Z"}'])
    >>> b.key(0), b.timestamp(1), b.keys, b.ids
    ('s1', 9.0, ['s1', None], [None, None])
    """

    __slots__ = ("X", "_cache", "_fields", "_recs", "kept", "rejected")

    def __init__(self, X: NDArray[np.float64], kept: list[int], rejected: list[Rejection],
                 recs: Sequence[dict[str, Any]] = (),
                 fields: tuple[tuple[str, ...] | None, ...] = (None, None, None)) -> None:
        self.X = X
        self.kept = kept
        self.rejected = rejected
        self._recs = recs
        self._fields = fields  # paths of (key, timestamp, id)
        self._cache: dict[str, list[Any]] = {}

    def key(self, i: int) -> str | None:
        """The key of kept row ``i`` (None without a key field or value)."""
        path = self._fields[0]
        return None if path is None else _str(_lookup(self._recs[i], path))

    def timestamp(self, i: int) -> float | None:
        """The timestamp of kept row ``i`` in seconds since the epoch, or None."""
        path = self._fields[1]
        return None if path is None else _parse_time(_lookup(self._recs[i], path))

    def id(self, i: int) -> str | None:
        """The event id of kept row ``i`` (None without an id field or value)."""
        path = self._fields[2]
        return None if path is None else _str(_lookup(self._recs[i], path))

    def _all(self, name: str) -> list[Any]:
        if name not in self._cache:
            one = getattr(self, name)
            self._cache[name] = [one(i) for i in range(len(self.kept))]
        return self._cache[name]

    def record(self, i: int) -> dict[str, Any]:
        """The decoded record of kept row ``i`` (all its fields)."""
        return self._recs[i]

    @property
    def keys(self) -> list[str | None]:
        """Keys of every kept row."""
        return self._all("key")

    @property
    def timestamps(self) -> list[float | None]:
        """Timestamps of every kept row."""
        return self._all("timestamp")

    @property
    def ids(self) -> list[str | None]:
        """Event ids of every kept row."""
        return self._all("id")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class _Bad(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail


def _lookup(record: Any, path: tuple[str, ...]) -> Any:
    node = record
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def _path_getter(path: tuple[str, ...]) -> Callable[[Any], Any]:
    """``rec[a][b]...`` for a dotted path; raises KeyError/TypeError when a level is missing
    or not an object (the careful path then decides what that means)."""
    if len(path) == 1:
        return itemgetter(path[0])
    first, rest = itemgetter(path[0]), [itemgetter(p) for p in path[1:]]
    if len(rest) == 1:
        second = rest[0]
        return lambda rec: second(first(rec))

    def get(rec: Any) -> Any:
        node = first(rec)
        for step in rest:
            node = step(node)
        return node

    return get


def _to_float(value: Any, name: str) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, (int, float)):  # booleans read as 0/1
        v = float(value)
    elif isinstance(value, str):
        try:
            v = float(value)
        except ValueError:
            raise _Bad("wrong_type", f"{name}={value[:40]!r} is not a number") from None
    else:
        raise _Bad("wrong_type", f"{name} is a {type(value).__name__}, not a number")
    if not math.isfinite(v):
        raise _Bad("invalid_value", f"{name}={v} is not finite; send null for a missing reading")
    if abs(v) > _MAX_ABS:
        raise _Bad("invalid_value", f"{name}={v:g} is beyond ±{_MAX_ABS:g}; rescale the sensor")
    return v


def _parse_time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v  # milliseconds since the epoch
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class FeatureExtractor:
    """Decode JSON-lines or CSV payloads and pick the configured features.

    Parameters
    ----------
    features
        Feature names or dotted paths (``vibration.rms``), in vector order.
    timestamp, key, id
        Optional field names (dotted paths allowed).
    format
        ``"jsonl"`` or ``"csv"``; CSV needs :meth:`set_csv_header` first. Any other
        (text) format needs ``lines``.
    max_event_bytes
        Longer payloads are rejected as ``too_large``.
    lines
        For text formats: maps raw lines to records (dicts of typed fields) or to
        ``(reason, detail)`` (a :class:`streamem.parsing.LineDecoder`); its ``timestamp``
        field is the default of ``timestamp``.

    Examples
    --------
    >>> fx = FeatureExtractor(["t", "p.v"], key="id")
    >>> b = fx.decode([b'{"t": 1.5, "p": {"v": 2}, "id": "s1"}', b'{"t": "x"}', b'{"t": nul'])
    >>> b.X.tolist(), b.keys, [r.reason for r in b.rejected]
    ([[1.5, 2.0]], ['s1'], ['wrong_type', 'parse_error'])
    """

    def __init__(
        self,
        features: Sequence[str],
        *,
        timestamp: str | None = None,
        key: str | None = None,
        id: str | None = None,
        format: str = "jsonl",
        max_event_bytes: int = 1_048_576,
        lines: LinesToRecords | None = None,
    ) -> None:
        self.lines = lines
        timestamp = timestamp or getattr(lines, "timestamp", None)
        self.features = list(features)
        self._paths = [tuple(f.split(".")) for f in self.features]
        self._flat = all(len(p) == 1 for p in self._paths)
        names = [p[0] for p in self._paths]
        self._getter = itemgetter(*names) if len(names) > 1 else (lambda r: (r[names[0]],))
        self._column_getters = [_path_getter(p) for p in self._paths]
        self._ts = tuple(timestamp.split(".")) if timestamp else None
        self._key = tuple(key.split(".")) if key else None
        self._id = tuple(id.split(".")) if id else None
        self.format = format
        self.max_event_bytes = max_event_bytes
        self._csv_header: list[str] | None = None

    def set_csv_header(self, header: bytes) -> None:
        """Use this CSV header row to name the columns of later rows."""
        self._csv_header = next(csv.reader([header.decode("utf-8", "replace").strip()]))

    # ------------------------------------------------------------------ decoding
    def _parse_one(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.max_event_bytes:
            raise _Bad("too_large", f"{len(payload)} bytes > max_event_bytes="
                       f"{self.max_event_bytes}")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Bad("parse_error", f"not UTF-8 at byte {exc.start}") from None
        if self.format == "csv":
            if self._csv_header is None:
                raise _Bad("parse_error", "CSV row before the header row")
            row = next(csv.reader(io.StringIO(text.strip())), [])
            if len(row) != len(self._csv_header):
                raise _Bad("parse_error", f"{len(row)} columns, header has "
                           f"{len(self._csv_header)}")
            return dict(zip(self._csv_header, row, strict=True))
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Bad("parse_error", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(rec, dict):
            raise _Bad("wrong_type", f"a JSON {type(rec).__name__}, not an object")
        return rec

    def _parse_batch(self, payloads: Sequence[bytes]
                     ) -> tuple[list[dict[str, Any] | _Bad], bool]:
        """Parsed payloads (or why not), and whether all of them are JSON objects."""
        if self.lines is not None:  # a text format: streamem.parsing maps lines to records
            recs = self.lines(payloads)
            if set(map(type, recs)) <= {dict}:
                return list(recs), True  # type: ignore[arg-type]  # (all dicts)
            return [r if type(r) is dict else _Bad(*r) for r in recs], False
        if self.format == "jsonl" and payloads and max(map(len, payloads)) <= \
                self.max_event_bytes:
            try:
                recs = _loads(b"[" + b",".join(payloads) + b"]")
                if len(recs) == len(payloads) and set(map(type, recs)) == {dict}:
                    return recs, True
            except ValueError:  # orjson's and json's decode errors are ValueErrors
                pass
        out: list[dict[str, Any] | _Bad] = []
        for p in payloads:
            try:
                out.append(self._parse_one(p))
            except _Bad as bad:
                out.append(bad)
        return out, False

    def _row(self, rec: dict[str, Any]) -> list[float]:
        if self._flat:
            vals = [_to_float(rec.get(p[0]), f) for p, f in zip(self._paths, self.features,
                                                                 strict=True)]
        else:
            vals = [_to_float(_lookup(rec, p), f) for p, f in zip(self._paths, self.features,
                                                                  strict=True)]
        if all(math.isnan(v) for v in vals):
            raise _Bad("no_features", f"none of {self.features} is present with a value")
        return vals

    def decode(self, payloads: Sequence[bytes]) -> DecodedBatch:
        """Decode a batch; never raises for bad events (they are listed in ``rejected``)."""
        parsed, clean = self._parse_batch(payloads)
        rejected: list[Rejection] = []
        good: list[int] = []
        recs: list[dict[str, Any]] = []
        if clean:  # every payload is a JSON object
            recs = parsed  # type: ignore[assignment]
            good = list(range(len(recs)))
        else:
            for i, r in enumerate(parsed):
                if isinstance(r, _Bad):
                    rejected.append(Rejection(i, r.reason, r.detail))
                else:
                    good.append(i)
                    recs.append(r)
        X = self._fast_matrix(recs)
        if X is None:
            rows: list[list[float]] = []
            keep_good, keep_recs = [], []
            for i, rec in zip(good, recs, strict=True):
                try:
                    rows.append(self._row(rec))
                    keep_good.append(i)
                    keep_recs.append(rec)
                except _Bad as bad:
                    rejected.append(Rejection(i, bad.reason, bad.detail))
            good, recs = keep_good, keep_recs
            X = np.array(rows, dtype=float).reshape(len(rows), len(self.features))
        rejected.sort(key=lambda r: r.index)
        return DecodedBatch(X, good, rejected, recs, (self._key, self._ts, self._id))

    def _fast_matrix(self, recs: list[dict[str, Any]]) -> NDArray[np.float64] | None:
        """One conversion for a clean batch; None when any value needs the careful path."""
        if not recs or self.format == "csv":
            return None if recs else np.empty((0, len(self.features)))
        try:
            if self._flat:
                X = np.array(list(chain.from_iterable(map(self._getter, recs))),
                             dtype=float).reshape(len(recs), -1)
            else:  # dotted paths: one column per feature, each read at C speed where flat
                X = np.array([list(map(get, recs)) for get in self._column_getters],
                             dtype=float).T.copy()
        except (KeyError, TypeError, ValueError):
            return None
        if not np.isfinite(X).all() or (X.size and np.abs(X).max() > _MAX_ABS):
            return None  # NaN/Infinity tokens or absurd magnitudes: the careful path rejects
        return X
