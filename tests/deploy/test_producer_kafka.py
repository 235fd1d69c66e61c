"""The compose demo producer against the real Kafka test broker: it runs as the compose
service does (``python producer.py`` with its environment), stops cleanly on SIGTERM, and the
events it wrote are keyed by sensor and carry the features the compose config reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testkit.broker as kafka_support
import yaml

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"


def test_producer_writes_sensor_events_and_stops_on_sigterm(tmp_path: Path) -> None:
    from kafka import KafkaConsumer, TopicPartition

    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("deploy-producer")
    kafka_support.create_topic(bootstrap, topic, partitions=3)
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP": bootstrap,
        "TOPIC": topic,
        "EVENTS_PER_SECOND": "500",
        "ANOMALY_PROBABILITY": "0.01",
        "BURST_EVERY_SECONDS": "2",
        "BURST_SECONDS": "0.2",
        "SEED": "5",
    }
    log = (tmp_path / "producer.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(COMPOSE_DIR / "producer.py")], env=env, stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(4.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "producer.log").read_text()
    assert "stopped after" in output, output

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000)
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records = list(consumer)
    finally:
        consumer.close()
    sent = int(output.rsplit("stopped after", 1)[1].split()[0])
    assert len(records) == sent and sent > 500, (len(records), sent)

    cfg = yaml.safe_load((COMPOSE_DIR / "streamem.yaml").read_text())
    by_partition: dict[int, set[str]] = {}
    labels = []
    for r in records:
        event = json.loads(r.value)
        assert r.key.decode() == event[cfg["fields"]["key"]]
        by_partition.setdefault(r.partition, set()).add(event["sensor"])
        for feature in cfg["fields"]["features"]:
            value = event
            for part in feature.split("."):
                value = value[part]
            assert isinstance(value, float)
        labels.append(event["label"])
    # keyed by sensor: each sensor's events stay in one partition (per-key ordering)
    owners = [p for p, sensors in by_partition.items() for _ in sensors]
    assert len(owners) == len({s for ss in by_partition.values() for s in ss})
    assert labels.count("burst") >= 100, "a 0.2 s burst every 2 s at 500 ev/s"
    assert labels.count("normal") > labels.count("burst")
