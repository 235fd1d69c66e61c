"""The compose stack's own pieces, run without Docker: the mounted config
(deploy/compose/streamem.yaml) drives ``streamem run`` against the real Kafka test broker, the
demo producer feeds it, and its ``alertmanager`` sink posts incidents to a real Alertmanager
running the shipped routing, which delivers them to the webhook receiver of the stack.

Only what Docker would supply is replaced: service host names by 127.0.0.1 addresses, topic
and group names by unique ones, and container paths by a temporary directory.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import testkit.broker as kafka_support
import yaml
from testkit.observability import ALERTMANAGER_CONFIG, Alertmanager, http_get, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.timeout(240)]

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(url: str) -> dict[str, float]:
    status, body = http_get(f"{url}/metrics")
    assert status == 200
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return int(proc.returncode)


def test_compose_config_runs_end_to_end_on_kafka(tmp_path: Path) -> None:
    webhook_log = _load(COMPOSE_DIR / "webhook_log.py")
    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("compose-sensor-events")
    dead = kafka_support.unique_name("compose-dead-letter")
    kafka_support.create_topic(bootstrap, topic, partitions=3)
    kafka_support.create_topic(bootstrap, dead, partitions=1)

    cfg = yaml.safe_load((COMPOSE_DIR / "streamem.yaml").read_text())
    port = _free_port()
    cfg["source"].update(bootstrap_servers=[bootstrap], topic=topic,
                         group_id=kafka_support.unique_name("compose"))  # fmt: skip
    cfg["dead_letter"]["topic"] = dead
    cfg["checkpoint"]["dir"] = str(tmp_path / "state")
    cfg["metrics"].update(host="127.0.0.1", port=port)
    sinks = {s["type"]: s for s in cfg["sinks"]}
    sinks["file"]["path"] = str(tmp_path / "anomalies.jsonl")
    sinks["alertmanager"]["url"] = "http://127.0.0.1:19094"
    config_path = tmp_path / "streamem.yaml"
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))

    am_cfg = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    procs: list[subprocess.Popen[bytes]] = []
    with webhook_log.AlertLog("127.0.0.1", 0) as receiver:
        am_cfg["receivers"][0]["webhook_configs"][0]["url"] = f"{receiver.url}/alerts"
        for route in am_cfg["route"]["routes"]:
            route["group_wait"] = "1s"
        with Alertmanager(am_cfg, tmp_path / "alertmanager"):
            daemon_log = (tmp_path / "daemon.log").open("wb")
            producer_log = (tmp_path / "producer.log").open("wb")
            try:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "streamem", "run", "--config", str(config_path)],
                    cwd=tmp_path, stdout=daemon_log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                procs.append(daemon)
                url = f"http://127.0.0.1:{port}"

                def healthy() -> bool:
                    assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
                    try:
                        return http_get(f"{url}/healthz", timeout=1)[0] == 200
                    except OSError:
                        return False

                wait_until(healthy, 60, what="daemon /healthz")
                env = {
                    "PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP": bootstrap, "TOPIC": topic,
                    "EVENTS_PER_SECOND": "400", "ANOMALY_PROBABILITY": "0.0005",
                    "BURST_EVERY_SECONDS": "10", "BURST_SECONDS": "3", "SEED": "11",
                }  # fmt: skip
                producer = subprocess.Popen(
                    [sys.executable, str(COMPOSE_DIR / "producer.py")], env=env,
                    stdout=producer_log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                procs.append(producer)

                def incident_delivered() -> bool:
                    return any(
                        a["labels"].get("alertname") == "StreamemAnomaly"
                        for p in receiver.payloads()
                        for a in p.get("alerts", [])
                    )

                def diagnostics() -> str:
                    am_alerts = http_get("http://127.0.0.1:19094/api/v2/alerts")[1].decode()
                    daemon_log.flush()
                    producer_log.flush()
                    return (f"\nmetrics: {_samples(url) if daemon.poll() is None else 'exited'}"
                            f"\nalertmanager alerts: {am_alerts[:2000]}"
                            f"\nproducer: {(tmp_path / 'producer.log').read_text()[-1000:]}"
                            f"\ndaemon: {(tmp_path / 'daemon.log').read_text()[-3000:]}"
                    )  # fmt: skip

                try:
                    # the producer's first burst (events 2800-4000) is flagged through Kafka
                    wait_until(lambda: _samples(url).get("streamem_anomalies_total", 0) >= 500,
                               90, what="the burst flagged")  # fmt: skip
                    wait_until(
                        incident_delivered, 30, what="a StreamemAnomaly incident at the webhook"
                    )
                except AssertionError as exc:
                    raise AssertionError(f"{exc}{diagnostics()}") from None
                s = _samples(url)
            finally:
                codes = [_stop(p) for p in reversed(procs)]
                daemon_log.close()
                producer_log.close()
    log = (tmp_path / "daemon.log").read_text()
    assert codes == [0, 0], f"producer/daemon exit codes {codes}\n{log[-3000:]}"

    print({k: v for k, v in s.items() if k.startswith(("streamem_events_total", "streamem_anom",
          "streamem_sink_deliveries", "streamem_source_lag"))})  # fmt: skip
    assert s["streamem_ready"] == 1.0
    assert s['streamem_events_total{outcome="learned"}'] > cfg["model"]["warmup"]
    assert s["streamem_anomalies_total"] > 0
    assert s['streamem_sink_deliveries_total{sink="alertmanager"}'] > 0
    lag_partitions = {k for k in s if k.startswith("streamem_source_lag_events{")}
    assert len(lag_partitions) == 3, lag_partitions
    alerts = [a for p in receiver.payloads() for a in p["alerts"]]
    labels = next(a["labels"] for a in alerts if a["labels"]["alertname"] == "StreamemAnomaly")
    assert labels["team"] == "plant-ops" and labels["key"].startswith("pump-")
    assert (tmp_path / "anomalies.jsonl").stat().st_size > 0
