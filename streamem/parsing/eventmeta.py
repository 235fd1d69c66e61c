"""Checks on what an event says about itself: its key, id and timestamp (pure: stdlib + numpy).

The decoder (:mod:`streamem.features`) reads these fields of every decoded record and rejects
the record when one is unusable, so that nothing downstream (incident tracker, logs, sinks)
ever sees it:

* a **key** must be a string or a number whose text is 1 to :data:`MAX_KEY_BYTES` UTF-8
  bytes, without control characters (C0, DEL, C1: CR, LF and NUL among them) or lone
  surrogates (reason ``invalid_key``);
* an **id** must be a string or a number of at most :data:`MAX_ID_BYTES` UTF-8 bytes without
  lone surrogates (``invalid_id``); control characters are kept, sinks encode them;
* a **timestamp** is seconds since the epoch (numbers above ``1e11`` are milliseconds), a
  numeric string, or an ISO-8601 string; it must be finite, not before 1970 and at most
  ``max_skew`` seconds ahead of the wall clock (``bad_timestamp``).

A missing or null field is fine (no key, no id, no timestamp). Each check runs on a whole
column with C-speed calls (one ``join``, ``isascii``/``isprintable``, one array conversion);
only a column that fails the quick test is checked value by value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_ID_BYTES", "MAX_KEY_BYTES", "Bad", "check_ids", "check_keys", "lookup",
           "parse_time", "timestamps"]

MAX_KEY_BYTES = 1024
MAX_ID_BYTES = 1024
_MS_ABOVE = 1e11  # numbers above this are milliseconds since the epoch (year 5138 in seconds)
_KEY_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMERIC = frozenset({int, float, type(None)})
_FEW_KEYS = 64  # up to this many distinct keys in a batch are checked one by one


class Bad(Exception):
    """Why one event cannot be used: a reason of ``REJECT_REASONS`` and a one-line detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


def lookup(record: Any, path: tuple[str, ...]) -> Any:
    """``record[a][b]...`` for a dotted path, or None where a level is missing or not an
    object.

    Examples
    --------
    >>> lookup({"a": {"b": 2}}, ("a", "b")), lookup({"a": [1]}, ("a", "b"))
    (2, None)
    """
    node = record
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def _short(text: str) -> str:
    """``text`` for a message: at most 40 characters, control characters escaped."""
    return repr(text[:40]) + ("..." if len(text) > 40 else "")


def _as_text(value: Any, name: str, reason: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        try:
            return str(value)
        except ValueError:  # an int beyond the digit limit of int -> str
            raise Bad(reason, f"{name} is a number too long to use as text") from None
    raise Bad(reason, f"{name} is a JSON {type(value).__name__}; use a string or a number")


def _text_within(value: Any, name: str, reason: str, limit: int, banned: re.Pattern[str],
                 banned_what: str) -> str:
    """The text of ``value``, refused (``reason``) above ``limit`` UTF-8 bytes or with a
    character of ``banned``."""
    text = _as_text(value, name, reason)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise Bad(reason, f"{name} has {size} bytes > {limit}")
    bad = banned.search(text)
    if bad is not None:
        raise Bad(reason, f"{name}={_short(text)} holds the {banned_what} "
                  f"U+{ord(bad.group()):04X}")
    return text


def _key(value: Any, name: str) -> None:
    if isinstance(value, str) and not value:
        raise Bad("invalid_key", f"{name} is empty; send a non-empty key or leave it out")
    _text_within(value, name, "invalid_key", MAX_KEY_BYTES, _KEY_BAD,
                 "control character or lone surrogate")


def _id(value: Any, name: str) -> None:
    _text_within(value, name, "invalid_id", MAX_ID_BYTES, _SURROGATE, "lone surrogate")


def _each(values: Sequence[Any], check: Any, name: str) -> dict[int, Bad]:
    out: dict[int, Bad] = {}
    for i, v in enumerate(values):
        if v is not None:
            try:
                check(v, name)
            except Bad as bad:
                out[i] = bad
    return out


def check_keys(values: Sequence[Any], name: str) -> dict[int, Bad]:
    """``{position: why}`` for the unusable keys among ``values`` (None: no key, fine).

    Examples
    --------
    >>> {i: b.reason for i, b in check_keys(["p1", None, "", "a\\nb", 7, {}], "k").items()}
    {2: 'invalid_key', 3: 'invalid_key', 5: 'invalid_key'}
    """
    try:
        distinct = set(values)  # keys repeat: check each distinct one (hashes are cached)
    except TypeError:  # a list or an object among them
        return _each(values, _key, name)
    distinct.discard(None)
    if len(distinct) <= _FEW_KEYS:
        bad: dict[Any, Bad] = {}
        for k in distinct:
            try:
                _key(k, name)
            except Bad as b:
                bad[k] = b
        return {i: bad[v] for i, v in enumerate(values) if v in bad} if bad else {}
    if set(map(type, values)) == {str}:  # many distinct strings: in C, no per-key Python
        joined = "".join(values)
        if (joined.isascii() and joined.isprintable() and "" not in distinct
                and max(map(len, values)) <= MAX_KEY_BYTES):
            return {}
    return _each(values, _key, name)


def check_ids(values: Sequence[Any], name: str) -> dict[int, Bad]:
    """``{position: why}`` for the unusable ids among ``values`` (None: no id, fine).

    Examples
    --------
    >>> {i: b.detail for i, b in check_ids(["a\\r\\nb", 12, "x" * 2000], "id").items()}
    {2: 'id has 2000 bytes > 1024'}
    """
    types = set(map(type, values))
    if types == {str}:
        if "".join(values).isascii() and max(map(len, values)) <= MAX_ID_BYTES:
            return {}
    elif types == {int} and min(values) > -10**300 and max(values) < 10**300:
        return {}
    return _each(values, _id, name)


def parse_time(value: Any, name: str = "timestamp") -> float:
    """Seconds since the epoch of one timestamp value (not None); raises :class:`Bad`.

    Numbers and numeric strings above ``1e11`` are read as milliseconds. ISO strings may end
    in ``Z``; without an offset they are local time.

    Examples
    --------
    >>> parse_time(1_700_000_000_000), parse_time("1970-01-01T00:00:09Z"), parse_time("12")
    (1700000000.0, 9.0, 12.0)
    >>> parse_time("soon")
    Traceback (most recent call last):
    ...
    streamem.parsing.eventmeta.Bad: ('bad_timestamp', "timestamp='soon' is neither ...")
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Bad("bad_timestamp", f"{name} is a JSON {type(value).__name__}; send seconds "
                  "since the epoch or an ISO-8601 string")
    if isinstance(value, str):
        try:
            v = float(value)
        except ValueError:
            try:
                v = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except (ValueError, OverflowError, OSError):
                raise Bad("bad_timestamp", f"{name}={_short(value)} is neither a number nor an "
                          "ISO-8601 time such as 2024-05-01T12:00:00Z") from None
            return v
    else:
        try:
            v = float(value)
        except OverflowError:
            raise Bad("bad_timestamp", f"{name} is an integer too large for a time") from None
    if not math.isfinite(v):
        raise Bad("bad_timestamp", f"{name}={v} is not finite")
    return v / 1000.0 if v > _MS_ABOVE else v


def timestamps(values: Sequence[Any], name: str, now: float, max_skew: float | None,
               ) -> tuple[NDArray[np.float64], dict[int, Bad]]:
    """Seconds since the epoch of each value (NaN where None) and ``{position: why}`` for the
    unusable ones: unparseable, not finite, before 1970, or more than ``max_skew`` seconds
    after ``now`` (``max_skew=None``: no upper bound).

    Examples
    --------
    >>> ts, bad = timestamps([5, None, "1970-01-01T00:00:07Z", -1, 9e10], "ts", 100.0, 60.0)
    >>> ts[:3].tolist()[::2], sorted(bad)
    ([5.0, 7.0], [3, 4])
    """
    n = len(values)
    if not n:
        return np.empty(0), {}
    out: NDArray[np.float64] | None = None
    bad: dict[int, Bad] = {}
    if set(map(type, values)) <= _NUMERIC:  # numbers (or nulls): one conversion, in C
        try:
            out = np.array(values, dtype=float).reshape(n)
        except OverflowError:  # an integer beyond float range: value by value
            out = None
        if out is not None:
            lo, hi = float(np.minimum.reduce(out)), float(np.maximum.reduce(out))
            limit = math.inf if max_skew is None else now + max_skew
            if lo >= 0.0 and hi <= min(limit, _MS_ABOVE):  # the common case: all fine (no NaN)
                return out, bad
            out = np.where(out > _MS_ABOVE, out / 1000.0, out)
            for i in np.flatnonzero(~np.isfinite(out)).tolist():  # None, or NaN/inf tokens
                if values[i] is not None:
                    bad[i] = Bad("bad_timestamp", f"{name}={out[i]} is not finite")
                    out[i] = math.nan
    if out is None:
        out = np.full(n, math.nan)
        for i, v in enumerate(values):
            if v is not None:
                try:
                    out[i] = parse_time(v, name)
                except Bad as b:
                    bad[i] = b
    limit = math.inf if max_skew is None else now + max_skew
    ok = (out >= 0.0) & (out <= limit) | np.isnan(out)
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            if i in bad:
                continue
            if out[i] < 0:
                bad[i] = Bad("bad_timestamp", f"{name}={out[i]:.6g} s is before 1970")
            else:
                bad[i] = Bad("bad_timestamp", f"{name}={out[i]:.6g} s is {out[i] - now:.6g} s "
                             f"ahead of the wall clock (fields.max_clock_skew_seconds="
                             f"{max_skew:g})")
    return out, bad
