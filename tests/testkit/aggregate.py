"""A naive, event-at-a-time reference of :class:`streamem.aggregate.Aggregator` (plain Python,
exact quantiles and distinct counts), and a generator of small hostile-ish log streams."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamem.aggregate import FeatureSpec


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    return float(v)


def naive(features: Sequence[FeatureSpec], span: float, records: Sequence[Mapping[str, Any]],
          times: Sequence[float], *, by: Sequence[str] = (), lateness: float = 0.0,
          emit_empty: bool = True) -> tuple[list[tuple[float, tuple[str, ...], list[float]]],
                                            list[int]]:
    """``(buckets, late)``: (start, key, values) per bucket after a flush, in the order
    (start, key by first appearance); ``late`` are the indices of late events."""
    newest = -math.inf
    keys: list[tuple[str, ...]] = []
    first: dict[tuple[str, ...], int] = {}
    events: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    late: list[int] = []
    vocab: dict[str, list[str]] = {f.name: [] for f in features if f.fn == "count_by"}
    for i, (r, t) in enumerate(zip(records, times, strict=True)):
        b = math.floor(t / span)
        if b < math.floor((newest - lateness) / span) if math.isfinite(newest) else False:
            late.append(i)
            continue
        newest = max(newest, t)
        k = tuple("" if r.get(f) is None else str(r.get(f)) for f in by)
        if k not in first:
            keys.append(k)
            first[k] = b
        first[k] = min(first[k], b)
        events.setdefault((b, k), []).append(i)
        for f in features:
            if f.fn == "count_by" and (f.expression is None or f.expression(r)):
                v = "" if r.get(f.field or "") is None else str(r.get(f.field or ""))
                if v not in vocab[f.name] and len(vocab[f.name]) < (f.top or 0):
                    vocab[f.name].append(v)
    if not math.isfinite(newest):
        return [], late
    last = math.floor(newest / span)
    cells = sorted(events) if not emit_empty else sorted(
        (b, k) for k in keys for b in range(first[k], last + 1))
    order = {k: i for i, k in enumerate(keys)}
    cells.sort(key=lambda c: (c[0], order[c[1]]))
    out = []
    for b, k in cells:
        idx = events.get((b, k), [])
        row: list[float] = []
        for f in features:
            sel = [records[i] for i in idx if f.expression is None or f.expression(records[i])]
            vals = [_num(r.get(f.field or "")) for r in sel] if f.fn in (
                "sum", "mean", "min", "max", "quantile") else []
            x = [v for v in vals if v is not None]
            if f.fn == "count":
                row.append(float(len(sel)))
            elif f.fn == "sum":
                row.append(float(sum(x)))
            elif f.fn == "mean":
                row.append(float(np.mean(x)) if x else math.nan)
            elif f.fn == "min":
                row.append(min(x) if x else math.nan)
            elif f.fn == "max":
                row.append(max(x) if x else math.nan)
            elif f.fn == "quantile":
                s = sorted(x)
                row.append(s[max(math.ceil((f.q or 0) * len(s)), 1) - 1] if s else math.nan)
            elif f.fn == "distinct_count":
                row.append(float(len({"" if r.get(f.field or "") is None
                                      else str(r.get(f.field or "")) for r in sel})))
            else:
                counts = [0.0] * ((f.top or 0) + 1)
                for r in sel:
                    v = "" if r.get(f.field or "") is None else str(r.get(f.field or ""))
                    counts[vocab[f.name].index(v) if v in vocab[f.name] else -1] += 1
                row += counts
        out.append((b * span, k, row))
    return out, late


def stream(seed: int, n: int) -> tuple[list[dict[str, Any]], np.ndarray, list[str]]:
    """``n`` access-log-like records (some out of order, some late), times and lines."""
    rng = np.random.default_rng(seed)
    t = 1_000_000.0 + np.cumsum(rng.exponential(4.0, n))
    t[rng.random(n) < 0.15] -= 50.0
    recs = [{"status": int(rng.choice([200, 200, 404, 500, 503])),
             "bytes": int(rng.integers(0, 5000)),
             "rt": None if rng.random() < 0.2 else round(float(rng.random()), 3),
             "ip": f"10.0.0.{rng.integers(6)}",
             "method": str(rng.choice(["GET", "POST", "PUT", "DELETE"])),
             "svc": str(rng.choice(["web", "api"]))} for _ in range(n)]
    lines = [f"{i} {r['method']} {r['status']}" for i, r in enumerate(recs)]
    return recs, t, lines


ALL_FEATURES = [
    FeatureSpec("n", "count"), FeatureSpec("err", "count", where="status >= 500"),
    FeatureSpec("bytes", "sum", field="bytes"), FeatureSpec("rt_mean", "mean", field="rt"),
    FeatureSpec("rt_min", "min", field="rt"), FeatureSpec("rt_max", "max", field="rt"),
    FeatureSpec("p90", "quantile", field="rt", q=0.9),
    FeatureSpec("clients", "distinct_count", field="ip"),
    FeatureSpec("methods", "count_by", field="method", top=2,
                where="status != 404"),
]
