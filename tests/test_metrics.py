"""streamem.metrics against docs/contracts.md, over real HTTP."""

from __future__ import annotations

import math
import re
import socket
import threading
import time
import timeit
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from streamem.errors import ConfigError, InvalidInputError
from streamem.metrics import (
    LOG_LIKELIHOOD_BUCKETS,
    Metrics,
    MetricsServer,
)
from streamem.sinks.base import SinkStats

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "docs" / "contracts.md"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def documented_metrics() -> dict[str, dict[str, Any]]:
    """The metric table of docs/contracts.md: name -> {type, label, values}."""
    table: dict[str, dict[str, Any]] = {}
    for line in CONTRACTS.read_text().splitlines():
        if not line.startswith("| `streamem_"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names, kind, labels = re.findall(r"`([^`]+)`", cells[0]), cells[1], cells[2]
        label_names = re.findall(r"`([^`]+)`", labels)
        values: list[str] | None = None
        if "=" in labels and "," in labels:
            values = [v.strip() for v in labels.split("=", 1)[1].split(",")]
        for name in names:
            table[name] = {"type": kind, "labels": label_names, "values": values}
    return table


def family_name(doc_name: str, kind: str) -> str:
    """Parsers report counters without the ``_total`` suffix."""
    return doc_name.removesuffix("_total") if kind == "counter" else doc_name


class Sink:
    """A sink as the collector sees it: a configured name and live SinkStats."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SinkStats()


def populated() -> tuple[Metrics, list[Sink]]:
    m = Metrics()
    m.observe_batch(np.array([-300.0, -12.0, 1.0]), 2, 1, 0, 0.004)
    m.count_rejected("parse_error", 2)
    m.update_health(
        {
            "threshold": 4.0,
            "alert_rate_target": 1e-3,
            "component_weight": np.array([0.6, 0.4]),
            "component_mean_shift": np.array([0.1, 3.0]),
            "model_components": 2,
        }
    )
    m.observe_checkpoint(0.02)
    m.count_suppressed("known-pump")  # label values: the config's rule names
    sinks = [Sink("anomalies-file"), Sink("ops-webhook")]
    m.attach_sinks(sinks)
    m.set_source_lag({0: 12, 1: 0})
    return m, sinks


def get(url: str, accept: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def served() -> Iterator[tuple[Metrics, list[Sink], MetricsServer]]:
    m, sinks = populated()
    with MetricsServer(m, "127.0.0.1", 0, liveness_timeout=1.0) as srv:
        yield m, sinks, srv


def scrape(srv: MetricsServer) -> dict[str, Any]:
    status, body = get(f"{srv.url}/metrics")
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body)}


def test_the_doc_table_parses() -> None:
    table = documented_metrics()
    assert len(table) >= 28 and table["streamem_tail_scale"]["type"] == "gauge"
    assert table["streamem_events_total"]["values"] == [
        "learned",
        "anomalous",
        "rejected",
        "skipped",
    ]


def test_every_documented_metric_is_served_with_its_type_and_labels(served: Any) -> None:
    _, _, srv = served
    families = scrape(srv)
    table = documented_metrics()
    expected = {family_name(n, spec["type"]) for n, spec in table.items()}
    created = {  # the 0.0.4 text format shows counter/histogram creation times as gauges
        f"{family_name(n, spec['type'])}_created"
        for n, spec in table.items()
        if spec["type"] in ("counter", "histogram") and n != "streamem_log_likelihood"
    }
    exposed = {name for name in families if name.startswith("streamem_")} - created
    assert exposed == expected, f"undocumented: {exposed - expected}, missing: {expected - exposed}"
    for name, spec in table.items():
        fam = families[family_name(name, spec["type"])]
        assert fam.type == spec["type"], name
        assert fam.samples, f"{name} has no samples"
        labels = {k for s in fam.samples for k in s.labels if k != "le"}
        assert labels == set(spec["labels"]), name
        if spec["values"]:  # enumerated label values are pre-initialised, exactly those
            (label,) = spec["labels"]
            seen = {s.labels[label] for s in fam.samples if s.name.endswith("_total")}
            assert seen == set(spec["values"]), name


def test_two_instances_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.count_rejected("too_large")
    assert a.value("streamem_rejected_events_total", reason="too_large") == 1.0
    assert b.value("streamem_rejected_events_total", reason="too_large") == 0.0
    assert a.registry is not b.registry
    c = Metrics(CollectorRegistry())  # injected registry: only streamem metrics
    assert c.value("process_cpu_seconds_total") is None
    assert a.value("process_cpu_seconds_total") is not None


def test_openmetrics_negotiation_is_valid(served: Any) -> None:
    """Prometheus asks for OpenMetrics first; the strict parser must accept our output."""
    _, _, srv = served
    status, body = get(f"{srv.url}/metrics", accept=OPENMETRICS)
    assert status == 200 and body.rstrip().endswith("# EOF")
    names = {f.name for f in parse_openmetrics(body)}  # type: ignore[no-untyped-call]
    assert {"streamem_log_likelihood", "streamem_events", "streamem_sink_deliveries"} <= names


def test_values_follow_updates_and_scrape_time_sources(served: Any) -> None:
    _, sinks, srv = served
    sinks[1].stats.delivered = 41
    sinks[1].stats.failed = 3
    sinks[1].stats.spooled = 99  # cumulative; not the gauge
    sinks[1].stats.spool_size = 7
    fams = scrape(srv)

    def sample(fam: str, name: str, **labels: str) -> float:
        for s in fams[fam].samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
        raise AssertionError(f"no sample {name}{labels}")

    assert (
        sample("streamem_sink_deliveries", "streamem_sink_deliveries_total", sink="ops-webhook")
        == 41
    )
    assert sample("streamem_sink_failures", "streamem_sink_failures_total", sink="ops-webhook") == 3
    assert sample("streamem_sink_spool_size", "streamem_sink_spool_size", sink="ops-webhook") == 7
    assert sample("streamem_source_lag_events", "streamem_source_lag_events", partition="0") == 12
    assert sample("streamem_events", "streamem_events_total", outcome="rejected") == 2
    assert sample("streamem_events", "streamem_events_total", outcome="anomalous") == 1
    assert sample("streamem_anomalies", "streamem_anomalies_total") == 1
    assert (
        sample("streamem_component_mean_shift", "streamem_component_mean_shift", component="1") == 3
    )
    assert sample("streamem_threshold", "streamem_threshold") == 4.0
    assert math.isnan(sample("streamem_tail_shape", "streamem_tail_shape"))  # not reported yet
    assert sample("streamem_checkpoints", "streamem_checkpoints_total") == 1


def test_component_labels_follow_the_number_of_components() -> None:
    m = Metrics(CollectorRegistry())
    m.update_health({"component_weight": np.array([0.2, 0.3, 0.5])})
    assert m.value("streamem_component_weight", component="2") == 0.5
    m.update_health({"component_weight": np.array([0.4, 0.6])})  # a merge: K 3 -> 2
    assert m.value("streamem_component_weight", component="2") is None
    assert m.value("streamem_component_weight", component="1") == 0.6


def test_log_likelihood_histogram_matches_a_naive_count() -> None:
    rng = np.random.default_rng(7)
    m = Metrics(CollectorRegistry())
    batches = [rng.normal(-20, 40, size=n) for n in (1, 17, 1024, 300)]
    batches[2][:5] = [np.nan, -np.inf, np.inf, -200.0, 10.0]  # edges and non-finite
    for b in batches:
        m.observe_batch(b, len(b), 0, 0, 0.001)
    values = np.concatenate(batches)
    values = values[~np.isnan(values)]
    for bound in LOG_LIKELIHOOD_BUCKETS:
        naive = sum(1 for v in values if v <= bound)
        assert m.value("streamem_log_likelihood_bucket", le=str(float(bound))) == naive, bound
    assert m.value("streamem_log_likelihood_bucket", le="+Inf") == len(values)


def test_log_likelihood_mean_is_an_exponentially_weighted_mean() -> None:
    half_life = 50.0
    m = Metrics(CollectorRegistry(), ll_half_life=half_life)
    rng = np.random.default_rng(3)
    stream = [rng.normal(size=n) for n in (3, 80, 1, 200)]
    for b in stream:
        m.observe_batch(b, 0, 0, 0, 0.0)
    decay = 0.5 ** (1 / half_life)
    num = den = 0.0
    for x in np.concatenate(stream):  # one event at a time, the definition
        num, den = decay * num + x, decay * den + 1
    assert m.value("streamem_log_likelihood_mean") == pytest.approx(num / den, rel=1e-12)


def test_observe_batch_of_1024_events_costs_well_under_a_millisecond() -> None:
    m = Metrics()
    ll = np.random.default_rng(0).normal(-10, 5, size=1024)
    runs = timeit.repeat(lambda: m.observe_batch(ll, 1000, 2, 22, 0.01), number=1, repeat=300)
    assert min(runs) < 0.5e-3, f"fastest observe_batch took {min(runs) * 1e3:.3f} ms"
    assert float(np.median(runs)) < 1e-3, f"median {np.median(runs) * 1e3:.3f} ms"


def test_checkpoint_age_is_computed_at_scrape_time() -> None:
    now = [1000.0]
    m = Metrics(CollectorRegistry(), clock=lambda: now[0])
    now[0] = 1030.0
    assert m.value("streamem_checkpoint_age_seconds") == 30.0  # since start-up
    m.observe_checkpoint(0.5, at=1025.0)
    assert m.value("streamem_checkpoint_age_seconds") == 5.0
    now[0] = 1100.0
    assert m.value("streamem_checkpoint_age_seconds") == 75.0
    m.restored_checkpoint(1090.0)
    assert m.value("streamem_checkpoint_age_seconds") == 10.0
    assert m.value("streamem_checkpoints_total") == 1.0


def test_bad_reason_and_unknown_health_key(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics(CollectorRegistry())
    with pytest.raises(InvalidInputError, match="use one of"):
        m.count_rejected("user-42")
    m.update_health({"thresold": 1.0})
    m.update_health({"thresold": 2.0})
    assert caplog.text.count("'thresold'") == 1
    assert math.isnan(m.value("streamem_threshold") or 0.0)


def test_healthz_is_ok_during_start_up_grace() -> None:
    m = Metrics(CollectorRegistry())
    with MetricsServer(m, "127.0.0.1", 0, liveness_timeout=30.0) as srv:
        assert get(f"{srv.url}/healthz") == (200, "ok\n")  # no heartbeat yet
        assert m.value("streamem_up") == 0.0  # but the loop has not reported running


def test_healthz_follows_the_heartbeat(served: Any) -> None:
    m, _, srv = served
    m.heartbeat()
    assert get(f"{srv.url}/healthz") == (200, "ok\n")
    time.sleep(1.3)
    status, text = get(f"{srv.url}/healthz")
    assert status == 503 and text.startswith("stale: no heartbeat for")
    m.heartbeat()
    assert get(f"{srv.url}/healthz") == (200, "ok\n")
    assert m.value("streamem_up") == 1.0
    m.set_up(False)
    assert get(f"{srv.url}/healthz")[0] == 503
    assert m.value("streamem_up") == 0.0
    m.heartbeat()
    assert get(f"{srv.url}/healthz")[0] == 200


def test_readyz_follows_set_ready(served: Any) -> None:
    m, _, srv = served
    assert get(f"{srv.url}/readyz") == (503, "not ready: warming up\n")
    m.set_ready(True)
    assert get(f"{srv.url}/readyz") == (200, "ready\n")
    assert m.value("streamem_ready") == 1.0
    m.set_ready(False)
    assert get(f"{srv.url}/readyz")[0] == 503


def test_other_paths_and_methods(served: Any) -> None:
    _, _, srv = served
    assert get(f"{srv.url}/nope")[0] == 404
    req = urllib.request.Request(f"{srv.url}/healthz", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 405


def test_close_stops_serving_and_leaks_no_threads() -> None:
    before = set(threading.enumerate())
    m = Metrics(CollectorRegistry())
    srv = MetricsServer(m, "127.0.0.1", 0)
    port = srv.port
    assert port > 0 and srv.url == f"http://127.0.0.1:{port}"
    for _ in range(5):
        assert get(f"{srv.url}/metrics")[0] == 200
    srv.close()
    srv.close()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_busy_port_is_a_config_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError, match=r"metrics\.port.*choose a free port"):
            MetricsServer(Metrics(CollectorRegistry()), "127.0.0.1", port)


def test_ipv6_bind_address() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:  # no IPv6 loopback here: binding must fail cleanly, naming the key
        with pytest.raises(ConfigError, match=r"metrics\.port"):
            MetricsServer(Metrics(CollectorRegistry()), "::1", 0)
        return
    with MetricsServer(Metrics(CollectorRegistry()), "::1", 0) as srv:
        assert srv.url.startswith("http://[::1]:")
        assert get(f"{srv.url}/readyz")[0] == 503


def test_only_metrics_module_imports_prometheus_client() -> None:
    importers = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "streamem").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+prometheus_client", p.read_text(), re.MULTILINE)
    ]
    assert importers == ["streamem/metrics/exporter.py"]


def test_detector_health_feeds_the_metrics_directly() -> None:
    """``update_health(Detector.health())`` is all the daemon needs for model metrics."""
    from streamem import Detector

    rng = np.random.default_rng(11)
    det = Detector(warmup=300, random_state=0)
    m = Metrics(CollectorRegistry())
    m.update_health(det.health())  # baseline, before warm-up
    assert m.value("streamem_ready") == 0.0
    det.process(rng.normal(size=(1000, 3)))
    health = det.health()
    m.update_health(health)
    assert m.value("streamem_ready") == 1.0
    assert m.value("streamem_threshold") == health["threshold_surprise"]
    assert m.value("streamem_model_updates") == health["generation"]  # M-steps
    assert math.isnan(m.value("streamem_model_generation") or 0.0)  # checkpoints: daemon only
    assert m.value("streamem_model_components") == len(health["weights"])
    for k, w in enumerate(health["weights"]):
        assert m.value("streamem_component_weight", component=str(k)) == w
    for key in ("alert_rate_target", "tail_shape", "tail_scale", "tail_peaks", "drift_divergence"):
        assert m.value(f"streamem_{key}") == health[key], key
    m.update_health({**health, "drift_alarms": health["drift_alarms"] + 2})
    assert m.value("streamem_drift_events_total") == 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.prometheus
@pytest.mark.slow
def test_a_real_prometheus_scrapes_and_parses_everything(tmp_path: Path) -> None:
    """Prometheus negotiates OpenMetrics; a target with any parse error would be 'down'."""
    import json
    import os
    import shutil
    import subprocess

    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(binary, os.X_OK):
        message = "prometheus binary not found; run scripts/install-observability"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI=true: must run, not skip)")
        pytest.skip("!!! " + message)
    m, sinks = populated()
    sinks[0].stats.delivered = 5
    with MetricsServer(m, "127.0.0.1", 0) as srv:
        port = _free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: streamem\n    static_configs: [{{targets: ['127.0.0.1:{srv.port}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(expr: str) -> list[Any]:
            url = f"{api}/query?query={urllib.parse.quote(expr)}"
            status, body = get(url)
            assert status == 200, body
            return list(json.loads(body)["data"]["result"])

        try:
            deadline = time.monotonic() + 60
            target: dict[str, Any] = {}
            while time.monotonic() < deadline:
                try:
                    status, body = get(f"{api}/targets")
                except OSError:
                    status = 0
                if status == 200:
                    active = json.loads(body)["data"]["activeTargets"]
                    if active and active[0]["health"] != "unknown":
                        target = active[0]
                        break
                time.sleep(0.25)
            assert target.get("health") == "up", target.get("lastError")
            time.sleep(1.5)  # let one more scrape land
            learned = query('streamem_events_total{outcome="learned"}')
            assert float(learned[0]["value"][1]) == 2.0
            lowest = query('streamem_log_likelihood_bucket{le="-200.0"}')
            assert float(lowest[0]["value"][1]) == 1.0
            delivered = query('streamem_sink_deliveries_total{sink="anomalies-file"}')
            assert float(delivered[0]["value"][1]) == 5.0
            names = {r["metric"]["__name__"] for r in query('{__name__=~"streamem_.+"}')}
            for name, spec in documented_metrics().items():
                wanted = name + "_bucket" if spec["type"] == "histogram" else name
                assert wanted in names, name
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_source_lag_pushed_by_the_loop_replaces_the_previous_set() -> None:
    m = Metrics(CollectorRegistry())
    m.set_source_lag({0: 100, 1: 5})
    assert m.value("streamem_source_lag_events", partition="0") == 100.0
    m.set_source_lag({1: 0})  # partition 0 revoked
    assert m.value("streamem_source_lag_events", partition="0") is None
    assert m.value("streamem_source_lag_events", partition="1") == 0.0


def test_source_lag_beyond_the_partition_cap_keeps_the_first_partitions() -> None:
    from streamem.metrics.catalogue import MAX_LAG_PARTITIONS

    m = Metrics(CollectorRegistry())
    m.set_source_lag({p: 1 for p in range(MAX_LAG_PARTITIONS + 5)})
    assert sorted(m.source_lag()) == list(range(MAX_LAG_PARTITIONS))
    assert m.value("streamem_source_lag_events", partition=str(MAX_LAG_PARTITIONS)) is None


def test_report_lane_maps_a_daemon_lane_through_the_one_health_mapping() -> None:
    """What the daemon exports per lane: threshold in surprise units, model_generation the
    checkpoint sequence, model_updates the M-steps, counters advanced per lane from 0."""
    from types import SimpleNamespace

    from streamem import Detector
    from streamem.metrics.health import report_lane

    def Lane(key: str, detector: Detector, sequence: int = 0,
             reported: dict[str, float] | None = None) -> Any:
        """What report_lane reads of the runtime's lane (the LaneState protocol)."""
        from streamem.runtime.scorer import DetectorScorer

        return SimpleNamespace(key=key, detector=detector, scorer=DetectorScorer(detector),
                               sequence=sequence, reported={} if reported is None else reported)

    rng = np.random.default_rng(3)
    m = Metrics(CollectorRegistry())
    lane = Lane("global", Detector(warmup=200, random_state=0), sequence=7)
    report_lane(m, lane)  # before warm-up: the ready-only metrics stay NaN
    assert math.isnan(m.value("streamem_threshold") or 0.0)
    assert math.isnan(m.value("streamem_model_components") or 0.0)
    assert m.value("streamem_model_generation") == 7.0
    assert m.value("streamem_ready") == 0.0  # readiness spans lanes: the daemon sets it
    lane.detector.process(rng.normal(size=(600, 2)))
    lane.sequence = 8
    report_lane(m, lane)
    health = lane.detector.health()
    assert m.value("streamem_threshold") == health["threshold_surprise"]
    assert m.value("streamem_model_generation") == 8.0
    assert m.value("streamem_model_updates") == health["generation"] > 0
    assert m.value("streamem_model_components") == len(health["weights"])
    assert m.value("streamem_ready") == 0.0
    other = Lane("p1", Detector(warmup=200, random_state=1), reported={"drift_alarms": 1.0})
    lane.reported["drift_alarms"] = health["drift_alarms"] - 3  # 3 alarms not yet reported
    report_lane(m, lane)
    report_lane(m, other)  # 0 alarms, 1 reported: a counter never goes down
    assert m.value("streamem_drift_events_total") == 3.0
    assert lane.reported["drift_alarms"] == health["drift_alarms"]
