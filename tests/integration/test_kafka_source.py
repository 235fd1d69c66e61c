"""KafkaSource against the real test broker: positions, seek, commit, missing topic, rebalance."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from testkit.broker import create_topic, produce, unique_name

from streamem.errors import StateError
from streamem.events import RawEvent
from streamem.sources.base import Source
from streamem.sources.kafka import KafkaSource

pytestmark = pytest.mark.kafka



def source(bootstrap: str, topic: str, group: str, name: str = "kafka") -> KafkaSource:
    """A source with test-friendly timings (short sessions, fast metadata refresh)."""
    return KafkaSource([bootstrap], topic, group, name=name, session_timeout_ms=6000,
                       heartbeat_interval_ms=500, metadata_max_age_ms=1000)


def poll_until(source: KafkaSource, n: int, timeout: float = 30.0,
               max_events: int = 100) -> list[RawEvent]:
    """Poll until ``n`` events arrived (or fail after ``timeout`` seconds)."""
    events: list[RawEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < n and time.monotonic() < deadline:
        events.extend(source.poll(max_events, 0.5))
    assert len(events) >= n, f"got {len(events)} of {n} events in {timeout} s"
    return events


def committed(bootstrap: str, group: str, topic: str,
              partitions: Sequence[int]) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        consumer.close(autocommit=False)


def test_round_trip_positions_keys_timestamps(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("src-rt"), partitions=2)
    before = time.time()
    produce(kafka_bootstrap, topic, [f'{{"i": {i}}}'.encode() for i in range(5)], partition=0,
            key=b"pump-1")
    produce(kafka_bootstrap, topic, [b'{"i": 99}'], partition=1)
    with source(kafka_bootstrap, topic, unique_name("g")) as src:
        assert isinstance(src, Source)
        events = poll_until(src, 6)
    by_part = {p: [e for e in events if e.position.partition == p] for p in (0, 1)}
    assert [e.position.offset for e in by_part[0]] == [0, 1, 2, 3, 4]
    assert [e.next_offset for e in by_part[0]] == [1, 2, 3, 4, 5]
    assert [e.payload for e in by_part[0]] == [f'{{"i": {i}}}'.encode() for i in range(5)]
    assert {e.key for e in by_part[0]} == {b"pump-1"}
    assert by_part[1][0].key is None and by_part[1][0].payload == b'{"i": 99}'
    assert all(e.position.topic == topic for e in events)
    assert events[0].position.id == f"{topic}:{events[0].position.partition}:0"
    assert all(e.timestamp is not None and before - 5 < e.timestamp < time.time() + 5
               for e in events)
    assert src.stats.events == 6 and src.stats.rebalances >= 1


def test_seek_resumes_exactly_and_commit_only_what_was_passed(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("src-seek"), partitions=2)
    produce(kafka_bootstrap, topic, [str(i).encode() for i in range(10)], partition=0)
    produce(kafka_bootstrap, topic, [str(i).encode() for i in range(10)], partition=1)
    group = unique_name("g")
    with source(kafka_bootstrap, topic, group) as src:
        src.seek({0: 7, 1: 3})  # as the daemon does with a restored snapshot, before polling
        events = poll_until(src, 10)
        first = {p: min(e.position.offset for e in events if e.position.partition == p)
                 for p in (0, 1)}
        assert first == {0: 7, 1: 3}
        assert len(events) == 3 + 7  # nothing before the seek positions, nothing twice
        # nothing is committed until the daemon says its checkpoint is durable
        assert committed(kafka_bootstrap, group, topic, [0, 1]) == {0: None, 1: None}
        src.commit({0: 9, 1: 5})
        assert committed(kafka_bootstrap, group, topic, [0, 1]) == {0: 9, 1: 5}
        assert src.stats.commits == 1 and src.stats.commit_failures == 0
        assert src.lag() == {0: 0, 1: 0}
        produce(kafka_bootstrap, topic, [b"x", b"y"], partition=1)
        deadline = time.monotonic() + 10
        while src.lag().get(1) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert src.lag() == {0: 0, 1: 2}
    # a new member of the group without a checkpoint resumes from the committed offsets
    with source(kafka_bootstrap, topic, group) as src2:
        events = poll_until(src2, 1 + 7)
        first = {p: min(e.position.offset for e in events if e.position.partition == p)
                 for p in (0, 1)}
        assert first == {0: 9, 1: 5}


def test_topic_that_does_not_exist_yet_then_appears(kafka_bootstrap: str) -> None:
    topic = unique_name("src-late")
    with source(kafka_bootstrap, topic, unique_name("g")) as src:
        for _ in range(4):
            assert src.poll(10, 0.5) == []
        assert src.stats.missing_topic >= 1
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:  # the source must not have auto-created it (the broker allows auto-creation)
            assert topic not in admin.list_topics()
        finally:
            admin.close()
        create_topic(kafka_bootstrap, topic, partitions=1)
        produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
        events = poll_until(src, 3, timeout=60)
        assert [e.payload for e in events] == [b"a", b"b", b"c"]


class Recorder:
    """A daemon-like listener: records calls, commits on revoke, seeks to fixed offsets."""

    def __init__(self, source: KafkaSource, seek_to: int) -> None:
        self.source, self.seek_to = source, seek_to
        self.calls: list[tuple[str, list[int]]] = []
        self.last: dict[int, int] = {}

    def on_partitions_revoked(self, partitions: Sequence[int]) -> None:
        self.calls.append(("revoked", list(partitions)))
        # committing from the callback must work with kafka-python 3.x (IO-thread callbacks)
        self.source.commit({p: self.last[p] for p in partitions if p in self.last})

    def on_partitions_assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        self.calls.append(("assigned", list(partitions)))
        return {p: self.seek_to for p in partitions}


def test_two_consumers_split_partitions_with_listener(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("src-rb"), partitions=4)
    for p in range(4):
        produce(kafka_bootstrap, topic, [f"{p}-{i}".encode() for i in range(6)], partition=p)
    group = unique_name("g")
    a = source(kafka_bootstrap, topic, group, "a")
    b = source(kafka_bootstrap, topic, group, "b")
    ra, rb = Recorder(a, seek_to=2), Recorder(b, seek_to=4)
    a.set_rebalance_listener(ra)
    b.set_rebalance_listener(rb)
    seen: dict[str, list[RawEvent]] = {"a": [], "b": []}
    try:
        seen["a"] = poll_until(a, 4 * 4)  # alone: all 4 partitions, each from offset 2
        assert ra.calls == [("assigned", [0, 1, 2, 3])]
        assert {(e.position.partition, e.position.offset) for e in seen["a"]} == {
            (p, o) for p in range(4) for o in range(2, 6)}
        ra.last = {p: 6 for p in range(4)}

        stop = threading.Event()

        def run(src: KafkaSource, key: str) -> None:
            while not stop.is_set():
                seen[key].extend(src.poll(100, 0.2))

        threads = [threading.Thread(target=run, args=(s, k)) for s, k in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (rb.calls and len(ra.calls) >= 3):
            time.sleep(0.1)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(10)
        calls_a, calls_b = list(ra.calls), list(rb.calls)
    finally:
        a.close()
        b.close()
    # A: revoked everything (eager), then got half back; B got the other half
    assert calls_a[1] == ("revoked", [0, 1, 2, 3])
    assert calls_a[2][0] == "assigned" and calls_b[-1][0] == "assigned"
    assigned_a, assigned_b = set(calls_a[2][1]), set(calls_b[-1][1])
    assert assigned_a | assigned_b == {0, 1, 2, 3} and not assigned_a & assigned_b
    assert len(assigned_a) == len(assigned_b) == 2
    assert a.stats.rebalances >= 2 and b.stats.rebalances >= 1
    # leaving the group on close() revokes too, so the daemon can checkpoint a last time
    assert ra.calls[-1] == ("revoked", sorted(assigned_a))
    assert rb.calls[-1] == ("revoked", sorted(assigned_b))
    # the revoke callback committed exactly what it passed, before the group re-formed
    assert committed(kafka_bootstrap, group, topic, [0, 1, 2, 3]) == {p: 6 for p in range(4)}
    # B started each of its partitions at the offset its listener returned (4), A at 2 again
    b_offsets = sorted((e.position.partition, e.position.offset) for e in seen["b"])
    assert b_offsets == [(p, o) for p in sorted(assigned_b) for o in (4, 5)]
    a_after = sorted((e.position.partition, e.position.offset) for e in seen["a"][16:])
    assert a_after == [(p, o) for p in sorted(assigned_a) for o in range(2, 6)]


class Failing:
    """A listener whose restore fails, as the daemon's does on a corrupt checkpoint."""

    def on_partitions_revoked(self, partitions: Sequence[int]) -> None:
        pass

    def on_partitions_assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        raise StateError(f"checkpoint of partitions {list(partitions)} is corrupt")


def test_listener_errors_reach_the_polling_thread_unchanged(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("src-err"), partitions=1)
    produce(kafka_bootstrap, topic, [b"x"])
    with source(kafka_bootstrap, topic, unique_name("g")) as src:
        src.set_rebalance_listener(Failing())
        deadline = time.monotonic() + 30
        with pytest.raises(StateError, match=r"partitions \[0\] is corrupt"):
            while time.monotonic() < deadline:
                assert src.poll(10, 0.5) == []  # no record before the restore succeeded
