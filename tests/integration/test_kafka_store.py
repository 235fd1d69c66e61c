"""KafkaCheckpointStore against the real test broker."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from testkit.broker import produce, unique_name

from streamem.errors import StateError
from streamem.state.base import CheckpointStore, Snapshot
from streamem.state.codec import encode_snapshot
from streamem.state.kafka_store import KafkaCheckpointStore

pytestmark = pytest.mark.kafka


def snapshot(key: str, seq: int, seed: int = 0) -> Snapshot:
    rng = np.random.default_rng(seed)
    detector = {"means": rng.normal(size=(3, 4)), "weights": rng.dirichlet(np.ones(3)),
                "n_seen": 1000 * seq, "nested": {"threshold": 12.5, "name": "spot"}}
    return Snapshot(key=key, sequence=seq, created_at=1700000000.0 + seq, detector=detector,
                    positions={0: 100 * seq, 3: 7 * seq}, counters={"events_learned": 10 * seq})


def topic_config(bootstrap: str, topic: str, name: str) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    return str(result["topic"][topic][name]["value"])


def test_round_trip_creates_a_compacted_topic(kafka_bootstrap: str) -> None:
    topic = unique_name("state")
    with KafkaCheckpointStore(kafka_bootstrap, topic) as store:
        assert isinstance(store, CheckpointStore)
        assert store.load_latest("global") is None and store.keys() == []
        original = snapshot("global", 1, seed=4)
        store.save(original)
        loaded = store.load_latest("global")
    assert loaded is not None
    assert (loaded.key, loaded.sequence, loaded.positions, loaded.counters) == (
        "global", 1, {0: 100, 3: 7}, {"events_learned": 10})
    np.testing.assert_array_equal(loaded.detector["means"], original.detector["means"])
    assert loaded.detector["means"].dtype == np.float64
    assert loaded.detector["nested"] == {"threshold": 12.5, "name": "spot"}
    assert topic_config(kafka_bootstrap, topic, "cleanup.policy") == "compact"


def test_newest_wins_per_key_and_survives_a_new_instance(kafka_bootstrap: str) -> None:
    topic = unique_name("state")
    with KafkaCheckpointStore(kafka_bootstrap, topic) as store:
        for seq in (1, 2, 3):
            store.save(snapshot("global", seq))
        store.save(snapshot("p3", 9))
        store.save(snapshot("global", 2))  # a rolled-back timeline: the last write wins
        latest = store.load_latest("global")
        assert latest is not None and latest.sequence == 2
    with KafkaCheckpointStore([kafka_bootstrap], topic) as fresh:  # nothing kept locally
        assert fresh.keys() == ["global", "p3"]
        p3 = fresh.load_latest("p3")
        assert p3 is not None and (p3.sequence, p3.positions) == (9, {0: 900, 3: 63})
        assert fresh.load_latest("p4") is None


def test_corrupt_newest_is_skipped_with_a_warning(kafka_bootstrap: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    topic = unique_name("state")
    with KafkaCheckpointStore(kafka_bootstrap, topic) as store:
        store.save(snapshot("global", 5))
        good = encode_snapshot(snapshot("global", 6))
        produce(kafka_bootstrap, topic, [good[: len(good) // 2], b"not json"], key=b"global")
        produce(kafka_bootstrap, topic, [b"\x00garbage"], key=b"lost")
        with caplog.at_level(logging.WARNING, logger="streamem.state.kafka_store"):
            latest = store.load_latest("global")
        assert latest is not None and latest.sequence == 5
        skipped = [r for r in caplog.records if "skipping unusable checkpoint" in r.message]
        assert len(skipped) == 2
        with pytest.raises(StateError, match="none of the 1 checkpoints of 'lost'"):
            store.load_latest("lost")


def test_save_fails_loudly_without_a_broker() -> None:
    store = KafkaCheckpointStore("127.0.0.1:1", unique_name("state"), timeout=1.0)
    with store, pytest.raises(StateError, match="was not acknowledged"):
        store.save(snapshot("global", 1))
