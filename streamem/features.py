"""Turn raw events into feature vectors (stdlib + numpy; the one module that uses orjson).

A batch of raw payloads becomes a float matrix (NaN where a reading is missing or null) plus,
for every event that cannot be used, a reason from :data:`REJECT_REASONS`. The common case, a
batch of well-formed JSON lines with numeric values, is decoded with one ``orjson.loads`` call
over the lines joined into an array and one ``np.array`` conversion. That parse is used only
when it provably took each record from exactly one line
(:func:`streamem.parsing.jsonlines.framed`); anything odd falls back to per-event decoding,
so one bad line never costs the rest of the batch and never merges with its neighbours.
Keys, ids and timestamps are checked by :mod:`streamem.parsing.eventmeta`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError
from streamem.events import DecodedBatch, Rejection
from streamem.parsing.categorical import decode_categorical
from streamem.parsing.eventmeta import Bad as _Bad
from streamem.parsing.eventmeta import check_ids, check_keys, timestamps
from streamem.parsing.eventmeta import lookup as _lookup
from streamem.parsing.jsonlines import framed, lenient_json

try:  # orjson parses JSON ~3x faster than the stdlib; the stdlib is the fallback
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency, this is for odd platforms
    _loads = json.loads

__all__ = ["REJECT_REASONS", "DecodedBatch", "FeatureExtractor", "Rejection"]

#: Every reason an event can be rejected for (the ``reason`` label of the rejected-events
#: metric and the first word of a dead letter's reason); ``docs/contracts.md`` says what each
#: one means.
REJECT_REASONS = ("parse_error", "invalid_value", "no_features", "too_large", "wrong_type",
                  "invalid_key", "invalid_id", "bad_timestamp", "late")
_MAX_ABS = 1e100  # the model rejects larger magnitudes (their squares overflow)
#: a text format's decoder (:class:`streamem.parsing.LineDecoder`)
LinesToRecords = Callable[[Sequence[bytes]], Sequence["dict[str, Any] | tuple[str, str]"]]


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
        try:
            v = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise _Bad("invalid_value", f"{name} is an integer beyond ±{_MAX_ABS:g}; rescale "
                       "the sensor") from None
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
    max_clock_skew
        Events whose timestamp is more than this many seconds ahead of ``clock()`` are
        rejected as ``bad_timestamp``; None: no bound.
    clock
        The wall clock (seconds since the epoch).
    categorical
        Fields read as categories (:mod:`streamem.parsing.categorical`) into
        ``DecodedBatch.categorical``.

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
        max_clock_skew: float | None = 86_400.0,
        clock: Callable[[], float] = time.time,
        categorical: Sequence[str] = (),
    ) -> None:
        self.categorical = tuple(categorical)
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
        self._meta = [(f, tuple(f.split(".")) if f else ()) for f in (key, timestamp, id)]
        self.format = format
        self.max_event_bytes = max_event_bytes
        self.max_clock_skew = max_clock_skew
        self.clock = clock
        self._csv_header: list[str] | None = None

    def set_csv_header(self, header: bytes) -> None:
        """Use this CSV header row to name the columns of later rows.

        Raises
        ------
        InvalidInputError
            The header is not one CSV row of names.
        """
        try:
            rows = list(csv.reader(io.StringIO(header.decode("utf-8", "replace").strip())))
        except csv.Error as exc:
            raise InvalidInputError(f"the CSV header row is not valid CSV ({exc}); fix the "
                                    "first line of the input") from None
        if len(rows) != 1 or not rows[0]:
            raise InvalidInputError(f"the CSV header row {header[:80]!r} is not one row of "
                                    "column names; fix the first line of the input")
        self._csv_header = rows[0]

    # ------------------------------------------------------------------ decoding
    def _parse_csv(self, text: str) -> dict[str, Any]:
        if self._csv_header is None:
            raise _Bad("parse_error", "CSV row before the header row")
        try:
            rows = list(csv.reader(io.StringIO(text.strip())))
        except csv.Error as exc:  # e.g. a field beyond csv.field_size_limit()
            raise _Bad("parse_error", f"invalid CSV: {exc}") from None
        if len(rows) != 1:
            raise _Bad("parse_error", f"{len(rows)} CSV records in one event (a line break "
                       "outside quotes); send one row per event")
        row = rows[0]
        if len(row) != len(self._csv_header):
            raise _Bad("parse_error", f"{len(row)} columns, header has "
                       f"{len(self._csv_header)}")
        return dict(zip(self._csv_header, row, strict=True))

    def _parse_one(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.max_event_bytes:
            raise _Bad("too_large", f"{len(payload)} bytes > max_event_bytes="
                       f"{self.max_event_bytes}")
        if self.format != "csv":
            try:  # the strict parser first: bounded depth, no NaN, no huge numbers
                rec = _loads(payload)
            except ValueError:
                rec = lenient_json(payload)  # to say exactly what is wrong
            if not isinstance(rec, dict):
                raise _Bad("wrong_type", f"a JSON {type(rec).__name__}, not an object")
            return rec
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Bad("parse_error", f"not UTF-8 at byte {exc.start}") from None
        return self._parse_csv(text)

    def _parse_batch(self, payloads: Sequence[bytes]
                     ) -> tuple[list[dict[str, Any] | _Bad], bool]:
        """Parsed payloads (or why not), and whether all of them are JSON objects."""
        if self.lines is not None:  # a text format: streamem.parsing maps lines to records
            parsed = self.lines(payloads)
            if set(map(type, parsed)) <= {dict}:
                return list(parsed), True  # type: ignore[arg-type]  # (all dicts)
            return [r if type(r) is dict else _Bad(*r) for r in parsed], False
        n = len(payloads)
        if self.format == "jsonl" and n:
            doc = b"[" + b",".join(payloads) + b"]"
            if len(doc) - n - 1 <= self.max_event_bytes or \
                    max(map(len, payloads)) <= self.max_event_bytes:
                try:
                    recs = _loads(doc)
                except ValueError:  # orjson's decode errors are ValueErrors
                    recs = None
                if recs is not None and len(recs) == n and set(map(type, recs)) == {dict} \
                        and framed(doc, payloads):
                    return recs, True
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
        rejected, good, recs = self._split(payloads)
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
        return self._screened(X, good, recs, rejected)

    def records(self, payloads: Sequence[bytes]) -> DecodedBatch:
        """Decode a batch into records without a feature matrix (``X`` has no column).

        For the ``aggregate:`` stage, which computes its features over buckets: the same
        parsing and key, timestamp and id checks as :meth:`decode`, no ``no_features``.

        Examples
        --------
        >>> b = FeatureExtractor([], timestamp="t").records([b'{"t": 5, "s": 1}', b'[1]'])
        >>> b.X.shape, b.kept, b.timestamp(0), [r.reason for r in b.rejected]
        ((1, 0), [0], 5.0, ['wrong_type'])
        """
        rejected, good, recs = self._split(payloads)
        return self._screened(np.empty((len(recs), 0)), good, recs, rejected)

    def _split(self, payloads: Sequence[bytes]
               ) -> tuple[list[Rejection], list[int], list[dict[str, Any]]]:
        """Parse a batch: (rejections, indexes of the parsed records, the records)."""
        parsed, clean = self._parse_batch(payloads)
        if clean:  # every payload is a JSON object
            return [], list(range(len(parsed))), parsed  # type: ignore[return-value]
        rejected: list[Rejection] = []
        good: list[int] = []
        recs: list[dict[str, Any]] = []
        for i, r in enumerate(parsed):
            if isinstance(r, _Bad):
                rejected.append(Rejection(i, r.reason, r.detail))
            else:
                good.append(i)
                recs.append(r)
        return rejected, good, recs

    def _screened(self, X: NDArray[np.float64], good: list[int], recs: list[dict[str, Any]],
                  rejected: list[Rejection]) -> DecodedBatch:
        """The batch without the records whose key, timestamp or id is unusable."""
        ts, unusable = self._check_meta(recs)
        cats = None
        if self.categorical:
            cats, bad_cat = decode_categorical(recs, self.categorical)
            unusable = dict(sorted({**bad_cat, **unusable}.items()))
        if unusable:
            keep = np.ones(len(recs), dtype=bool)
            keep[list(unusable)] = False
            rejected.extend(Rejection(good[j], b.reason, b.detail) for j, b in unusable.items())
            X = X[keep]
            ts = None if ts is None else ts[keep]
            cats = None if cats is None else cats.rows(keep)
            good = [g for g, k in zip(good, keep.tolist(), strict=True) if k]
            recs = [r for r, k in zip(recs, keep.tolist(), strict=True) if k]
        rejected.sort(key=lambda r: r.index)
        return DecodedBatch(X, good, rejected, recs, (self._key, self._ts, self._id), ts,
                            cats)

    def _column(self, recs: list[dict[str, Any]], path: tuple[str, ...]) -> list[Any]:
        if len(path) == 1:  # dict.get per record, at C speed
            return list(map(dict.get, recs, repeat(path[0])))
        return [_lookup(r, path) for r in recs]

    def _check_meta(self, recs: list[dict[str, Any]]
                    ) -> tuple[NDArray[np.float64] | None, dict[int, _Bad]]:
        """Timestamps of ``recs`` (None without a timestamp field) and ``{position: why}``
        for the records whose key, timestamp or id is unusable (the first problem wins)."""
        (kname, kpath), (tname, tpath), (iname, ipath) = self._meta
        bad: dict[int, _Bad] = {}
        ts = None
        if kname:
            bad = check_keys(self._column(recs, kpath), kname)
        if tname:
            ts, bad_ts = timestamps(self._column(recs, tpath), tname, self.clock(),
                                    self.max_clock_skew)
            bad = {**bad_ts, **bad}
        if iname:
            bad = {**check_ids(self._column(recs, ipath), iname), **bad}
        return ts, dict(sorted(bad.items()))

    def _fast_matrix(self, recs: list[dict[str, Any]]) -> NDArray[np.float64] | None:
        """One conversion for a clean batch; None when any value needs the careful path."""
        if not recs or self.format == "csv":
            return None if recs else np.empty((0, len(self.features)))
        try:
            if self._flat:
                X = np.array(list(chain.from_iterable(map(self._getter, recs))), dtype=float)
            else:  # dotted paths: one column per feature, each read at C speed where flat
                X = np.array([list(map(get, recs)) for get in self._column_getters],
                             dtype=float).T
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        if X.size != len(recs) * len(self.features) or X.ndim != (1 if self._flat else 2):
            return None  # lists as values (equal-length ones convert to an extra axis)
        X = X.reshape(len(recs), -1) if self._flat else X.copy()
        if not np.isfinite(X).all() or (X.size and np.abs(X).max() > _MAX_ABS):
            return None  # NaN/Infinity tokens or absurd magnitudes: the careful path rejects
        return X
