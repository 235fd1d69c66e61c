"""IncidentTracker: hysteresis worked by hand."""

from __future__ import annotations

import pytest

from streamem.alerting.incidents import IncidentTracker
from streamem.alerting.records import AnomalyRecord
from streamem.errors import ConfigError


def rec(i: int, severity: float) -> AnomalyRecord:
    return AnomalyRecord(id=f"f:0:{i}", key="k", timestamp=float(i), score=10.0,
                         tail_probability=1e-10, severity=severity, threshold=8.0)


def statuses(transitions: list) -> list[str]:  # type: ignore[type-arg]
    return [t.status for t in transitions]


def test_below_open_level_never_opens() -> None:
    t = IncidentTracker(open_severity=75, resolve_severity=50, cooldown_seconds=10)
    assert all(t.observe("k", s, now=float(i)) == [] for i, s in enumerate([74.9, 60, 50, 10]))
    assert t.open_incidents() == [] and t.tick(1e6) == []


def test_opens_at_exactly_the_open_level() -> None:
    t = IncidentTracker(75, 50, 10)
    [incident] = t.observe("k", 75.0, now=3.0, record=rec(3, 75.0))
    assert (incident.status, incident.key, incident.started_at) == ("firing", "k", 3.0)
    assert incident.ended_at is None and incident.count == 1
    assert incident.last is not None and incident.last.id == "f:0:3"


def test_hovering_between_levels_keeps_it_open_without_flapping() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=10)
    assert statuses(t.observe("k", 80, now=0)) == ["firing"]
    # 20 events between the levels, 5 s apart: each refreshes the cool-down
    for i in range(1, 21):
        assert t.observe("k", 60 + (i % 10), now=5.0 * i) == []
    [open_] = t.open_incidents()
    assert open_.count == 21 and open_.max_severity == 80
    # a second crossing of the open level does not open a second incident
    assert t.observe("k", 99, now=101.0) == []
    assert t.open_incidents()[0].max_severity == 99
    assert t.observe("k", 50, now=111.0) == []  # exactly the lower level is still active
    assert t.tick(120.9) == [] and statuses(t.tick(121.0)) == ["resolved"]


def test_resolves_only_after_a_full_cooldown_below_the_lower_level() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=10)
    t.observe("k", 90, now=0, record=rec(0, 90))
    t.observe("k", 55, now=4, record=rec(4, 55))   # last active at 4
    assert t.observe("k", 49.9, now=8) == []       # below, 4 s in
    assert t.observe("k", 10, now=13.9) == []      # 9.9 s in
    [resolved] = t.observe("k", 10, now=14.0)      # 10 s in
    assert resolved.status == "resolved" and resolved.ended_at == 14.0
    assert resolved.count == 2 and resolved.max_severity == 90
    assert resolved.last is not None and resolved.last.id == "f:0:4"
    assert resolved.started_at == 0 and resolved.id == "k:0"
    assert t.open_incidents() == []


def test_tick_resolves_quiet_keys_with_the_cooldown_end_time() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=300)
    t.observe("a", 80, now=1000)
    t.observe("b", 95, now=1100)
    assert t.tick(1299) == []
    [a] = t.tick(1300)
    assert (a.key, a.status, a.ended_at) == ("a", "resolved", 1300)
    [b] = t.tick(5000)  # ticked late: the end time is still when the cool-down ran out
    assert (b.key, b.ended_at) == ("b", 1400)
    assert t.tick(9999) == []


def test_reopening_after_resolution_gives_a_new_incident() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=10)
    [first] = t.observe("k", 80, now=0)
    old, new = t.observe("k", 85, now=50)  # the old one's cool-down ran out at 10
    assert (old.status, old.id, old.ended_at) == ("resolved", first.id, 10)
    assert (new.status, new.started_at) == ("firing", 50) and new.id != first.id
    # between the levels after the cool-down: the old resolves, no new one opens
    t2 = IncidentTracker(75, 50, cooldown_seconds=10)
    t2.observe("k", 80, now=0)
    assert statuses(t2.observe("k", 60, now=30)) == ["resolved"]
    assert t2.open_incidents() == []


def test_keys_are_independent_and_none_is_a_key() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=10)
    t.observe("a", 80, now=0)
    t.observe(None, 80, now=5)
    assert sorted(str(i.key) for i in t.open_incidents()) == ["None", "a"]
    assert [i.key for i in t.tick(10)] == ["a"]
    assert [i.key for i in t.tick(15)] == [None]


def test_zero_cooldown_and_equal_levels() -> None:
    t = IncidentTracker(60, 60, cooldown_seconds=0)
    assert statuses(t.observe("k", 60, now=0)) == ["firing"]
    assert t.observe("k", 70, now=0) == []  # an active event keeps it open
    assert statuses(t.observe("k", 59, now=0)) == ["resolved"]
    assert statuses(t.observe("k", 60, now=0)) == ["firing"]
    assert statuses(t.observe("k", 61, now=1)) == ["resolved", "firing"]  # any gap resolves


@pytest.mark.parametrize(("open_", "resolve", "cooldown"), [(50, 75, 1), (75, -1, 1),
                                                             (101, 50, 1), (75, 50, -1)])
def test_bad_settings(open_: float, resolve: float, cooldown: float) -> None:
    with pytest.raises(ConfigError):
        IncidentTracker(open_, resolve, cooldown)


# -- bounded memory and cost under hostile key cardinality -------------------------------------


class _CountingTracker(IncidentTracker):
    """Counts how many open incidents a call looks at (the per-batch cost)."""

    looked = 0

    def _expired(self, state, now):  # type: ignore[no-untyped-def]
        self.looked += 1
        return super()._expired(state, now)


def test_tick_looks_only_at_the_incidents_that_are_due() -> None:
    t = _CountingTracker(75, 50, cooldown_seconds=300, max_open=100_000)
    for i in range(20_000):
        t.observe(f"k{i}", 90.0, now=float(i % 100))
    t.looked = 0
    for step in range(50):  # 50 batches, none due: nothing is scanned
        assert t.tick(now=200.0 + step) == []
    assert t.looked == 0
    resolved = t.tick(now=310.0)  # due: those opened at 0..10
    assert len(resolved) == 11 * 200 and t.looked == len(resolved)
    assert [i.started_at for i in resolved] == sorted(i.started_at for i in resolved)
    assert all(i.ended_at == i.started_at + 300 for i in resolved)


def test_a_refreshed_incident_is_not_resolved_at_its_old_deadline() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=10, max_open=10)
    t.observe("k", 90.0, now=0.0)
    t.observe("k", 60.0, now=8.0)  # keeps it alive: new deadline 18
    assert t.tick(now=12.0) == []
    [done] = t.tick(now=18.0)
    assert (done.status, done.ended_at, done.count) == ("resolved", 18.0, 2)
    assert t.tick(now=1e9) == []  # its old heap entry is gone, not resolved twice


def test_opening_beyond_the_bound_evicts_the_least_recently_updated() -> None:
    t = IncidentTracker(75, 50, cooldown_seconds=300, max_open=3)
    for k, now in (("a", 0.0), ("b", 1.0), ("c", 2.0)):
        t.observe(k, 90.0, now=now)
    t.observe("a", 60.0, now=3.0)  # a is updated: b is now the least recently updated
    out = t.observe("d", 80.0, now=4.0, record=rec(4, 80.0))
    assert [(i.key, i.status) for i in out] == [("b", "resolved"), ("d", "firing")]
    assert out[0].ended_at == 4.0 and out[0].id == "b:1000"  # a proper end at eviction time
    assert sorted(str(i.key) for i in t.open_incidents()) == ["a", "c", "d"]
    assert t.evicted == 1
    # a quiet event below the resolve level does not count as an update: c goes next
    t.observe("c", 10.0, now=5.0)
    assert next(i.key for i in t.observe("e", 90.0, now=6.0)) == "c"
    # a later event of an evicted key opens a new incident
    assert [(i.key, i.status) for i in t.observe("b", 90.0, now=7.0)] == [
        ("a", "resolved"), ("b", "firing")]
    assert t.evicted == 3


def test_a_million_distinct_keys_keep_the_structures_bounded() -> None:
    """10^6 anomalous keys at a constant timestamp: none ever resolves by time, so only the
    bound keeps the tracker (and its deadline heap) from growing with the keys."""
    bound = 10_000
    t = IncidentTracker(75, 50, cooldown_seconds=300, max_open=bound)
    resolved = 0
    for i in range(1_000_000):
        resolved += len(t.observe(f"key-{i}", 90.0, now=0.0)) - 1  # [evicted?, firing]
        if i % 512 == 0:
            assert t.tick(now=0.0) == []
        if i % 100_000 == 0:
            assert len(t._open) <= bound and len(t._due) <= 2 * bound + 1024 + 1, i
    assert len(t.open_incidents()) == bound and len(t._due) <= 2 * bound + 1024 + 1
    assert resolved == t.evicted == 1_000_000 - bound


def test_memory_stops_growing_with_the_number_of_keys() -> None:
    """tracemalloc: after the warm-up, 20x more distinct keys allocate nothing that stays
    (a leak of even 50 bytes per key would show as ~9 MB)."""
    import tracemalloc

    bound = 2_000
    t = IncidentTracker(75, 50, cooldown_seconds=300, max_open=bound)
    tracemalloc.start()
    try:
        for i in range(200_000):
            now = i * 1e-3  # advancing, but far slower than the cool-down: evictions
            t.observe(f"key-{i}", 90.0, now=now, record=rec(i, 90.0))
            if i % 512 == 0:
                t.tick(now)
            if i == 10_000:
                at_warm, _ = tracemalloc.get_traced_memory()
        at_end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert t.evicted == 200_000 - bound
    assert at_end - at_warm < 2**20, (at_warm, at_end)


def test_max_open_is_validated() -> None:
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(ConfigError, match=r"alerting\.max_open_incidents"):
            IncidentTracker(75, 50, 10, max_open=bad)  # type: ignore[arg-type]


def test_the_bound_is_a_config_key_and_evictions_reach_the_metric() -> None:
    from prometheus_client import CollectorRegistry

    from streamem.config import parse_config
    from streamem.features import FeatureExtractor
    from streamem.metrics import Metrics
    from streamem.runtime.build import new_detector
    from streamem.runtime.lane import Lane
    from streamem.runtime.pipeline import Pipeline

    base = {"source": {"type": "stdin"}, "fields": {"features": ["a"]}}
    with pytest.raises(ConfigError, match=r"alerting\.max_open_incidents"):
        parse_config({**base, "alerting": {"max_open_incidents": 0}})
    assert parse_config(base).alerting.max_open_incidents == 10_000
    cfg = parse_config({**base, "alerting": {"max_open_incidents": 2}})
    metrics = Metrics(CollectorRegistry())
    lane = Lane("global", new_detector(cfg))
    pipe = Pipeline(cfg, FeatureExtractor(["a"]), None, None, metrics, lambda p: lane)
    assert pipe.incidents.max_open == 2
    for i, key in enumerate("abcd"):
        pipe.incidents.observe(key, 99.0, now=float(i))
    pipe.tick(now=4.0)
    assert metrics.value("streamem_incidents_evicted_total") == 2.0
    pipe.tick(now=5.0)  # reported once
    assert metrics.value("streamem_incidents_evicted_total") == 2.0
