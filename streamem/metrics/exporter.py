"""The Prometheus side of the metrics: one registry, every instrument, the scrape collector.

This is the only module that imports :mod:`prometheus_client`. :class:`Exporter` creates every
metric listed in ``docs/contracts.md`` on one :class:`~prometheus_client.CollectorRegistry`
(a fresh one per instance unless given; nothing is registered at import time) and registers a
custom collector that builds, at scrape time, the families whose values already live
elsewhere (sink counters, source lag, checkpoint age, per-component arrays, the
log-likelihood histogram kept as numpy bucket counts), read as one
:class:`~streamem.metrics.inputs.Scrape`. What to record and when is decided by
:class:`~streamem.metrics.recorder.Metrics`, which owns an ``Exporter``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    make_wsgi_app,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from streamem.metrics.catalogue import (
    BATCH_BUCKETS,
    CHECKPOINT_BUCKETS,
    COMPONENT_ARRAYS,
    EVENT_OUTCOMES,
    FEEDBACK_VERDICTS,
    HEALTH_GAUGES,
    KEY_COUNTERS,
    KEY_GAUGES,
    REJECT_REASONS,
)
from streamem.metrics.inputs import Scrape
from streamem.metrics.server import WsgiApp

__all__ = ["Exporter"]


class Exporter:
    """Every streamem metric on one Prometheus registry.

    Parameters
    ----------
    registry
        Where to register; a fresh :class:`~prometheus_client.CollectorRegistry` (with the
        process, platform and GC collectors) when None.
    scrape
        Called at each scrape (on the HTTP thread) for the values exported from where they
        live; must be thread-safe.

    Attributes
    ----------
    outcome, reason, verdict : dict of str to Counter
        ``streamem_events_total``, ``streamem_rejected_events_total`` and
        ``streamem_feedback_total`` by label value.
    gauges : dict of str to Gauge
        The model-health gauges by name without ``streamem_`` (NaN until reported).

    Examples
    --------
    >>> ex = Exporter(CollectorRegistry(), lambda: None)
    >>> ex.outcome["learned"].inc(3)
    >>> ex.value("streamem_events_total", {"outcome": "learned"})
    3.0
    """

    def __init__(self, registry: CollectorRegistry | None,
                 scrape: Callable[[], Scrape | None]) -> None:
        if registry is None:
            registry = CollectorRegistry()
            process_collector.ProcessCollector(registry=registry)
            platform_collector.PlatformCollector(registry=registry)
            gc_collector.GCCollector(registry=registry)
        self.registry = r = registry
        events = Counter("streamem_events", "events by outcome", ["outcome"], registry=r)
        self.outcome = {o: events.labels(outcome=o) for o in EVENT_OUTCOMES}
        rejected = Counter("streamem_rejected_events", "bad input", ["reason"], registry=r)
        self.reason = {x: rejected.labels(reason=x) for x in REJECT_REASONS}
        self.anomalies = Counter("streamem_anomalies", "anomalies flagged", registry=r)
        self.gauges = {
            k: Gauge(f"streamem_{k}", doc, registry=r) for k, doc in HEALTH_GAUGES.items()
        }
        for gauge in self.gauges.values():  # NaN = not reported by the model yet
            gauge.set(math.nan)
        self.key_gauges = {k: Gauge(f"streamem_{k}", doc, registry=r)
                           for k, doc in KEY_GAUGES.items()}
        self.key_counters = {k: Counter(f"streamem_{k}", doc, registry=r)
                             for k, doc in KEY_COUNTERS.items()}
        self.drift_events = Counter("streamem_drift_events", "drift alarms raised", registry=r)
        self.regime_changes = Counter(
            "streamem_regime_changes",
            "times persistent anomalies were accepted as a new regime",
            registry=r,
        )
        self.batch_duration = Histogram(
            "streamem_batch_duration_seconds", "time to process one micro-batch",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.checkpoint_duration = Histogram(
            "streamem_checkpoint_duration_seconds", "time to write one checkpoint",
            buckets=CHECKPOINT_BUCKETS, registry=r,
        )  # fmt: skip
        self.checkpoints = Counter("streamem_checkpoints", "checkpoints written", registry=r)
        self.incidents_evicted = Counter(
            "streamem_incidents_evicted",
            "open incidents resolved early because alerting.max_open_incidents were open",
            registry=r,
        )
        self.ready = Gauge(
            "streamem_ready", "1 once warm-up is done and the model scores", registry=r
        )
        self.up = Gauge("streamem_up", "1 while the daemon loop runs", registry=r)
        self.suppressed = Counter("streamem_anomalies_suppressed",
                                  "anomalies a rules[] entry kept from the sinks", ["rule"],
                                  registry=r)
        feedback = Counter("streamem_feedback", "operator verdicts on anomalies",
                           ["verdict"], registry=r)
        self.verdict = {v: feedback.labels(verdict=v) for v in FEEDBACK_VERDICTS}
        registry.register(_ScrapeCollector(scrape))

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """Current value of one sample (collects the registry), or None if there is none."""
        return self.registry.get_sample_value(name, labels or {})

    def wsgi_app(self) -> WsgiApp:
        """prometheus_client's WSGI exposition app for this registry (``/metrics``)."""
        app: WsgiApp = make_wsgi_app(self.registry)
        return app


class _ScrapeCollector:
    """Families computed at scrape time from a :class:`Scrape` (a prometheus_client
    custom collector: ``describe`` lists the families, ``collect`` fills them)."""

    def __init__(self, scrape: Callable[[], Scrape | None]) -> None:
        self._scrape = scrape

    def describe(self) -> Iterator[Any]:
        return self._families(None)

    def collect(self) -> Iterator[Any]:
        return self._families(self._scrape())

    def _families(self, s: Scrape | None) -> Iterator[Any]:
        hist = HistogramMetricFamily(
            "streamem_log_likelihood", "per-event log-likelihood under the live model"
        )
        if s is not None:
            cum = np.cumsum(s.ll_counts).astype(np.float64)
            bounds = [*(str(b) for b in s.ll_bounds), "+Inf"]
            # Buckets only: OpenMetrics forbids _sum (and so _count) when buckets are negative.
            # The +Inf bucket is the count; streamem_log_likelihood_mean is the average.
            hist.add_metric([], list(zip(bounds, cum.tolist(), strict=True)), sum_value=None)
        yield hist
        for name, doc in COMPONENT_ARRAYS.items():
            fam = GaugeMetricFamily(f"streamem_{name}", doc, labels=["component"])
            if s is not None:
                for k, v in enumerate(s.arrays.get(name, ())):
                    fam.add_metric([str(k)], float(v))
            yield fam
        age = GaugeMetricFamily(
            "streamem_checkpoint_age_seconds",
            "seconds since the last durable checkpoint (since start-up before the first one)",
        )
        if s is not None:
            age.add_metric([], s.checkpoint_age)
        yield age
        blocked = GaugeMetricFamily(
            "streamem_sinks_blocked_seconds",
            "seconds the checkpoint has been held back because a sink cannot write or spool "
            "(0 while every sink is durable)",
        )
        if s is not None:
            blocked.add_metric([], s.sinks_blocked_seconds)
        yield blocked
        yield from _sink_families(s)
        lag = GaugeMetricFamily(
            "streamem_source_lag_events", "events behind the end of the input", labels=["partition"]
        )
        if s is not None:
            for p, v in s.source_lag.items():
                lag.add_metric([str(p)], float(v))
        yield lag


def _sink_families(s: Scrape | None) -> Iterator[Any]:
    delivered = CounterMetricFamily(
        "streamem_sink_deliveries", "anomalies/incidents delivered", labels=["sink"]
    )
    failed = CounterMetricFamily(
        "streamem_sink_failures", "failed delivery attempts", labels=["sink"]
    )
    spool = GaugeMetricFamily(
        "streamem_sink_spool_size", "records waiting in the on-disk spool", labels=["sink"]
    )
    dead = CounterMetricFamily(
        "streamem_sink_dead_letters",
        "records the sink can never deliver, kept in its dead-letter file with the reason",
        labels=["sink"],
    )
    if s is not None:
        for sink in s.sinks:
            st = sink.stats
            delivered.add_metric([sink.name], float(st.delivered))
            failed.add_metric([sink.name], float(st.failed))
            spool.add_metric([sink.name], float(st.spool_size))
            dead.add_metric([sink.name], float(st.rejected))
    yield from (delivered, failed, spool, dead)
