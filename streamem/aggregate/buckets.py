"""Event-time tumbling buckets per key: events in, one feature vector per closed bucket out.

:class:`Aggregator` puts each event into the bucket ``[k * span, (k + 1) * span)`` of its
event time and of its key (the ``by`` fields), and accumulates every
:class:`~streamem.aggregate.FeatureSpec` there. The watermark is the newest event time
minus ``allowed_lateness``; a bucket closes when the watermark reaches its end, and an event
whose bucket is closed is rejected with reason ``late``. With ``emit_empty`` every key seen
gets a zero-filled bucket for each span without events, so silence is a bucket with
``count = 0``. Whether an event is late depends only on the events before it, so the buckets
do not depend on how the stream is cut into batches, nor on a restart from
:meth:`Aggregator.to_state` (open buckets, sketches included, are part of the state).

A batch is grouped with numpy: one ``np.unique`` over (bucket, key) ids, then
:func:`~streamem.aggregate.reduce.reduce_feature` per feature (``bincount``, ``ufunc.at``),
one sketch update per bucket (the HyperLogLog one per distinct value). Open buckets are
rows of a matrix sorted by (bucket, key), so closing is a prefix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import compress
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.aggregate import columns as col
from streamem.aggregate.reduce import reduce_feature
from streamem.aggregate.result import Buckets, Rejection
from streamem.aggregate.sketches import Distinct, Quantiles
from streamem.aggregate.spec import NUMERIC, FeatureSpec
from streamem.errors import ConfigError

__all__ = ["Aggregator"]

MAX_TIME = 1e11  # epoch seconds (year 5138); keeps bucket ids inside int64
_ADD, _MIN, _MAX = 0, 1, 2
_SAMPLE_CHARS = 1000


def _layout(features: Sequence[FeatureSpec]) -> tuple[list[int], list[int], list[int], list[int]]:
    """Slot offset per feature, op per slot (slot 0 counts events), sketch index per feature."""
    offsets, ops, sketch = [], [_ADD], []
    for f in features:
        offsets.append(len(ops))
        width = {"count": 1, "sum": 1, "mean": 2, "min": 1, "max": 1,
                 "count_by": (f.top or 0) + 1}.get(f.fn, 0)
        ops += [{"min": _MIN, "max": _MAX}.get(f.fn, _ADD)] * width
        sketch.append(sum(1 for g in features[: len(offsets) - 1]
                          if g.fn in ("quantile", "distinct_count"))
                      if f.fn in ("quantile", "distinct_count") else -1)
    return offsets, ops, sketch, [i for i, f in enumerate(features)
                                  if f.fn in ("quantile", "distinct_count")]


class Aggregator:
    """Tumbling event-time buckets per key.

    Parameters
    ----------
    features
        What each bucket computes.
    bucket_span
        Bucket length in seconds (at least 1).
    by
        Key fields; each distinct tuple of their values has its own buckets.
    allowed_lateness
        Seconds an event may lag the newest event time before it is ``late``.
    emit_empty
        Emit a zero-filled bucket for every key and every span without events.
    max_keys
        Most keys; an event of a further key is rejected (``invalid_key``).
    max_samples
        Raw lines kept per bucket as evidence.
    max_empty_run
        Most empty buckets emitted per key at one close (a jump in event time emits the
        last ones only).

    Examples
    --------
    >>> agg = Aggregator([FeatureSpec("n", "count"),
    ...                   FeatureSpec("err", "count", where="status >= 500")], 60)
    >>> recs = [{"status": 200}, {"status": 503}, {"status": 200}, {"status": 200}]
    >>> out, rejected = agg.add(recs, [0.0, 30.0, 190.0, 10.0])
    >>> out.start.tolist(), out.X.tolist(), rejected
    ([0.0, 60.0, 120.0], [[2.0, 1.0], [0.0, 0.0], [0.0, 0.0]], [(3, 'late', ...)])
    """

    def __init__(self, features: Sequence[FeatureSpec], bucket_span: float, *,
                 by: Sequence[str] = (), allowed_lateness: float = 0.0,
                 emit_empty: bool = True, max_keys: int = 10_000, max_samples: int = 3,
                 max_empty_run: int = 10_000) -> None:
        if not features:
            raise ConfigError("aggregate.features", "empty; give at least one feature, "
                              "e.g. {name: requests, fn: count}")
        if not 1.0 <= bucket_span <= MAX_TIME:
            raise ConfigError("aggregate.bucket_span", f"{bucket_span!r} s; use at least 1s")
        if not 0.0 <= allowed_lateness < MAX_TIME:
            raise ConfigError("aggregate.allowed_lateness",
                              f"{allowed_lateness!r} s; use 0 or more, e.g. 30s")
        if not 1 <= max_keys <= 1 << 20:
            raise ConfigError("aggregate.max_keys", f"{max_keys!r}; use 1 to {1 << 20}")
        self.features = tuple(features)
        self.span, self.lateness = float(bucket_span), float(allowed_lateness)
        self.by, self.emit_empty = tuple(by), bool(emit_empty)
        self.max_keys, self.max_samples = int(max_keys), int(max_samples)
        self.max_empty_run = int(max_empty_run)
        self.columns = tuple(c for f in self.features for c in f.columns)
        self._off, ops, self._sk_of, self._sk_features = _layout(self.features)
        self._ops = np.array(ops)
        self._init = np.where(self._ops == _MIN, np.inf,
                              np.where(self._ops == _MAX, -np.inf, 0.0))
        self._fields = sorted({f.field for f in self.features if f.field}
                              | {n for f in self.features if f.expression
                                 for n in f.expression.fields})
        self._mult = 1 << 20  # id = bucket * _mult + key code
        # mutable state (to_state)
        self.keys: list[tuple[str, ...]] = []
        self._key_index: dict[tuple[str, ...], int] = {}
        self._first_b = np.zeros(0, dtype=np.int64)
        self.vocab: dict[str, dict[str, int]] = {f.name: {} for f in self.features
                                                 if f.fn == "count_by"}
        self.newest = -math.inf
        self.closed_to: int | None = None  # every bucket < closed_to is closed
        self._ids = np.zeros(0, dtype=np.int64)
        self._acc = np.zeros((0, len(ops)))
        self._sketches: dict[int, list[Quantiles | Distinct]] = {}
        self._samples: dict[int, list[str]] = {}

    # -- one batch -------------------------------------------------------------------------
    def add(self, records: Sequence[Mapping[str, Any]], times: ArrayLike,
            lines: Sequence[str | bytes] | None = None) -> tuple[Buckets, list[Rejection]]:
        """Aggregate a batch; return the buckets it closed and the events it rejected.

        Parameters
        ----------
        records, times, lines
            The events (field -> value); their event times, epoch seconds, shape (n,);
            their raw lines (evidence), or None.

        Returns
        -------
        buckets : Buckets
            The buckets closed by the watermark after this batch.
        rejected : list of (index, reason, detail)
            ``wrong_type`` (not a mapping), ``bad_timestamp``, ``invalid_value``,
            ``invalid_key`` or ``late``.
        """
        reasons: dict[int, tuple[str, str]] = {}
        if not set(map(type, records)) <= {dict}:
            records = list(records)
            for i, r in enumerate(records):
                if not isinstance(r, Mapping):
                    reasons[i] = ("wrong_type", f"a {type(r).__name__}, not an object")
                    records[i] = {}
        vals = {f: col.field_values(records, f) for f in {*self._fields, *self.by}}
        return self._add(len(records), vals, times, lines, reasons)

    def add_columns(self, columns: Mapping[str, Sequence[Any]], times: ArrayLike,
                    lines: Sequence[str | bytes] | None = None
                    ) -> tuple[Buckets, list[Rejection]]:
        """:meth:`add` for events given as columns (``{field: values}``, each of shape
        (n,); a field left out is missing in every event): no dict per event.

        Examples
        --------
        >>> agg = Aggregator([FeatureSpec("err", "count", where="status >= 500")], 60)
        >>> agg.add_columns({"status": [200, 503, 500]}, [0.0, 30.0, 70.0])[0].X.tolist()
        [[1.0]]
        """
        n = len(np.asarray(times).reshape(-1))
        vals = {f: list(columns.get(f, [None] * n)) for f in {*self._fields, *self.by}}
        if any(len(v) != n for v in vals.values()):
            raise ValueError(f"{n} times, columns of other lengths; give one value each")
        return self._add(n, vals, times, lines, {})

    def _add(self, n: int, vals: dict[str, list[Any]], times: ArrayLike,
             lines: Sequence[str | bytes] | None, reasons: dict[int, tuple[str, str]]
             ) -> tuple[Buckets, list[Rejection]]:
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(t) != n or (lines is not None and len(lines) != n):
            raise ValueError(f"{n} records, {len(t)} times and "
                             f"{'no' if lines is None else len(lines)} lines; give one each")
        bad_t = ~np.isfinite(t) | (np.abs(t) >= MAX_TIME)
        for i in np.flatnonzero(bad_t).tolist():
            reasons.setdefault(i, ("bad_timestamp", f"event time {t[i]!r} is not epoch seconds"))
        nums: dict[str, NDArray[np.float64]] = {}
        for f in {s.field for s in self.features if s.fn in NUMERIC and s.field}:
            nums[f], bad = col.numbers(vals[f])
            for i in np.flatnonzero(bad).tolist():
                shown = repr(vals[f][i])[:60]
                reasons.setdefault(i, ("invalid_value", f"{f}={shown} is not a finite number"))
        codes = self._key_codes(n, vals, reasons)
        ok = np.ones(n, dtype=bool)
        ok[list(reasons)] = False
        b = np.floor(np.where(ok, t, 0.0) / self.span)
        run = np.maximum.accumulate(np.where(ok, t, -np.inf)) if n else t
        wm = np.maximum(run, self.newest) - self.lateness
        with np.errstate(invalid="ignore"):
            late = ok & ((b < np.floor(wm / self.span)) |
                         (b < (self.closed_to if self.closed_to is not None else -np.inf)))
        for i in np.flatnonzero(late).tolist():
            reasons[i] = ("late", f"event time {t[i]:.3f} is before the watermark "
                          f"{wm[i]:.3f} (newest event time - allowed_lateness "
                          f"{self.lateness:g}s): its bucket closed")
        ok &= ~late
        acc = np.flatnonzero(ok)
        if len(acc):
            self._accumulate(acc, b[acc].astype(np.int64), codes[acc], vals, nums, lines)
            self.newest = max(self.newest, float(t[acc].max()))
        out = self._close(self._watermark_bucket())
        return out, [(i, *reasons[i]) for i in sorted(reasons)]

    def flush(self) -> Buckets:
        """Close every open bucket (the end of a finite input); later events in them are late."""
        if not math.isfinite(self.newest):
            return Buckets.empty(self.columns, self.by)
        return self._close(math.floor(self.newest / self.span) + 1)

    def _watermark_bucket(self) -> int | None:
        w = self.newest - self.lateness
        return math.floor(w / self.span) if math.isfinite(w) else None

    def _key_codes(self, n: int, vals: dict[str, list[Any]],
                   reasons: dict[int, tuple[str, str]]) -> NDArray[np.int64]:
        if not self.by:
            if not self.keys:
                self.keys.append(())
                self._key_index[()] = 0
                self._first_b = np.full(1, np.iinfo(np.int64).max)
            return np.zeros(n, dtype=np.int64)
        cols = [[col.text(v) for v in vals[f]] for f in self.by]
        tuples = list(zip(*cols, strict=True)) if len(cols) > 1 else [(v,) for v in cols[0]]
        index, out = self._key_index, np.zeros(n, dtype=np.int64)
        for i, k in enumerate(tuples):  # one dict lookup per event; new keys are rare
            c = index.get(k)
            if c is None:
                if len(self.keys) >= self.max_keys:
                    reasons.setdefault(i, ("invalid_key", f"a new key {k!r} over max_keys="
                                           f"{self.max_keys}; raise aggregate.max_keys"))
                    continue
                c = index[k] = len(self.keys)
                self.keys.append(k)
            out[i] = c
        if len(self._first_b) < len(self.keys):
            grow = np.full(len(self.keys) - len(self._first_b), np.iinfo(np.int64).max)
            self._first_b = np.concatenate([self._first_b, grow])
        return out

    def _accumulate(self, acc: NDArray[np.intp], b: NDArray[np.int64],
                    codes: NDArray[np.int64], vals: dict[str, list[Any]],
                    nums: dict[str, NDArray[np.float64]],
                    lines: Sequence[str | bytes] | None) -> None:
        np.minimum.at(self._first_b, codes, b)
        uniq, inv = np.unique(b * self._mult + codes, return_inverse=True)
        g = len(uniq)
        part = np.tile(self._init, (g, 1))
        part[:, 0] = np.bincount(inv, minlength=g)
        sketches: list[list[Any]] = [[None] * len(self._sk_features) for _ in range(g)]
        everyone = len(acc) == len(next(iter(vals.values()), acc))
        sub = vals if everyone else {f: [v[i] for i in acc.tolist()] for f, v in vals.items()}
        for j, f in enumerate(self.features):
            m = np.ones(len(acc), dtype=bool)
            if f.expression is not None:
                m &= f.expression.mask({k: col.where_column(sub[k])
                                        for k in f.expression.fields})
            x = None
            if f.fn in NUMERIC:
                assert f.field is not None
                x = nums[f.field][acc]
                m &= ~np.isnan(x)
            texts = _picked(sub[f.field], m) if f.fn in ("distinct_count", "count_by") \
                and f.field else None
            for grp, values in reduce_feature(f, inv[m], g, None if x is None else x[m], texts,
                                              part, self._off[j], self.vocab.get(f.name)):
                sketches[grp][self._sk_of[j]] = values
        self._merge(uniq, part, sketches, self._samples_of(acc, inv, g, lines))

    def _samples_of(self, acc: NDArray[np.intp], inv: NDArray[np.intp], g: int,
                    lines: Sequence[str | bytes] | None) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in range(g)]
        if lines is None or not self.max_samples:
            return out
        order = np.argsort(inv, kind="stable")
        starts = np.searchsorted(inv[order], np.arange(g))
        rank = np.arange(len(order)) - starts[inv[order]]
        for k in order[rank < self.max_samples].tolist():
            line = lines[int(acc[k])]
            s = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
            out[int(inv[k])].append(s[:_SAMPLE_CHARS])
        return out

    def _merge(self, uniq: NDArray[np.int64], part: NDArray[np.float64],
               sketches: list[list[Any]], samples: list[list[str]]) -> None:
        pos = np.searchsorted(self._ids, uniq)
        found = pos < len(self._ids)
        found[found] = self._ids[pos[found]] == uniq[found]
        rows = pos[found]
        old, new = self._acc[rows], part[found]
        ops = self._ops
        self._acc[rows] = np.where(ops == _MIN, np.minimum(old, new),
                                   np.where(ops == _MAX, np.maximum(old, new), old + new))
        if not found.all():
            ids = np.concatenate([self._ids, uniq[~found]])
            order = np.argsort(ids, kind="stable")
            self._ids = ids[order]
            self._acc = np.vstack([self._acc, part[~found]])[order]
        for gi, bid in enumerate(uniq.tolist()):
            if self._sk_features:
                have = self._sketches.get(bid)
                if have is None:
                    have = self._sketches[bid] = [
                        Quantiles() if self.features[j].fn == "quantile" else Distinct()
                        for j in self._sk_features]
                for sk, values in zip(have, sketches[gi], strict=True):
                    if values is not None:  # the bucket's own sketch: no merges
                        sk.update(values)
            if samples[gi]:
                kept = self._samples.setdefault(bid, [])
                kept.extend(samples[gi][: self.max_samples - len(kept)])

    # -- closing ---------------------------------------------------------------------------
    def _close(self, b_close: int | None) -> Buckets:
        if b_close is None or (self.closed_to is not None and b_close <= self.closed_to):
            return Buckets.empty(self.columns, self.by)
        k = int(np.searchsorted(self._ids, b_close * self._mult))
        ids, acc = self._ids[:k], self._acc[:k]
        self._ids, self._acc = self._ids[k:], self._acc[k:]
        if self.emit_empty and self.keys:
            lo = np.maximum(self._first_b, b_close - self.max_empty_run)
            if self.closed_to is not None:
                lo = np.maximum(lo, self.closed_to)
            lengths = np.clip(b_close - lo, 0, None)
            total = int(lengths.sum())
            if total:
                key = np.repeat(np.arange(len(self.keys)), lengths)
                step = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                e_ids = (np.repeat(lo, lengths) + step) * self._mult + key
                e_ids = e_ids[~np.isin(e_ids, ids)]
                ids = np.concatenate([ids, e_ids])
                acc = np.vstack([acc, np.tile(self._init, (len(e_ids), 1))])
                order = np.argsort(ids, kind="stable")
                ids, acc = ids[order], acc[order]
        self.closed_to = b_close
        return self._buckets(ids, acc)

    def _buckets(self, ids: NDArray[np.int64], acc: NDArray[np.float64]) -> Buckets:
        b, codes = np.divmod(ids, self._mult)
        X = np.empty((len(ids), len(self.columns)))
        sk = [self._sketches.pop(i, None) for i in ids.tolist()]
        c = 0
        for j, f in enumerate(self.features):
            o = self._off[j]
            if f.fn in ("count", "sum", "min", "max"):
                v = acc[:, o]
                X[:, c] = np.where(np.isinf(v), np.nan, v) if f.fn in ("min", "max") else v
            elif f.fn == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    X[:, c] = np.where(acc[:, o + 1] > 0, acc[:, o] / acc[:, o + 1], np.nan)
            elif f.fn == "count_by":
                assert f.top is not None
                X[:, c:c + f.top + 1] = acc[:, o:o + f.top + 1]
            else:
                s, empty = self._sk_of[j], (np.nan if f.fn == "quantile" else 0.0)
                X[:, c] = [empty if row is None else _value(row[s], f) for row in sk]
            c += len(f.columns)
        start = b.astype(np.float64) * self.span
        return Buckets(self.columns, X, start, start + self.span,
                       [self.keys[i] for i in codes.tolist()],
                       acc[:, 0].astype(np.int64),
                       [self._samples.pop(i, []) for i in ids.tolist()],
                       {k: list(v) for k, v in self.vocab.items()}, self.by)

    # -- state -----------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The open buckets, keys, vocabularies and watermark as plain JSON-able values."""
        from streamem.aggregate.state import dump

        return dump(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Aggregator:
        """Rebuild an aggregator that continues exactly where :meth:`to_state` was taken."""
        from streamem.aggregate.state import load

        return load(cls, state)


def _picked(vals: list[Any], keep: NDArray[np.bool_]) -> list[str]:
    """The categorical texts of the kept values."""
    return col.texts(vals if keep.all() else list(compress(vals, keep.tolist())))


def _value(s: Any, f: FeatureSpec) -> float:
    if isinstance(s, Quantiles):
        assert f.q is not None
        return s.quantile(float(f.q))
    return s.estimate() if isinstance(s, Distinct) else float("nan")
