"""KafkaSink and KafkaDeadLetterSink against the real test broker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kafka import KafkaConsumer
from testkit.broker import create_topic, unique_name

from streamem.alerting.records import AnomalyRecord, FeatureContribution, Incident
from streamem.errors import SinkError
from streamem.sinks.base import DeadLetterSink, Sink
from streamem.sinks.kafka import KafkaDeadLetterSink, KafkaSink

pytestmark = pytest.mark.kafka


def read_all(bootstrap: str, topic: str, n: int, timeout: float = 20.0) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < n and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def anomaly(i: int, key: str | None) -> AnomalyRecord:
    return AnomalyRecord(id=f"events:0:{i}", key=key, timestamp=1000.0 + i, score=20.0 + i,
                         tail_probability=10.0 ** -(20 + i), severity=80.0 + i, threshold=15.0,
                         top_features=(FeatureContribution("temp", 0, 90.0, 20.0, 7.0 + i),),
                         model_generation=3, detected_at=2000.0)


def test_sink_delivers_keyed_json_with_acks(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("anomalies"), partitions=3)
    incident = Incident(id="pump-1:1000", key="pump-1", status="firing", started_at=1000.0,
                        ended_at=None, max_severity=92.0, last=anomaly(2, "pump-1"), count=2)
    with KafkaSink([kafka_bootstrap], topic, name="anomalies-kafka") as sink:
        assert isinstance(sink, Sink)
        sink.emit(anomaly(0, "pump-1"))
        sink.emit(anomaly(1, "pump-2"))
        sink.emit(anomaly(2, None))
        sink.emit_incident(incident)
        assert sink.flush(20.0) is True
        assert sink.stats.delivered == 4 and sink.stats.failed == 0 and sink.pending == 0
    records = read_all(kafka_bootstrap, topic, 4)
    assert len(records) == 4
    docs = {(r.key, json.loads(r.value)["id"]): json.loads(r.value) for r in records}
    assert set(docs) == {(b"pump-1", "events:0:0"), (b"pump-2", "events:0:1"),
                         (None, "events:0:2"), (b"pump-1", "pump-1:1000")}
    first = docs[(b"pump-1", "events:0:0")]
    assert first == {**anomaly(0, "pump-1").to_dict(), "type": "anomaly",
                     "top_features": [{"name": "temp", "index": 0, "value": 90.0,
                                       "expected": 20.0, "z": 7.0}]}
    inc = docs[(b"pump-1", "pump-1:1000")]
    assert inc["type"] == "incident" and inc["status"] == "firing"
    assert inc["last"]["id"] == "events:0:2"
    # same key, same partition: an entity's anomalies stay in order
    parts = {r.key: r.partition for r in records if r.key == b"pump-1"}
    assert len(parts) == 1


def test_sink_keeps_what_it_cannot_deliver_and_flush_says_so() -> None:
    """No broker: the message is kept (not dropped) and flush() is False, so the daemon
    never checkpoints past it."""
    sink = KafkaSink(["127.0.0.1:1"], "anomalies", max_block_ms=500)  # nothing listens there
    t0 = time.monotonic()
    sink.emit(anomaly(0, "k"))
    assert time.monotonic() - t0 < 5.0  # emit never stalls detection for long
    assert sink.stats.failed == 1 and sink.stats.dropped == 0 and sink.stats.delivered == 0
    assert sink.pending == 1
    assert sink.flush(0.1) is False  # the message is not acknowledged: not durable
    assert sink.pending == 1
    sink.close()


def test_sink_with_a_hostile_key_delivers(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("anomalies"))
    with KafkaSink([kafka_bootstrap], topic, name="anomalies-kafka") as sink:
        sink.emit(anomaly(0, "pump\udcff\r\n"))
        assert sink.flush(20.0) is True
    [record] = read_all(kafka_bootstrap, topic, 1)
    assert record.key == "pump\udcff\r\n".encode("utf-8", "surrogatepass")


def test_dead_letter_carries_reason_and_source_headers(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("dlq"))
    with KafkaDeadLetterSink(kafka_bootstrap, topic) as dlq:
        assert isinstance(dlq, DeadLetterSink)
        dlq.write(b'\xff{"temp": ', "parse_error", "events:2:17")
        dlq.write(b"x" * 10, "too_large", "events:0:3")
        dlq.flush()
        assert dlq.stats.delivered == 2
    records = read_all(kafka_bootstrap, topic, 2)
    assert [r.value for r in records] == [b'\xff{"temp": ', b"x" * 10]
    assert [dict(r.headers) for r in records] == [
        {"streamem-reason": b"parse_error", "streamem-source": b"events:2:17"},
        {"streamem-reason": b"too_large", "streamem-source": b"events:0:3"}]


def test_dead_letter_flush_raises_while_it_cannot_deliver() -> None:
    dlq = KafkaDeadLetterSink("127.0.0.1:1", "dlq", max_block_ms=500)
    dlq.write(b"{", "parse_error", "events:0:1")  # kept, not raised: the loop goes on
    with pytest.raises(SinkError, match="1 dead letters not acknowledged"):
        dlq.flush(0.5)
    dlq.close()
