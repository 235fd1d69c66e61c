"""Test kit of the daemon-on-Kafka tests (no tests here): streams, configs, group offsets.

The events are those of ``testkit.daemon.make_stream`` (two correlated operating
modes; an injected anomaly has its pressure far off its correlation with flow), produced
keyed by sensor so that Kafka's default partitioner spreads the sensors over the partitions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
"""The subprocess environment: this checkout's streamem first, whatever is installed."""

FEATURES = ["temperature", "pressure", "flow", "vibration.rms"]
SENSORS = [f"pump-{i}" for i in range(16)]


def events(n: int, anomalies: tuple[int, ...] = (), seed: int = 0) -> list[dict[str, Any]]:
    """``n`` sensor events; those at the indices in ``anomalies`` are injected anomalies."""
    rng = np.random.default_rng(seed)
    out = []
    mode = np.arange(n) // 700 % 2
    flow = rng.normal(40.0 + 20.0 * mode, 2.0)
    temp = 55.0 + 0.3 * flow + rng.normal(0, 0.8, n)
    pres = 1.5 + 0.04 * flow + rng.normal(0, 0.05, n)
    vib = np.abs(rng.normal(0.8 + 0.01 * flow, 0.05))
    bad = set(anomalies)
    for i in range(n):
        out.append({
            "id": f"ev-{i}", "ts": 1_700_000_000 + i, "sensor": SENSORS[i % len(SENSORS)],
            "temperature": round(float(temp[i]), 4),
            "pressure": round(float(pres[i]) + (2.5 if i in bad else 0.0), 5),
            "flow": round(float(flow[i]), 4), "vibration": {"rms": round(float(vib[i]), 5)},
        })
    return out


def produce_events(bootstrap: str, topic: str, docs: list[dict[str, Any]]) -> dict[int, int]:
    """Produce ``docs`` as JSON keyed by sensor (acks=all); return the count per partition."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    counts: dict[int, int] = {}
    try:
        futures = [producer.send(topic, value=json.dumps(d).encode(), key=d["sensor"].encode())
                   for d in docs]
        producer.flush(120)
        for f in futures:
            meta = f.get(timeout=60)
            counts[meta.partition] = counts.get(meta.partition, 0) + 1
    finally:
        producer.close()
    return counts


def kafka_config(tmp: Path, bootstrap: str, topic: str, group: str, **overrides: Any) -> Path:
    """A daemon config consuming ``topic`` as ``group`` with state and files under ``tmp``."""
    cfg: dict[str, Any] = {
        "source": {"type": "kafka", "bootstrap_servers": [bootstrap], "topic": topic,
                   "group_id": group},
        "fields": {"features": FEATURES, "timestamp": "ts", "key": "sensor", "id": "id"},
        "batch": {"max_events": 256, "max_wait_ms": 100},
        "model": {"n_components": 2, "warmup": 1000, "half_life": 20000, "random_state": 0,
                  "scope": "partition"},
        "detector": {"alert_rate": 0.001},
        "sinks": [{"type": "file", "path": str(tmp / "anomalies.jsonl")}],
        "dead_letter": {"type": "file", "path": str(tmp / "dead.jsonl")},
        "checkpoint": {"dir": str(tmp / "state"), "every_events": 5000, "every_seconds": 1,
                       "keep": 2},
        "metrics": {"enabled": False, "port": 0},
        "logging": {"status_interval_seconds": 2},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """``{partition: end offset}`` of ``topic``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: int(o) for tp, o in ends.items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """``{partition: committed offset}`` of ``group`` on ``topic`` (absent: none committed)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: int(meta.offset) for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0}


def wait_committed(bootstrap: str, group: str, topic: str, want: dict[int, int],
                   timeout: float, alive: Any = None) -> dict[int, int]:
    """Poll the group's committed offsets until they equal ``want``; return the last seen."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    got: dict[int, int] = {}
    while time.monotonic() < deadline:
        try:
            got = committed(bootstrap, group, topic)
        except KafkaError:  # broker restarting: keep polling
            got = {}
        if got == want:
            return got
        if alive is not None and not alive():
            return got
        time.sleep(0.5)
    return got


def run_daemon(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    """``python -m streamem run -c CFG`` with stderr (the log) appended to ``log``."""
    fh = log.open("ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=fh, env=ENV, cwd=REPO)
    finally:
        fh.close()


def inspect(*args: str) -> dict[str, Any]:
    """``streamem inspect ARGS --json`` as a dict."""
    out = subprocess.run([sys.executable, "-m", "streamem", "inspect", *args, "--json"],
                         capture_output=True, text=True, timeout=120, env=ENV, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def assert_same_state(a: Any, b: Any, path: str = "") -> None:
    """Equal snapshots (``inspect --json``) up to 1e-9 relative; ``created_at`` ignored."""
    if isinstance(a, dict):
        assert set(a) == set(b), (path, sorted(a), sorted(b))
        for k in a:
            if k not in ("created_at", "sequence"):
                assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        try:
            fa, fb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        except (TypeError, ValueError):  # names, nested records: element by element
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                assert_same_state(x, y, f"{path}[{i}]")
            return
        np.testing.assert_allclose(fa, fb, rtol=1e-9, atol=1e-12, err_msg=path)
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(a)), (path, a, b)
    else:
        assert a == b, (path, a, b)


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM ``proc`` and return its exit code (SIGKILL after ``timeout`` seconds)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the daemon ignored SIGTERM for {timeout} s") from None
    return int(proc.returncode)
