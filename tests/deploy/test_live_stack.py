"""The observability kit against real servers: ``streamem run`` on a generated stream,
scraped by a real Prometheus that evaluates the shipped rules and notifies a real
Alertmanager, which posts to a local webhook receiver.

Prometheus runs on 127.0.0.1:19090 and Alertmanager on 127.0.0.1:19094 (docs/contracts.md),
both with throw-away storage. Prometheus scrapes and evaluates every second and loads a
time-scaled copy of deploy/prometheus/rules.yml: every range and ``for`` divided by 30
(``[5m]`` -> ``[10s]``), expressions and thresholds untouched. Timeline (one module-scoped
stack, tests run in file order): warm-up, a normal stream (the anomaly-rate alert must stay
quiet), an anomaly burst (it must fire and reach the webhook), every dashboard and rule
expression queried, the daemon's /metrics compared with the names used, and finally SIGTERM
(the instance-down alert must fire).
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from testkit.observability import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_PORT,
    DEPLOY,
    PROMETHEUS_CONFIG,
    Alertmanager,
    Prometheus,
    dashboard_exprs,
    grafana_to_promql,
    http_get,
    metric_names,
    rule_exprs,
    rules_doc,
    scale_rules,
    wait_until,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.slow, pytest.mark.timeout(300)]

HERE = Path(__file__).resolve().parent
TIME_SCALE = 1 / 30
EVENTS_PER_SECOND = 400
WARMUP = 500
SETTLE_SECONDS = 10.0
NORMAL_SECONDS = 20.0
BURST_FRACTION = 0.3
ALERT_RATE = 0.001
DAEMON_ARGV = [sys.executable, "-m", "streamem", "run"]


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


producer = _load(DEPLOY / "compose" / "producer.py")
webhook_log = _load(DEPLOY / "compose" / "webhook_log.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Writer:
    """Appends sensor events to the daemon's input file at a steady rate, in a thread."""

    def __init__(self, path: Path, rate: float) -> None:
        self.path = path
        self.rate = rate
        self.burst = False
        self.written = 0
        self._rng = random.Random(7)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _event(self) -> dict[str, Any]:
        sensor = producer.SENSORS[self.written % len(producer.SENSORS)]
        ts = time.time()
        if self.burst and self._rng.random() < BURST_FRACTION:
            return dict(producer.anomalous_event(self._rng, sensor, ts, "burst"))
        if self._rng.random() < ALERT_RATE / 2:
            return dict(producer.anomalous_event(self._rng, sensor, ts, "spike"))
        return dict(producer.normal_event(self._rng, sensor, ts))

    def _run(self) -> None:
        t0 = time.monotonic()
        with self.path.open("a", encoding="utf-8") as f:
            while not self._stop.is_set():
                due = int((time.monotonic() - t0) * self.rate) - self.written
                lines = [json.dumps(self._event()) for _ in range(max(0, due))]
                if self.written and self.written % 5000 < len(lines):
                    lines.append("{not json")  # keeps streamem_rejected_events_total moving
                if lines:
                    f.write("\n".join(lines) + "\n")
                    f.flush()
                    self.written += due
                time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Stack:
    """Daemon + Prometheus + Alertmanager + webhook receiver + event writer."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started = time.time()
        self.closers: list[Any] = []
        self.receiver = webhook_log.AlertLog("127.0.0.1", 0)
        self.closers.append(self.receiver)

        am_cfg = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        am_cfg["receivers"][0]["webhook_configs"][0]["url"] = f"{self.receiver.url}/alerts"
        for route in [am_cfg["route"], *am_cfg["route"].get("routes", [])]:
            route.update(group_wait="1s", group_interval="1s", repeat_interval="1m")
        self.alertmanager = Alertmanager(am_cfg, tmp / "alertmanager")
        self.closers.append(self.alertmanager)

        self.input = tmp / "events.jsonl"
        self.input.touch()
        self.metrics_port = free_port()
        config = {
            "source": {"type": "file", "path": str(self.input), "format": "jsonl",
                       "follow": True, "poll_interval_ms": 50},
            "fields": {"features": list(producer.FEATURES), "timestamp": "ts", "key": "sensor"},
            "batch": {"max_events": 256, "max_wait_ms": 100},
            "model": {"warmup": WARMUP, "random_state": 0},
            "detector": {"alert_rate": ALERT_RATE, "regime_patience": 1_000_000,
                         "regime_min_events": 1_000_000},
            "sinks": [
                {"type": "file", "name": "anomalies-file", "path": str(tmp / "anomalies.jsonl")}
            ],
            "dead_letter": {"type": "file", "path": str(tmp / "dead-letter.jsonl")},
            "rules": [{"name": "retired-pumps", "key": "retired-*", "action": "suppress"}],
            "checkpoint": {"dir": str(tmp / "state"), "every_seconds": 2},
            "metrics": {"host": "127.0.0.1", "port": self.metrics_port},
            "logging": {"level": "INFO", "status_interval_seconds": 5},
        }  # fmt: skip
        self.config_path = tmp / "streamem.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.daemon_log = (tmp / "daemon.log").open("wb")
        self.daemon = subprocess.Popen(
            [*DAEMON_ARGV, "--config", str(self.config_path)], cwd=tmp,
            stdout=self.daemon_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        wait_until(self._healthy, 60, what=f"daemon /healthz\n{self.log()}")
        self.writer = Writer(self.input, EVENTS_PER_SECOND)
        self.closers.append(self.writer)

        prom_cfg = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        prom_cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
        jobs = {j["job_name"]: j for j in prom_cfg["scrape_configs"]}
        streamem_job = jobs["streamem"]
        streamem_job.update(scrape_interval="1s", scrape_timeout="1s")
        streamem_job["static_configs"] = [{"targets": [f"127.0.0.1:{self.metrics_port}"]}]
        am_job = jobs["alertmanager"]
        am_job["static_configs"] = [{"targets": [f"127.0.0.1:{ALERTMANAGER_PORT}"]}]
        prom_cfg["scrape_configs"] = [streamem_job, am_job]
        prom_cfg["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{ALERTMANAGER_PORT}"]}
        ]
        self.rules = scale_rules(rules_doc(), TIME_SCALE)
        self.prometheus = Prometheus(prom_cfg, self.rules, tmp / "prometheus")
        self.closers.append(self.prometheus)

    def _healthy(self) -> bool:
        if self.daemon.poll() is not None:
            raise AssertionError(f"daemon exited with {self.daemon.returncode}:\n{self.log()}")
        try:
            return http_get(f"{self.metrics_url}/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        self.daemon_log.flush()
        return (self.tmp / "daemon.log").read_text(errors="replace")[-3000:]

    def value(self, expr: str) -> float | None:
        """First sample of an instant query, or None when empty."""
        result = self.prometheus.query(expr)
        return float(result[0]["value"][1]) if result else None

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        alerts = self.prometheus.api("alerts")["alerts"]
        return [
            a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def notified(self, alertname: str, status: str = "firing") -> bool:
        return any(
            a["labels"].get("alertname") == alertname and a["status"] == status
            for p in self.receiver.payloads()
            for a in p.get("alerts", [])
        )

    def stop_daemon(self) -> int:
        if self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=10)
        return int(self.daemon.returncode)

    def close(self) -> None:
        for c in reversed(self.closers):
            c.close()
        self.closers.clear()
        self.stop_daemon()
        self.daemon_log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("live-stack"))
    try:
        yield s
    finally:
        s.close()


def test_prometheus_scrapes_the_daemon(stack: Stack) -> None:
    wait_until(lambda: stack.value('up{job="streamem"}') == 1.0, 30, what="up == 1")
    wait_until(lambda: stack.value("streamem_ready") == 1.0, 60, what=f"ready\n{stack.log()}")

    def targets_up() -> bool:
        active = stack.prometheus.api("targets")["activeTargets"]
        return all(t["health"] == "up" for t in active)

    wait_until(targets_up, 20, what="all targets up")
    active = stack.prometheus.api("targets")["activeTargets"]
    assert {t["labels"]["job"] for t in active} == {"streamem", "alertmanager"}
    assert stack.prometheus.api("alertmanagers")["activeAlertmanagers"]


def test_normal_stream_keeps_the_anomaly_alert_quiet(stack: Stack) -> None:
    """From warm-up on the alert never fires; after one rate window (the threshold is still
    settling right after warm-up) it is not even pending, and the ratio stays below 10x."""
    wait_until(lambda: stack.value("streamem_ready") == 1.0, 60, what="ready")
    ready = time.time()
    settled = ready + SETTLE_SECONDS
    time.sleep(SETTLE_SECONDS + NORMAL_SECONDS)
    end = time.time()

    def series(query: str, start: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = stack.prometheus.api(
            "query_range", query=query, start=str(start), end=str(end), step="1"
        )["result"]
        return result

    ratio = series("streamem:anomaly_ratio:rate5m", settled)
    assert ratio, "anomaly ratio was never computed on the normal stream"
    values = [float(v) for _, v in ratio[0]["values"]]
    print("normal-stream anomaly ratio:", [round(v, 4) for v in values])
    firing = series('ALERTS{alertname="StreamemAnomalyRateHigh", alertstate="firing"}', ready)
    assert not firing, "anomaly-rate alert fired on a normal stream"
    pending = series('ALERTS{alertname="StreamemAnomalyRateHigh"}', settled)
    assert not pending, f"anomaly-rate alert pending on a settled normal stream: {values}"
    assert max(values) < 10 * ALERT_RATE
    assert (stack.value("sum(streamem_events_total)") or 0) > WARMUP


def test_anomaly_burst_fires_and_reaches_the_webhook(stack: Stack) -> None:
    stack.writer.burst = True
    try:
        t0 = time.monotonic()
        wait_until(lambda: stack.firing("StreamemAnomalyRateHigh"), 90, what="alert firing")
        fired_after = time.monotonic() - t0
        wait_until(lambda: stack.notified("StreamemAnomalyRateHigh"), 30, what="webhook")
        notified_after = time.monotonic() - t0
    finally:
        stack.writer.burst = False
    (alert,) = stack.firing("StreamemAnomalyRateHigh")
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) > 10 * ALERT_RATE
    print(f"burst: firing after {fired_after:.1f}s, webhook after {notified_after:.1f}s")


def _has_finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


def test_every_dashboard_expression_returns_data(stack: Stack) -> None:
    """Panel queries and variable queries return finite data now. Annotation queries are
    filters (Grafana marks every point they return), so they are range-queried over the whole
    run: the firing-alerts one must show the burst; the drift one must evaluate."""
    failures = []
    for where, expr in dashboard_exprs():
        promql = grafana_to_promql(expr)
        if where.startswith("annotation"):
            result = stack.prometheus.api(
                "query_range",
                query=promql,
                start=str(stack.started),
                end=str(time.time()),
                step="1",
            )["result"]
            if "ALERTS" in promql and not result:
                failures.append(f"{where}: {promql} shows no firing alert during the burst")
            continue
        result = stack.prometheus.query(promql)
        if not result or not _has_finite(result):
            failures.append(f"{where}: {promql} -> {result}")
    assert not failures, "\n".join(failures)


def test_every_rule_expression_evaluates(stack: Stack) -> None:
    """Recording rules must return data; alert expressions must evaluate without error and
    every series they read must exist (they return data only while their alert holds)."""
    failures = []
    for name, expr in rule_exprs():
        result = stack.prometheus.query(expr)  # raises on a PromQL error
        if name.startswith("streamem:") and not _has_finite(result):
            failures.append(f"recording rule {name} returned no data")
    for name, expr in rule_exprs():
        for series in sorted(
            metric_names([expr]) | set(re.findall(r"\bstreamem:[a-z0-9_:]+", expr))
        ):
            if not stack.prometheus.query(series):
                failures.append(f"{name} reads {series}, which has no data")
    health = {
        r["name"]: r["health"] for g in stack.prometheus.api("rules")["groups"] for r in g["rules"]
    }
    failures += [f"rule {n} health {h}" for n, h in health.items() if h != "ok"]
    assert not failures, "\n".join(failures)


def test_every_metric_name_used_is_served_by_the_daemon(stack: Stack) -> None:
    status, body = http_get(f"{stack.metrics_url}/metrics")
    assert status == 200
    served = {
        line.split("{")[0].split(" ")[0]
        for line in body.decode().splitlines()
        if line and not line.startswith("#")
    }
    used = metric_names([e for _, e in dashboard_exprs()] + [e for _, e in rule_exprs()])
    missing = used - served
    assert not missing, f"used in deploy/ but not served by the daemon: {sorted(missing)}"


def test_docker_healthcheck_command_probes_the_daemon(stack: Stack) -> None:
    """The image's HEALTHCHECK command, run here against the live daemon's /healthz."""
    import dockerfile  # type: ignore[import-not-found]

    hc = next(c for c in dockerfile.parse_file(str(DEPLOY / "docker" / "Dockerfile"))
              if c.cmd == "HEALTHCHECK")  # fmt: skip
    env = {"STREAMEM_METRICS__PORT": str(stack.metrics_port), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", hc.value[3]], env=env, capture_output=True,
                          timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert http_get(f"{stack.metrics_url}/readyz")[0] == 200  # the k8s readiness probe


def test_sigterm_stops_cleanly_and_instance_down_fires(stack: Stack) -> None:
    stack.writer.close()
    time.sleep(0.5)  # let the daemon read the tail of the input
    sigterm_at = time.time()
    assert stack.stop_daemon() == 0, stack.log()
    snapshots = [p.stat().st_mtime for p in (stack.tmp / "state").rglob("*") if p.is_file()]
    assert snapshots and max(snapshots) >= sigterm_at, f"no final checkpoint:\n{stack.log()}"
    wait_until(lambda: stack.firing("StreamemInstanceDown"), 30, what="instance down firing")
    wait_until(lambda: stack.notified("StreamemInstanceDown"), 30, what="instance down webhook")
