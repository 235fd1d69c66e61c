"""IncidentTracker: hysteresis worked by hand."""

from __future__ import annotations

import pytest

from streamem.errors import ConfigError
from streamem.incidents import IncidentTracker
from streamem.types import AnomalyRecord


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
