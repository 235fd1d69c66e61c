"""Every bucket function against the naive event-at-a-time reference (testkit.aggregate)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit.aggregate import ALL_FEATURES, naive, stream

from streamem.aggregate import Aggregator, Buckets, FeatureSpec


def _run(agg: Aggregator, recs, t, lines=None, batch=7) -> tuple[Buckets, list]:
    outs, rejected = [], []
    for i in range(0, len(recs), batch):
        out, rej = agg.add(recs[i:i + batch], t[i:i + batch],
                           None if lines is None else lines[i:i + batch])
        outs.append(out)
        rejected += [(i + j, reason) for j, reason, _ in rej]
    outs.append(agg.flush())
    return Buckets.concat(outs), rejected


def _compare(got: Buckets, want, distinct_col: int | None = None) -> None:
    assert [(s, k) for s, k, _ in want] == list(zip(got.start.tolist(), got.keys, strict=True))
    W = np.array([row for _, _, row in want])
    if distinct_col is not None:  # HyperLogLog: near exact for small counts
        np.testing.assert_allclose(got.X[:, distinct_col], W[:, distinct_col], rtol=0.02)
        W[:, distinct_col] = got.X[:, distinct_col]
    np.testing.assert_allclose(got.X, W, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("by", [(), ("svc",)])
def test_every_function_matches_the_naive_reference(by) -> None:
    recs, t, lines = stream(0, 400)
    agg = Aggregator(ALL_FEATURES, 30, by=by, allowed_lateness=20)
    got, rejected = _run(agg, recs, t, lines)
    want, late = naive(ALL_FEATURES, 30, recs, t, by=by, lateness=20)
    assert [i for i, r in rejected if r == "late"] == late and late
    _compare(got, want, distinct_col=agg.columns.index("clients"))
    assert got.columns[-3:] == ("methods[0]", "methods[1]", "methods[other]")
    assert got.labels["methods"] == [recs[i]["method"] for i in range(len(recs))
                                     if recs[i]["status"] != 404][:1] + got.labels["methods"][1:]
    assert (got.events == got.X[:, 0]).all()


def test_samples_are_the_first_lines_of_each_bucket() -> None:
    recs, t, lines = stream(1, 200)
    agg = Aggregator([FeatureSpec("n", "count")], 60, by=["svc"], max_samples=3)
    got, rejected = _run(agg, recs, t, lines)
    late = {i for i, r in rejected}
    for s, k, sample in zip(got.start.tolist(), got.keys, got.samples, strict=True):
        mine = [lines[i] for i in range(len(recs)) if i not in late
                and math.floor(t[i] / 60) * 60 == s and recs[i]["svc"] == k[0]]
        assert sample == mine[:3]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 120), st.sampled_from([5.0, 30.0, 97.0]),
       st.sampled_from([0.0, 10.0, 60.0]), st.integers(1, 50), st.booleans())
def test_any_stream_matches_the_reference(seed, n, span, lateness, batch, emit_empty) -> None:
    recs, t, _ = stream(seed, n)
    agg = Aggregator(ALL_FEATURES, span, by=["svc"], allowed_lateness=lateness,
                     emit_empty=emit_empty)
    got, rejected = _run(agg, recs, t, batch=batch)
    want, late = naive(ALL_FEATURES, span, recs, t, by=["svc"], lateness=lateness,
                       emit_empty=emit_empty)
    assert [i for i, _ in rejected] == late
    _compare(got, want, distinct_col=agg.columns.index("clients"))
    # invariants: every accepted event is in exactly one bucket; buckets are ordered
    assert got.events.sum() == n - len(late)
    assert (np.diff(got.start) >= 0).all() and (got.end - got.start == span).all()


def test_quantile_within_the_kll_rank_error_beyond_k_values() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=20_000)
    recs = [{"v": float(v)} for v in x]
    agg = Aggregator([FeatureSpec(f"q{q}", "quantile", field="v", q=q)
                      for q in (0.5, 0.95, 0.99)], 3600)
    got, _ = _run(agg, recs, np.zeros(len(x)), batch=1000)
    for j, q in enumerate((0.5, 0.95, 0.99)):
        rank = (x <= got.X[0, j]).mean()
        assert abs(rank - q) <= 0.0165 + 1e-9, (q, rank)  # KLL k=200, 99 % bound


def test_distinct_count_many_values_within_hll_error() -> None:
    recs = [{"ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"} for i in range(50_000)]
    recs += recs[:10_000]  # repeats do not count
    agg = Aggregator([FeatureSpec("clients", "distinct_count", field="ip")], 60)
    got, _ = _run(agg, recs, np.zeros(len(recs)), batch=4096)
    assert abs(got.X[0, 0] - 50_000) / 50_000 < 0.05


def test_count_by_top_columns_keep_first_values_and_count_the_rest_as_other() -> None:
    agg = Aggregator([FeatureSpec("m", "count_by", field="method", top=2)], 60)
    recs = [{"method": m} for m in ["GET", "GET", "POST", "PUT", None, "GET", "DELETE"]]
    out, _ = agg.add(recs, [0, 1, 2, 3, 4, 5, 70])
    assert out.X.tolist() == [[3.0, 1.0, 2.0]] and out.labels == {"m": ["GET", "POST"]}
    out, _ = agg.add([{"method": "PUT"}], [200])  # columns never move to a new value
    assert out.X.tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert out.labels == {"m": ["GET", "POST"]}


def test_numeric_functions_skip_missing_values_and_empty_means_are_nan() -> None:
    feats = [FeatureSpec("s", "sum", field="x"), FeatureSpec("m", "mean", field="x"),
             FeatureSpec("lo", "min", field="x"), FeatureSpec("q", "quantile", field="x",
                                                                q=0.5)]
    agg = Aggregator(feats, 10)
    out, rej = agg.add([{"x": None}, {"y": 1}, {"x": "2.5"}, {"x": None}], [1, 2, 3, 15])
    assert rej == [] and out.X.tolist() == [[2.5, 2.5, 2.5, 2.5]]
    last = agg.flush()
    assert last.X[0, 0] == 0 and np.isnan(last.X[0, 1:]).all()


def test_quantile_is_exact_and_reproducible_up_to_exact_max_values() -> None:
    import json

    from streamem.aggregate.sketches import EXACT_MAX, Quantiles

    rng = np.random.default_rng(11)
    x = rng.lognormal(size=EXACT_MAX)
    feats = [FeatureSpec("p95", "quantile", field="v", q=0.95),
             FeatureSpec("p50", "quantile", field="v", q=0.5)]
    recs = [{"v": float(v)} for v in x]
    agg = Aggregator(feats, 3600)
    agg.add(recs[:700], np.zeros(700))
    agg = Aggregator.from_state(json.loads(json.dumps(agg.to_state())))  # a restart
    agg.add(recs[700:], np.zeros(len(x) - 700))
    got = agg.flush().X[0]
    s = np.sort(x)
    assert got.tolist() == [s[math.ceil(0.95 * len(x)) - 1], s[math.ceil(0.5 * len(x)) - 1]]
    q = Quantiles()
    q.update(x[:1000])
    assert q.to_text().startswith("exact:")
    q.update(x[1000:])
    q.update(np.array([1.0]))  # one more than EXACT_MAX: now a KLL sketch
    assert q.to_text().startswith("kll:") and q.n == EXACT_MAX + 1
    rank = (np.append(x, 1.0) <= q.quantile(0.95)).mean()
    assert abs(rank - 0.95) <= 0.0165
