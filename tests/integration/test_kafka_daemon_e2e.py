"""End to end on the real broker: 100,000 keyed events on 4 partitions through the daemon.

The anomalies reach the anomalies topic (keyed by sensor, JSON), the group's committed
offsets reach the end offsets, and the scraped metrics show no lag on any partition.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from testkit.broker import create_topic, unique_name
from testkit.daemon import metrics_url
from testkit.kafka_daemon import (
    end_offsets,
    events,
    kafka_config,
    produce_events,
    wait_committed,
)

from streamem.config import load_config
from streamem.runtime.daemon import Daemon

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N = 100_000
INJECTED = tuple(range(20_011, N, 7_919))  # 11 anomalies, each far past every warm-up


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _read_topic(bootstrap: str, topic: str, timeout: float = 20.0) -> list[tuple[bytes, bytes]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=int(timeout * 1000), group_id=None)
    try:
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


def test_100k_events_anomalies_offsets_and_lag(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("e2e-in"), partitions=4)
    out_topic = create_topic(kafka_bootstrap, unique_name("e2e-anomalies"), partitions=2)
    group = unique_name("e2e-group")
    docs = events(N, anomalies=INJECTED)
    t0 = time.monotonic()
    counts = produce_events(kafka_bootstrap, topic, docs)
    produced_s = time.monotonic() - t0
    assert sorted(counts) == [0, 1, 2, 3] and sum(counts.values()) == N
    ends = end_offsets(kafka_bootstrap, topic)
    assert ends == counts

    cfg_path = kafka_config(
        tmp_path, kafka_bootstrap, topic, group,
        batch={"max_events": 512, "max_wait_ms": 100},
        sinks=[{"type": "kafka", "name": "anomalies-kafka", "topic": out_topic}],
        metrics={"enabled": True, "host": "127.0.0.1", "port": 0},
    )
    daemon = Daemon(load_config(cfg_path), install_signal_handlers=False)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    t1 = time.monotonic()
    thread.start()
    try:
        got = wait_committed(kafka_bootstrap, group, topic, ends, timeout=240,
                             alive=thread.is_alive)
        consumed_s = time.monotonic() - t1
        assert not errors, errors
        assert got == ends, f"committed {got}, end offsets {ends}"
        assert daemon.bound_address is not None
        # lag is sampled on the loop thread about once a second
        deadline = time.monotonic() + 10
        while True:
            metrics = _scrape(metrics_url(daemon))
            lag = {dict(k[1])["partition"]: v for k, v in metrics.items()
                   if k[0] == "streamem_source_lag_events"}
            if lag == {"0": 0.0, "1": 0.0, "2": 0.0, "3": 0.0} or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    finally:
        daemon.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert not errors, errors
    print(f"\nproduced {N} in {produced_s:.1f} s; consumed and committed in {consumed_s:.1f} s")

    assert lag == {"0": 0.0, "1": 0.0, "2": 0.0, "3": 0.0}, lag
    assert metrics[("streamem_up", ())] == 1.0  # scraped while the loop ran
    assert metrics[("streamem_ready", ())] == 1.0

    def val(name: str, **labels: str) -> float:
        return metrics.get((name, tuple(sorted(labels.items()))), 0.0)

    n_anom = val("streamem_events_total", outcome="anomalous")
    # every event processed exactly once (warm-up events count as learned)
    assert val("streamem_events_total", outcome="learned") + n_anom \
        + val("streamem_events_total", outcome="skipped") == N
    assert val("streamem_events_total", outcome="rejected") == 0
    assert val("streamem_log_likelihood_bucket", le="+Inf") == N - 4 * 1000  # all but warm-ups

    records = _read_topic(kafka_bootstrap, out_topic)
    anomalies = [(k, json.loads(v)) for k, v in records]
    anomalies = [(k, d) for k, d in anomalies if d["type"] == "anomaly"]
    by_id = {d["id"]: (k, d) for k, d in anomalies}
    missed = [f"ev-{i}" for i in INJECTED if f"ev-{i}" not in by_id]
    assert not missed, f"injected anomalies not on {out_topic}: {missed}"
    for i in INJECTED:
        key, doc = by_id[f"ev-{i}"]
        assert key == docs[i]["sensor"].encode()  # keyed by the event key
        assert doc["key"] == docs[i]["sensor"]
        assert doc["top_features"][0]["name"] == "pressure"
    # the rest are the alert_rate's false alarms: about 1e-3 of the scored events
    assert len(by_id) - len(INJECTED) <= 3 * 0.001 * N, len(by_id)
    assert len(anomalies) == n_anom  # every flagged event delivered once
