"""Lateness, the watermark, emit_empty and flush."""

from __future__ import annotations

import numpy as np

from streamem.aggregate import Aggregator, FeatureSpec

COUNT = [FeatureSpec("n", "count")]


def test_an_event_is_late_once_the_watermark_passed_its_bucket_end() -> None:
    agg = Aggregator(COUNT, 60, allowed_lateness=30)
    out, rej = agg.add([{}] * 4, [10, 95, 59.9, 0])  # watermark 65 after 95: bucket 0 closed
    assert [(i, r) for i, r, _ in rej] == [(2, "late"), (3, "late")]
    assert "allowed_lateness 30s" in rej[0][2]
    assert out.start.tolist() == [0.0] and out.X.tolist() == [[1.0]]


def test_within_allowed_lateness_an_old_event_still_counts() -> None:
    agg = Aggregator(COUNT, 60, allowed_lateness=30)
    out, rej = agg.add([{}] * 3, [10, 85, 50])  # watermark 55 < 60: bucket 0 open
    assert rej == [] and len(out) == 0
    out, _ = agg.add([{}], [150])
    assert out.start.tolist() == [0.0, 60.0] and out.X[:, 0].tolist() == [2.0, 1.0]


def test_late_depends_on_earlier_events_only_not_on_later_ones_in_the_batch() -> None:
    one = Aggregator(COUNT, 60)
    _, rej = one.add([{}] * 2, [10, 500])  # 10 comes first: on time
    assert rej == []


def test_emit_empty_fills_silence_for_every_key_and_can_be_off() -> None:
    feats = [FeatureSpec("n", "count"), FeatureSpec("m", "mean", field="x")]
    recs = [{"svc": "a", "x": 1}, {"svc": "b", "x": 2}, {"svc": "a", "x": 3}]
    agg = Aggregator(feats, 10, by=["svc"])
    out, _ = agg.add(recs, [1, 2, 35])
    got = list(zip(out.start.tolist(), out.keys, out.X[:, 0].tolist(), strict=True))
    assert got == [(0.0, ("a",), 1.0), (0.0, ("b",), 1.0), (10.0, ("a",), 0.0),
                   (10.0, ("b",), 0.0), (20.0, ("a",), 0.0), (20.0, ("b",), 0.0)]
    assert np.isnan(out.X[2:, 1]).all() and out.events.tolist() == [1, 1, 0, 0, 0, 0]
    assert out.evidence(2) == {"bucket_start": 10.0, "bucket_end": 20.0,
                               "key": {"svc": "a"}, "events": 0, "samples": []}
    quiet = Aggregator(feats, 10, by=["svc"], emit_empty=False)
    out, _ = quiet.add(recs, [1, 2, 35])
    assert out.start.tolist() == [0.0, 0.0]


def test_a_key_gets_empty_buckets_only_from_its_first_event_on() -> None:
    agg = Aggregator(COUNT, 10, by=["svc"])
    out, _ = agg.add([{"svc": "a"}, {"svc": "b"}, {"svc": "a"}], [1, 25, 41])
    assert [(s, k[0]) for s, k in zip(out.start.tolist(), out.keys, strict=True)] == [
        (0.0, "a"), (10.0, "a"), (20.0, "a"), (20.0, "b"), (30.0, "a"), (30.0, "b")]


def test_a_jump_in_event_time_emits_at_most_max_empty_run_buckets_per_key() -> None:
    agg = Aggregator(COUNT, 1, max_empty_run=5)
    out, rej = agg.add([{}] * 2, [0, 1e9])  # 31 years later
    assert rej == [] and out.events.tolist() == [1, 0, 0, 0, 0, 0]
    assert out.start.tolist() == [0.0, *(1e9 - k for k in range(5, 0, -1))]


def test_flush_closes_every_open_bucket_and_later_events_there_are_late() -> None:
    agg = Aggregator(COUNT, 60, allowed_lateness=120)
    out, _ = agg.add([{}] * 2, [0, 70])
    assert len(out) == 0
    last = agg.flush()
    assert last.start.tolist() == [0.0, 60.0] and len(agg.flush()) == 0
    _, rej = agg.add([{}], [100])
    assert rej[0][1] == "late"
