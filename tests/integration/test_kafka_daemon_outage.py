"""The broker goes down for about 12 s while ``streamem run`` consumes (states on the Kafka
state store, anomalies to a topic); the daemon rides it out on its own and, once the broker is
back, finishes with every event learned exactly once.

The test runs a private broker (its own ports and data directory, started with
``scripts/kafka-broker`` and the ``STREAMEM_KAFKA_*`` variables), so stopping it does not
disturb the shared test broker.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit.broker import SCRIPT, create_topic, unique_name
from testkit.kafka_daemon import (
    end_offsets,
    events,
    inspect,
    kafka_config,
    produce_events,
    run_daemon,
    stop,
    wait_committed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N = 60_000
INJECTED = (15_013, 30_011, 45_007, 59_009)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class PrivateBroker:
    """``scripts/kafka-broker`` on free ports with its own state directory."""

    def __init__(self, state: Path) -> None:
        port, controller, sasl = _free_ports(3)
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = {**os.environ, "STREAMEM_KAFKA_PORT": str(port),
                    "STREAMEM_KAFKA_CONTROLLER_PORT": str(controller),
                    "STREAMEM_KAFKA_SASL_PORT": str(sasl), "STREAMEM_KAFKA_STATE": str(state)}

    def run(self, command: str) -> str:
        import subprocess

        proc = subprocess.run([str(SCRIPT), command], capture_output=True, text=True,
                              timeout=300, env=self.env, check=False)
        assert proc.returncode == 0, f"kafka-broker {command}: {proc.stdout}{proc.stderr}"
        return proc.stdout


@pytest.fixture
def private_broker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[PrivateBroker]:
    # kafka_bootstrap: the shared broker is up, so Java, Maven and the jars are too
    broker = PrivateBroker(tmp_path / "broker")
    broker.run("start")
    try:
        yield broker
    finally:
        broker.run("stop")


def test_broker_down_12s_mid_stream_nothing_lost(tmp_path: Path,
                                                 private_broker: PrivateBroker) -> None:
    bootstrap = private_broker.bootstrap
    topic = create_topic(bootstrap, unique_name("outage-in"), partitions=4)
    out_topic = create_topic(bootstrap, unique_name("outage-anomalies"), partitions=1)
    counts = produce_events(bootstrap, topic, events(N, anomalies=INJECTED))
    ends = end_offsets(bootstrap, topic)
    assert ends == counts
    group = unique_name("outage")
    cfg = kafka_config(tmp_path / "d", bootstrap, topic, group,
                       batch={"max_events": 256, "max_wait_ms": 100},
                       sinks=[{"type": "kafka", "name": "anomalies-kafka", "topic": out_topic}],
                       checkpoint={"store": "kafka", "topic": unique_name("outage-state"),
                                   "every_events": 2000, "every_seconds": 0.5})
    log = tmp_path / "daemon.log"
    proc = run_daemon(cfg, log)
    try:
        # mid-stream: some offsets committed, far from all
        deadline = time.monotonic() + 60
        seen: dict[int, int] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            seen = wait_committed(bootstrap, group, topic, ends, 0.05)
            if sum(seen.values()) >= 3000:
                break
        assert 3000 <= sum(seen.values()) < N // 2, (seen, log.read_text()[-3000:])
        private_broker.run("stop")
        down_at = time.monotonic()
        time.sleep(12)
        assert proc.poll() is None, log.read_text()[-3000:]  # it waits, it does not give up
        private_broker.run("start")
        print(f"\nbroker down for {time.monotonic() - down_at:.1f} s")
        got = wait_committed(bootstrap, group, topic, ends, 180,
                             alive=lambda: proc.poll() is None)
        assert got == ends, (got, log.read_text()[-4000:])
    finally:
        code = stop(proc)
    text = log.read_text()
    assert code == 0, text[-3000:]
    # the outage shows in the log (kafka-python's connection errors pass the CLI's WARNING
    # floor for the kafka logger); the loop itself waits in the checkpoint meanwhile (sink
    # flush and offset commit wait up to 30 s each for the broker)
    assert "ECONNREFUSED" in text or "Connection lost" in text, text[-3000:]

    total = 0
    for p, n in sorted(counts.items()):
        snap = inspect("--config", str(cfg), "--key", f"p{p}")
        assert snap["counters"]["events_seen"] == n, (p, snap["counters"])  # none lost, none twice
        assert snap["events_total"] == n
        assert snap["position"] == {str(p): n}
        total += snap["counters"]["events_anomalous"]
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(out_topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    try:
        docs = [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()
    ids = [d["id"] for d in docs if d["type"] == "anomaly"]
    assert {f"ev-{i}" for i in INJECTED} <= set(ids)
    # the daemon never restarted, so no event was scored twice: each anomaly arrived once
    assert len(ids) == len(set(ids)) == total, (total, len(ids), len(set(ids)))
