"""The Kafka source rides out a broker restart mid-consume without losing an event."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest
from testkit.broker import create_topic, produce, run_script, unavailable, unique_name

from streamem.events import RawEvent
from streamem.sources.kafka import KafkaSource

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class Resume:
    """Like the daemon: on (re)assignment resume right after the last event it processed."""

    def __init__(self) -> None:
        self.next: dict[int, int] = {}
        self.calls: list[str] = []

    def on_partitions_revoked(self, partitions: Sequence[int]) -> None:
        self.calls.append("revoked")

    def on_partitions_assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        self.calls.append("assigned")
        return {p: self.next[p] for p in partitions if p in self.next}


def test_broker_down_for_10s_then_back(kafka_bootstrap: str) -> None:
    if run_script("status").returncode != 0:
        unavailable("the broker at the bootstrap address is not managed by scripts/kafka-broker")
    topic = create_topic(kafka_bootstrap, unique_name("outage"), partitions=2)
    produce(kafka_bootstrap, topic, [f"a{i}".encode() for i in range(20)], partition=0)
    produce(kafka_bootstrap, topic, [f"b{i}".encode() for i in range(20)], partition=1)
    listener = Resume()
    events: list[RawEvent] = []
    outage: dict[str, float] = {}
    src = KafkaSource([kafka_bootstrap], topic, unique_name("g"), session_timeout_ms=6000,
                      heartbeat_interval_ms=500, metadata_max_age_ms=1000)
    src.set_rebalance_listener(listener)

    def take(batch: list[RawEvent]) -> None:
        events.extend(batch)
        for e in batch:
            listener.next[e.position.partition] = e.next_offset

    def restart() -> None:
        stopped = run_script("stop")
        outage["stopped"] = time.monotonic()
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        time.sleep(10)
        started = run_script("start")
        outage["started"] = time.monotonic()
        assert started.returncode == 0, started.stdout + started.stderr

    try:
        while len(events) < 10:
            take(src.poll(5, 0.5))
        worker = threading.Thread(target=restart)
        worker.start()
        while "stopped" not in outage:  # keep consuming while the broker shuts down
            take(src.poll(5, 0.5))
        during = len(events)
        while worker.is_alive():
            take(src.poll(5, 0.5))
        worker.join()
        produce(kafka_bootstrap, topic, [f"a{i}".encode() for i in range(20, 30)], partition=0)
        produce(kafka_bootstrap, topic, [f"b{i}".encode() for i in range(20, 30)], partition=1)
        deadline = time.monotonic() + 90
        while len(events) < 60 and time.monotonic() < deadline:
            take(src.poll(50, 0.5))
        recovered = time.monotonic() - outage["started"]
    finally:
        src.close()
    seen = sorted((e.position.partition, e.position.offset) for e in events)
    expected = [(p, o) for p in (0, 1) for o in range(30)]
    assert sorted(set(seen)) == expected, "events were lost across the broker restart"
    assert seen == expected, "events were delivered twice across the broker restart"
    assert src.stats.disconnects >= 1 and src.stats.reconnects >= 1
    assert during < 60
    print(f"\nrecovered {recovered:.1f} s after the broker was back; {src.stats}; "
          f"listener calls {listener.calls}")
    assert recovered < 30
