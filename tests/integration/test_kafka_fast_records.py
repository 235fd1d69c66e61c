"""The Kafka source's fast record path against kafka-python's own decoding, on real broker data.

One topic gets records through every producer path the broker stores differently: plain and
gzip/lz4/zstd-compressed batches, headers, null keys and null values, a committed and an
aborted transaction (with their control batches), and a compacted partition with gaps. The
fast path must return exactly what kafka-python returns (offsets, keys, values, timestamps),
and leave the consumer at exactly the same position.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.codec import has_lz4, has_zstd
from testkit.broker import create_topic, unique_name

from streamem.sources.kafka import KafkaSource, install_fast_records

pytestmark = pytest.mark.kafka

CODECS = [None, "gzip"] + (["lz4"] if has_lz4() else []) + (["zstd"] if has_zstd() else [])
Row = tuple[int, int, bytes | None, bytes | None, int]


def _fill(bootstrap: str, topic: str) -> None:
    """Partition 0: every codec, headers, null keys/values; partition 1: two transactions."""
    for codec in CODECS:
        producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec,
                                 linger_ms=20, batch_size=64 * 1024)
        try:
            for i in range(300):
                key = None if i % 7 == 0 else f"k{i % 5}".encode()
                value = (None if i % 11 == 0 and key is not None
                         else f'{{"i": {i}, "c": "{codec}"}}'.encode() * (1 + i % 3))
                headers = [("h", b"x" * (i % 4)), ("e", b"")] if i % 3 == 0 else None
                producer.send(topic, value=value, key=key, headers=headers, partition=0)
            producer.flush(30)
        finally:
            producer.close()
    txn = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique_name("txn"),
                        linger_ms=5)
    try:
        txn.init_transactions()
        for commit in (True, False, True):
            txn.begin_transaction()
            for i in range(50):
                txn.send(topic, value=f'{{"txn": {i}, "commit": {int(commit)}}}'.encode(),
                         key=b"t", partition=1)
            txn.flush(30)  # in the log before the marker, so an abort leaves aborted data
            if commit:
                txn.commit_transaction()
            else:
                txn.abort_transaction()
    finally:
        txn.close()


def _consume(bootstrap: str, topic: str, fast: bool, isolation: str) -> tuple[list[Row], dict]:
    """Every record of ``topic`` through a bare consumer, with or without the fast path."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, isolation_level=isolation,
                             fetch_max_wait_ms=50, max_partition_fetch_bytes=4096)
    try:
        budget = install_fast_records(consumer) if fast else None
        assert (budget is not None) == fast
        parts = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        rows: list[Row] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, "did not reach the end offsets in 60 s"
            if budget is not None:
                budget.records = 17  # odd: batches get split across polls
                for tp, chunks in consumer.poll(timeout_ms=200, max_records=1).items():
                    for c in chunks:
                        rows.extend(zip([tp.partition] * len(c), c.offsets, c.keys, c.values,
                                        c.timestamps, strict=True))
            else:
                for tp, recs in consumer.poll(timeout_ms=200, max_records=17).items():
                    rows.extend((tp.partition, r.offset, r.key, r.value, r.timestamp)
                                for r in recs)
        positions = {tp.partition: consumer.position(tp) for tp in parts}
        return rows, positions
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def mixed_topic(kafka_bootstrap: str) -> str:
    topic = create_topic(kafka_bootstrap, unique_name("fast-rec"), partitions=2)
    _fill(kafka_bootstrap, topic)
    return topic


@pytest.mark.parametrize("isolation", ["read_uncommitted", "read_committed"])
def test_fast_path_returns_what_kafka_python_returns(kafka_bootstrap: str, mixed_topic: str,
                                                     isolation: str) -> None:
    want, want_pos = _consume(kafka_bootstrap, mixed_topic, fast=False, isolation=isolation)
    got, got_pos = _consume(kafka_bootstrap, mixed_topic, fast=True, isolation=isolation)
    assert got == want
    assert got_pos == want_pos
    p0 = [r for r in want if r[0] == 0]
    p1 = [r for r in want if r[0] == 1]
    assert len(p0) == 300 * len(CODECS)
    assert any(r[2] is None for r in p0) and any(r[3] is None for r in p0)
    # 3 transactions of 50 (one aborted) and their 3 control records
    assert len(p1) == (150 if isolation == "read_uncommitted" else 100)
    assert want_pos[1] == 153
    offsets = [r[1] for r in p1]
    assert offsets == sorted(offsets) and 50 not in offsets  # offset 50: a commit marker


def test_source_events_and_positions_match_the_public_path(kafka_bootstrap: str,
                                                           mixed_topic: str) -> None:
    def read(fast: bool) -> tuple[list[Any], dict[int, int]]:
        src = KafkaSource([kafka_bootstrap], mixed_topic, unique_name("g"), fast_records=fast,
                          session_timeout_ms=6000, heartbeat_interval_ms=500)
        try:
            events: list[Any] = []
            deadline = time.monotonic() + 60
            while len(events) < 300 * len(CODECS) + 150:
                assert time.monotonic() < deadline
                events.extend(src.poll(100, 0.5))
            assert (src._budget is not None) == fast  # the path under test really ran
            assert src.poll(100, 0.2) == []
            return sorted(events, key=lambda e: (e.position.partition, e.position.offset)), \
                dict(src._positions.next_offsets)
        finally:
            src.close()

    want, want_pos = read(False)
    got, got_pos = read(True)
    assert got == want
    assert got_pos == want_pos
    assert all(e.next_offset == e.position.offset + 1 for e in got)
    assert any(e.payload == b"" for e in got)  # null values arrive as empty payloads


def test_compacted_gaps(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("fast-compact"), partitions=1, configs={
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "100"})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    try:
        deadline = time.monotonic() + 90
        compacted = False
        round_ = 0
        while not compacted:
            assert time.monotonic() < deadline, "the broker never compacted the topic"
            for i in range(200):
                producer.send(topic, key=f"k{i % 10}".encode(), value=f"{round_}-{i}".encode())
            producer.flush(30)
            round_ += 1
            time.sleep(1.0)
            rows, _ = _consume_one(kafka_bootstrap, topic, fast=False)
            offsets = [r[1] for r in rows]
            compacted = len(offsets) < 200 * round_
    finally:
        producer.close()
    want, want_pos = _consume_one(kafka_bootstrap, topic, fast=False)
    got, got_pos = _consume_one(kafka_bootstrap, topic, fast=True)
    assert got == want and got_pos == want_pos
    assert [r[1] for r in got] != list(range(len(got)))  # there are gaps


def _consume_one(bootstrap: str, topic: str, fast: bool) -> tuple[list[Row], int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=50,
                             max_partition_fetch_bytes=2048)
    try:
        budget = install_fast_records(consumer) if fast else None
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        rows: list[Row] = []
        deadline = time.monotonic() + 60
        while consumer.position(tp) < end:
            assert time.monotonic() < deadline
            if budget is not None:
                budget.records = 13
                for c in consumer.poll(timeout_ms=200, max_records=1).get(tp, []):
                    rows.extend(zip([0] * len(c), c.offsets, c.keys, c.values, c.timestamps,
                                    strict=True))
            else:
                rows.extend((0, r.offset, r.key, r.value, r.timestamp)
                            for r in consumer.poll(timeout_ms=200, max_records=13).get(tp, []))
        return rows, consumer.position(tp)
    finally:
        consumer.close()
