"""Prometheus metrics: every streamem metric, on one registry.

This is the only module that imports :mod:`prometheus_client`. :class:`Metrics` owns every
metric listed in ``docs/contracts.md`` (one fresh :class:`~prometheus_client.CollectorRegistry`
per instance, nothing registered at import time). The daemon calls it once per micro-batch,
never per event. Values that already live elsewhere (sink counters, source lag, checkpoint
age, per-component arrays, the log-likelihood histogram kept as numpy bucket counts) are read
at scrape time by a custom collector, so updating them costs the hot path nothing.

The parts beside it, which import no prometheus_client:

- :mod:`streamem.metrics_catalog`: label values, buckets, detector health keys;
- :mod:`streamem.metrics_probes`: liveness/readiness (inherited by :class:`Metrics`);
- :mod:`streamem.metrics_inputs`: the sinks and source lag read at scrape time (inherited);
- :mod:`streamem.metrics_server`: :class:`MetricsServer`, serving ``/metrics``, ``/healthz``
  and ``/readyz``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
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

from streamem.errors import InvalidInputError
from streamem.metrics_catalog import (
    BATCH_BUCKETS,
    CHECKPOINT_BUCKETS,
    COMPONENT_ARRAYS,
    EVENT_OUTCOMES,
    FEEDBACK_VERDICTS,
    HEALTH_ALIASES,
    HEALTH_CUMULATIVE,
    HEALTH_GAUGES,
    HEALTH_NOT_EXPORTED,
    LOG_LIKELIHOOD_BUCKETS,
    MAX_LAG_PARTITIONS,
    REJECT_REASONS,
)
from streamem.metrics_inputs import HasSinkStats, ScrapeInputs
from streamem.metrics_probes import Probes
from streamem.metrics_server import MetricsServer, WsgiApp

__all__ = [
    "BATCH_BUCKETS",
    "CHECKPOINT_BUCKETS",
    "EVENT_OUTCOMES",
    "HEALTH_ALIASES",
    "HEALTH_CUMULATIVE",
    "HEALTH_GAUGES",
    "HEALTH_NOT_EXPORTED",
    "LOG_LIKELIHOOD_BUCKETS",
    "MAX_LAG_PARTITIONS",
    "REJECT_REASONS",
    "HasSinkStats",
    "Metrics",
    "MetricsServer",
]

logger = logging.getLogger(__name__)

_COMPONENT_ARRAYS = COMPONENT_ARRAYS
_NONFINITE_LL = 1e6  # -inf/+inf log-likelihoods enter the running mean as -/+ this


class _ScrapeCollector:
    """Families computed at scrape time from state held by :class:`Metrics`."""

    def __init__(self, owner: Metrics) -> None:
        self._m = owner

    def describe(self) -> Iterator[Any]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Any]:
        return self._families(with_samples=True)

    def _families(self, with_samples: bool) -> Iterator[Any]:
        m = self._m
        with m._lock:
            counts = m._ll_counts.copy()
            arrays = dict(m._arrays)
            last_checkpoint = m._last_checkpoint
        cum = np.cumsum(counts).astype(np.float64)
        bounds = [*(str(b) for b in m._ll_bounds), "+Inf"]
        hist = HistogramMetricFamily(
            "streamem_log_likelihood", "per-event log-likelihood under the live model"
        )
        if with_samples:
            # Buckets only: OpenMetrics forbids _sum (and so _count) when buckets are negative.
            # The +Inf bucket is the count; streamem_log_likelihood_mean is the average.
            hist.add_metric([], list(zip(bounds, cum.tolist(), strict=True)), sum_value=None)
        yield hist
        for name, doc in _COMPONENT_ARRAYS.items():
            fam = GaugeMetricFamily(f"streamem_{name}", doc, labels=["component"])
            if with_samples:
                for k, v in enumerate(arrays.get(name, ())):
                    fam.add_metric([str(k)], float(v))
            yield fam
        age = GaugeMetricFamily(
            "streamem_checkpoint_age_seconds",
            "seconds since the last durable checkpoint (since start-up before the first one)",
        )
        if with_samples:
            age.add_metric([], max(0.0, m._clock() - last_checkpoint))
        yield age
        blocked = GaugeMetricFamily(
            "streamem_sinks_blocked_seconds",
            "seconds the checkpoint has been held back because a sink cannot write or spool "
            "(0 while every sink is durable)",
        )
        if with_samples:
            blocked.add_metric([], m.sinks_blocked_seconds())
        yield blocked
        yield from self._sink_families(with_samples)
        lag = GaugeMetricFamily(
            "streamem_source_lag_events", "events behind the end of the input", labels=["partition"]
        )
        if with_samples:
            for p, v in self._m.source_lag().items():
                lag.add_metric([str(p)], float(v))
        yield lag

    def _sink_families(self, with_samples: bool) -> Iterator[Any]:
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
        if with_samples:
            for sink in self._m.sinks:
                s = sink.stats
                delivered.add_metric([sink.name], float(s.delivered))
                failed.add_metric([sink.name], float(s.failed))
                spool.add_metric([sink.name], float(s.spool_size))
                dead.add_metric([sink.name], float(s.rejected))
        yield from (delivered, failed, spool, dead)


class Metrics(Probes, ScrapeInputs):
    """Every streamem metric, on one registry, with cheap per-batch update methods.

    Parameters
    ----------
    registry
        Where to register; a fresh :class:`~prometheus_client.CollectorRegistry` (with the
        process, platform and GC collectors) when None.
    ll_half_life
        Half-life, in events, of ``streamem_log_likelihood_mean``.
    clock
        Wall clock for the checkpoint age (``time.time``).

    Examples
    --------
    >>> import numpy as np
    >>> m = Metrics()
    >>> m.observe_batch(np.array([-3.0, -1.0, -250.0]), n_learned=2, n_anomalous=1,
    ...                 n_skipped=0, duration_seconds=0.002)
    >>> m.count_rejected("parse_error", 4)
    >>> m.update_health({"threshold": 4.5, "component_weight": np.array([0.7, 0.3])})
    >>> m.value("streamem_events_total", outcome="rejected")
    4.0
    >>> m.value("streamem_log_likelihood_bucket", le="-200.0")
    1.0
    >>> m.value("streamem_component_weight", component="1")
    0.3
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        ll_half_life: float = 1000.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if registry is None:
            registry = CollectorRegistry()
            process_collector.ProcessCollector(registry=registry)
            platform_collector.PlatformCollector(registry=registry)
            gc_collector.GCCollector(registry=registry)
        self.registry = registry
        self._clock = clock
        self._lock = threading.Lock()
        self._ll_bounds = np.asarray(LOG_LIKELIHOOD_BUCKETS, dtype=np.float64)
        self._ll_counts = np.zeros(len(LOG_LIKELIHOOD_BUCKETS) + 1, dtype=np.int64)
        self._ll_decay = 0.5 ** (1.0 / ll_half_life)
        self._ew_sum = 0.0
        self._ew_weight = 0.0
        self._arrays: dict[str, np.ndarray[Any, Any]] = {}
        self._last_checkpoint = clock()
        ScrapeInputs.__init__(self)
        Probes.__init__(self)
        self._warned_keys: set[str] = set()
        self._cumulative: dict[str, float] = {}

        r = registry
        self.events = Counter("streamem_events", "events by outcome", ["outcome"], registry=r)
        self._outcome = {o: self.events.labels(outcome=o) for o in EVENT_OUTCOMES}
        self.rejected = Counter("streamem_rejected_events", "bad input", ["reason"], registry=r)
        self._reason = {x: self.rejected.labels(reason=x) for x in REJECT_REASONS}
        self.anomalies = Counter("streamem_anomalies", "anomalies flagged", registry=r)
        self.gauges = {
            k: Gauge(f"streamem_{k}", doc, registry=r) for k, doc in HEALTH_GAUGES.items()
        }
        for gauge in self.gauges.values():  # NaN = not reported by the model yet
            gauge.set(math.nan)
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
        self.feedback = Counter("streamem_feedback", "operator verdicts on anomalies",
                                ["verdict"], registry=r)
        self._verdict = {v: self.feedback.labels(verdict=v) for v in FEEDBACK_VERDICTS}
        registry.register(_ScrapeCollector(self))

    # -- hot path: once per micro-batch ------------------------------------------------------
    def observe_batch(
        self,
        log_likelihoods: np.ndarray[Any, Any],
        n_learned: int,
        n_anomalous: int,
        n_skipped: int,
        duration_seconds: float,
    ) -> None:
        """Account for one scored micro-batch (vectorised: no per-event Python work).

        Parameters
        ----------
        log_likelihoods
            Per-event log-likelihoods of the scored events; NaN entries are ignored, ±inf
            fall in the outer buckets and count as ±1e6 in the running mean.
        n_learned, n_anomalous, n_skipped
            Events by outcome (``streamem_events_total``); anomalous ones also increment
            ``streamem_anomalies_total``.
        duration_seconds
            Wall time spent on the batch.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry())
        >>> m.observe_batch(np.zeros(1024), 1024, 0, 0, 0.01)
        >>> m.value("streamem_log_likelihood_bucket", le="+Inf")
        1024.0
        >>> m.value("streamem_log_likelihood_mean")
        0.0
        """
        ll = np.asarray(log_likelihoods, dtype=np.float64).ravel()
        ll = ll[~np.isnan(ll)]
        if ll.size:
            idx = np.searchsorted(self._ll_bounds, ll, side="left")
            counts = np.bincount(idx, minlength=self._ll_counts.size)
            clipped = np.clip(ll, -_NONFINITE_LL, _NONFINITE_LL)
            weights = self._ll_decay ** np.arange(ll.size - 1, -1, -1, dtype=np.float64)
            keep = self._ll_decay**ll.size
            with self._lock:
                self._ll_counts += counts
                self._ew_sum = keep * self._ew_sum + float(weights @ clipped)
                self._ew_weight = keep * self._ew_weight + float(weights.sum())
                mean = self._ew_sum / self._ew_weight
            self.gauges["log_likelihood_mean"].set(mean)
        for outcome, n in (
            ("learned", n_learned),
            ("anomalous", n_anomalous),
            ("skipped", n_skipped),
        ):
            if n:
                self._outcome[outcome].inc(n)
        if n_anomalous:
            self.anomalies.inc(n_anomalous)
        self.batch_duration.observe(duration_seconds)

    def count_rejected(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected events (``streamem_rejected_events_total`` and the outcome).

        Parameters
        ----------
        reason
            One of :data:`REJECT_REASONS`.
        n
            How many.

        Raises
        ------
        InvalidInputError
            For a reason outside the bounded set (label values must stay bounded).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.count_rejected("too_large", 2)
        >>> m.value("streamem_rejected_events_total", reason="too_large")
        2.0
        """
        if reason not in self._reason:
            raise InvalidInputError(
                f"reject reason {reason!r} is not a known label value; use one of {REJECT_REASONS}"
            )
        if n:
            self._reason[reason].inc(n)
            self._outcome["rejected"].inc(n)

    def update_health(self, health: Mapping[str, Any]) -> None:
        """Set model-health metrics from plain numbers and arrays, e.g. ``Detector.health()``.

        Parameters
        ----------
        health
            Keys are metric names without ``streamem_`` (the scalars in
            :data:`HEALTH_GAUGES`, the arrays ``component_weight`` and
            ``component_mean_shift``) or ``Detector.health()`` names (:data:`HEALTH_ALIASES`).
            Arrays hold one value per component; the ``component`` label set follows their
            length. ``ready`` drives :meth:`set_ready`. The cumulative counts
            ``drift_alarms`` and ``regime_changes`` increment ``streamem_drift_events_total``
            and ``streamem_regime_changes_total`` by how much they grew since the previous
            call; the first call only records them (call once right after building or
            restoring the detector, so restored counts are not counted again). Missing keys
            keep their previous value (NaN until first reported); unknown keys are ignored
            with a one-time warning.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry())
        >>> m.update_health({"drift_detected": 1, "mean_shift": np.array([0.1, 2.0]),
        ...                  "drift_alarms": 4})
        >>> m.update_health({"drift_alarms": 6})
        >>> m.value("streamem_drift_detected"), m.value("streamem_drift_events_total")
        (1.0, 2.0)
        >>> m.value("streamem_component_mean_shift", component="1")
        2.0
        """
        for raw_key, value in health.items():
            key = HEALTH_ALIASES.get(raw_key, raw_key)
            if key in _COMPONENT_ARRAYS:
                arr = np.array(value, dtype=np.float64).ravel()
                with self._lock:
                    self._arrays[key] = arr
            elif key in self.gauges:
                self.gauges[key].set(float(value))
            elif key in HEALTH_CUMULATIVE:
                total = float(value)
                before = self._cumulative.get(key)
                self._cumulative[key] = total
                if before is not None and total > before:
                    counter = self.drift_events if key == "drift_alarms" else self.regime_changes
                    counter.inc(total - before)
            elif key == "ready":
                self.set_ready(bool(value))
            elif key not in HEALTH_NOT_EXPORTED and key not in self._warned_keys:
                self._warned_keys.add(key)
                logger.warning("update_health: unknown key %r ignored", key)

    def declare_rules(self, names: list[str]) -> None:
        """Export ``streamem_anomalies_suppressed_total`` at 0 for each configured rule.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.declare_rules(["maintenance"])
        >>> m.value("streamem_anomalies_suppressed_total", rule="maintenance")
        0.0
        """
        for name in names:
            self.suppressed.labels(rule=name)

    def count_suppressed(self, rule: str) -> None:
        """Count one anomaly suppressed by the rule named ``rule`` (a config name: bounded).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.count_suppressed("maintenance")
        >>> m.value("streamem_anomalies_suppressed_total", rule="maintenance")
        1.0
        """
        self.suppressed.labels(rule=rule).inc()

    def count_feedback(self, verdict: str) -> None:
        """Count one operator verdict (``streamem_feedback_total{verdict}``).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.count_feedback("false_positive")
        >>> m.value("streamem_feedback_total", verdict="false_positive")
        1.0
        """
        self._verdict[verdict].inc()

    def count_drift_events(self, n: int = 1) -> None:
        """Count ``n`` drift alarms (``streamem_drift_events_total``).

        Use this or the ``drift_alarms`` key of :meth:`update_health`, not both.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.count_drift_events()
        >>> m.value("streamem_drift_events_total")
        1.0
        """
        self.drift_events.inc(n)

    def count_regime_changes(self, n: int = 1) -> None:
        """Count ``n`` accepted regime changes (``streamem_regime_changes_total``).

        Use this or the ``regime_changes`` key of :meth:`update_health`, not both.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.count_regime_changes(2)
        >>> m.value("streamem_regime_changes_total")
        2.0
        """
        self.regime_changes.inc(n)

    def count_incidents_evicted(self, n: int) -> None:
        """Count ``n`` evicted incidents (``streamem_incidents_evicted_total``).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.count_incidents_evicted(3)
        >>> m.value("streamem_incidents_evicted_total")
        3.0
        """
        self.incidents_evicted.inc(n)

    def observe_checkpoint(self, duration_seconds: float, at: float | None = None) -> None:
        """Record a durable checkpoint written at unix time ``at`` (now when None).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.observe_checkpoint(0.01)
        >>> m.value("streamem_checkpoints_total"), m.value("streamem_checkpoint_age_seconds") < 1
        (1.0, True)
        """
        self.checkpoints.inc()
        self.checkpoint_duration.observe(duration_seconds)
        self.restored_checkpoint(self._clock() if at is None else at)

    def restored_checkpoint(self, at: float) -> None:
        """Count the checkpoint age from a snapshot restored at start-up (not a new write).

        Parameters
        ----------
        at
            The snapshot's ``created_at`` (unix time).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry(), clock=lambda: 100.0); m.restored_checkpoint(40.0)
        >>> m.value("streamem_checkpoint_age_seconds"), m.value("streamem_checkpoints_total")
        (60.0, 0.0)
        """
        with self._lock:
            self._last_checkpoint = at

    def value(self, name: str, **labels: str) -> float | None:
        """Current value of one sample (collects the registry: for tests and the CLI).

        Parameters
        ----------
        name
            Sample name, with its suffix (``_total``, ``_bucket``).
        **labels
            Label values of the sample.

        Returns
        -------
        float or None
            None when there is no such sample.

        Examples
        --------
        >>> Metrics(CollectorRegistry()).value("streamem_events_total", outcome="learned")
        0.0
        """
        return self.registry.get_sample_value(name, labels)

    def wsgi_app(self) -> WsgiApp:
        """prometheus_client's WSGI exposition app for this registry (``/metrics``).

        Examples
        --------
        >>> callable(Metrics(CollectorRegistry()).wsgi_app())
        True
        """
        return make_wsgi_app(self.registry)

    def _show_up(self, up: bool) -> None:
        self.up.set(1 if up else 0)

    def _show_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)
