"""Helpers for tests that need the real Kafka test broker (``scripts/kafka-broker``).

The broker is a single-node KRaft Kafka on ``127.0.0.1:19092`` run from Maven Central jars.
:func:`ensure_broker` uses a running broker or starts one with the script; the policy for a
machine that cannot run it is in :func:`unavailable`:

- ``CI=true``: the test session fails (a missing broker in CI is a bug, never a skip);
- a developer machine without Java or Maven: Kafka tests are skipped with a loud reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka-broker"
BOOTSTRAP = os.environ.get(
    "STREAMEM_KAFKA_BOOTSTRAP", f"127.0.0.1:{os.environ.get('STREAMEM_KAFKA_PORT', '19092')}"
)
SASL_BOOTSTRAP = f"127.0.0.1:{os.environ.get('STREAMEM_KAFKA_SASL_PORT', '19095')}"
"""The broker's SASL_PLAINTEXT listener: PLAIN user ``streamem``/``streamem-secret``; SCRAM
users are created by the tests."""

__all__ = [
    "BOOTSTRAP",
    "SASL_BOOTSTRAP",
    "broker_answers",
    "create_topic",
    "ensure_broker",
    "in_ci",
    "produce",
    "run_script",
    "unavailable",
    "unique_name",
]


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing services are failures."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere: the one policy for a broker that cannot be reached."""
    message = f"Kafka test broker unavailable: {reason}"
    if in_ci():
        pytest.fail(message + " (CI=true: Kafka tests must run, not skip)", pytrace=False)
    pytest.skip("!!! " + message + " -- Kafka integration tests NOT run; start it with "
                "`scripts/kafka-broker start` (needs Java 17+ and Maven)")


def _host_port() -> tuple[str, int]:
    host, _, port = BOOTSTRAP.rpartition(":")
    return host, int(port)


def broker_answers(timeout_s: float = 3.0) -> bool:
    """True when the broker answers a metadata request from kafka-python."""
    from kafka import KafkaAdminClient

    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(_host_port()) != 0:
            return False
    ms = int(timeout_s * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, bootstrap_timeout_ms=ms,
                                 request_timeout_ms=ms)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def run_script(command: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/kafka-broker <command>`` and return the finished process."""
    return subprocess.run([str(SCRIPT), *command.split()], capture_output=True, text=True,
                          timeout=timeout, check=False)


def ensure_broker() -> str:
    """Return the bootstrap servers of a broker that answers, starting it if needed."""
    if broker_answers():
        return BOOTSTRAP
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        unavailable(f"{' and '.join(missing)} not found on PATH")
    t0 = time.monotonic()
    proc = run_script("start")
    if proc.returncode != 0 or not broker_answers(timeout_s=10.0):
        unavailable(f"`scripts/kafka-broker start` failed (exit {proc.returncode}):\n"
                    f"{proc.stdout}{proc.stderr}")
    print(f"\nkafka test broker started in {time.monotonic() - t0:.1f} s: {proc.stdout.strip()}")
    return BOOTSTRAP


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses: ``<prefix>-<8 hex>``."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1,
                 configs: dict[str, str] | None = None) -> str:
    """Create ``name`` and wait until its metadata shows every partition with a leader."""
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(consumer.partitions_for_topic(name) or ()) == partitions:
                return name
            time.sleep(0.1)
    finally:
        consumer.close()
    raise AssertionError(f"topic {name} did not appear with {partitions} partitions in 30 s")


def produce(bootstrap: str, topic: str, values: Iterable[bytes], partition: int | None = None,
            key: bytes | None = None) -> list[tuple[int, int]]:
    """Produce ``values`` (acks=all) and return their ``(partition, offset)`` in order."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        futures = [producer.send(topic, value=v, key=key, partition=partition) for v in values]
        producer.flush(30)
        metas = [f.get(timeout=30) for f in futures]
    finally:
        producer.close()
    return [(m.partition, m.offset) for m in metas]
