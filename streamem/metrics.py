"""Prometheus metrics and the ``/metrics``, ``/healthz``, ``/readyz`` endpoints.

This is the only module that imports :mod:`prometheus_client`. :class:`Metrics` owns every
metric listed in ``docs/contracts.md`` (one fresh :class:`~prometheus_client.CollectorRegistry`
per instance, nothing registered at import time). The daemon calls it once per micro-batch,
never per event. Values that already live elsewhere (sink counters, source lag, checkpoint
age, per-component arrays, the log-likelihood histogram kept as numpy bucket counts) are read
at scrape time by a custom collector, so updating them costs the hot path nothing.

:class:`MetricsServer` serves the registry with prometheus_client's WSGI exposition app plus two
probes:

- ``/healthz``: 200 ``ok`` while the daemon loop calls :meth:`Metrics.heartbeat` at least every
  ``liveness_timeout`` seconds (counted from start-up for the first beat); 503 otherwise, or
  after ``set_up(False)``.
- ``/readyz``: 200 once :meth:`Metrics.set_ready` was called with True (warm-up done), else 503.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

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

from streamem.errors import ConfigError, InvalidInputError
from streamem.sinks.base import SinkStats

__all__ = [
    "EVENT_OUTCOMES",
    "HEALTH_ALIASES",
    "HEALTH_CUMULATIVE",
    "HEALTH_GAUGES",
    "LOG_LIKELIHOOD_BUCKETS",
    "REJECT_REASONS",
    "Metrics",
    "MetricsServer",
]

logger = logging.getLogger(__name__)

EVENT_OUTCOMES = ("learned", "anomalous", "rejected", "skipped")
REJECT_REASONS = ("parse_error", "invalid_value", "no_features", "too_large", "wrong_type")
LOG_LIKELIHOOD_BUCKETS = (
    -200.0, -150.0, -100.0, -75.0, -50.0, -40.0, -30.0, -25.0, -20.0, -15.0,
    -10.0, -7.5, -5.0, -2.5, 0.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CHECKPOINT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HEALTH_GAUGES = {
    "threshold": "current anomaly threshold on the score scale (score = -log10 tail probability)",
    "alert_rate_target": "configured alert_rate",
    "tail_shape": "GPD shape of the SPOT tail fit",
    "tail_scale": "GPD scale of the SPOT tail fit",
    "tail_peaks": "number of peaks in the SPOT tail buffer",
    "drift_cusum": "CUSUM statistic on the mean NLL under the frozen reference",
    "drift_divergence": "symmetric KL bound between the reference and the live model",
    "drift_detected": "1 while drift is flagged, else 0",
    "model_components": "number of mixture components K",
    "model_generation": "model generation (increments on checkpoint)",
    "log_likelihood_mean": "exponentially weighted mean log-likelihood of recent events",
}
"""Scalar keys of :meth:`Metrics.update_health`: the metric name without ``streamem_``."""
_COMPONENT_ARRAYS = {
    "component_weight": "mixture weights",
    "component_mean_shift": "mean shift vs reference, in reference Mahalanobis units",
}
HEALTH_ALIASES = {
    "threshold_surprise": "threshold",
    "generation": "model_generation",
    "n_components": "model_components",
    "weights": "component_weight",
    "mean_shift": "component_mean_shift",
}
"""Keys of ``Detector.health()`` and the metric (without ``streamem_``) they feed."""
HEALTH_CUMULATIVE = {"drift_alarms": "drift_events", "regime_changes": "regime_changes"}
"""Cumulative detector counts turned into counter increments (see :meth:`update_health`)."""
HEALTH_NOT_EXPORTED = frozenset({"events", "anomalies", "learned", "reseeds"})
_NONFINITE_LL = 1e6  # -inf/+inf log-likelihoods enter the running mean as -/+ this
MAX_LAG_PARTITIONS = 4096


class HasSinkStats(Protocol):
    """What the sink collector reads: a configured ``name`` and live ``stats``."""

    name: str
    stats: SinkStats


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
        yield from self._sink_families(with_samples)
        lag = GaugeMetricFamily(
            "streamem_source_lag_events", "events behind the end of the input", labels=["partition"]
        )
        if with_samples:
            for p, v in self._lag().items():
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
        if with_samples:
            for sink in self._m._sinks:
                s = sink.stats
                delivered.add_metric([sink.name], float(s.delivered))
                failed.add_metric([sink.name], float(s.failed))
                spool.add_metric([sink.name], float(s.spool_size))
        yield from (delivered, failed, spool)

    def _lag(self) -> dict[int, int]:
        provider = self._m._lag_provider
        if provider is None:
            return self._m._lag
        try:
            lag = {int(p): int(v) for p, v in provider().items()}
        except Exception as exc:  # a scrape must never fail because the source is unhappy
            logger.warning("source lag unavailable for /metrics: %r", exc)
            return {}
        if len(lag) > MAX_LAG_PARTITIONS:
            logger.warning("source lag: %d partitions, exporting the first %d",
                           len(lag), MAX_LAG_PARTITIONS)  # fmt: skip
            lag = dict(sorted(lag.items())[:MAX_LAG_PARTITIONS])
        return lag


class Metrics:
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
        self._sinks: list[HasSinkStats] = []
        self._lag_provider: Callable[[], Mapping[int, int]] | None = None
        self._lag: dict[int, int] = {}
        self._last_beat = time.monotonic()
        self._stopped = False
        self._up = False
        self._ready = False
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
        self.ready = Gauge(
            "streamem_ready", "1 once warm-up is done and the model scores", registry=r
        )
        self.up = Gauge("streamem_up", "1 while the daemon loop runs", registry=r)
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

    # -- scrape-time sources -----------------------------------------------------------------
    def attach_sinks(self, sinks: Iterable[HasSinkStats]) -> None:
        """Export the ``stats`` of these sinks at scrape time, labelled ``sink=<name>``.

        ``stats.delivered`` feeds ``streamem_sink_deliveries_total``, ``stats.failed``
        ``streamem_sink_failures_total`` and ``stats.spool_size`` ``streamem_sink_spool_size``.

        Parameters
        ----------
        sinks
            Objects with a configured ``name`` and a live :class:`SinkStats` ``stats``.

        Examples
        --------
        >>> class Stub:
        ...     name, stats = "file", SinkStats(delivered=3)
        >>> m = Metrics(CollectorRegistry()); m.attach_sinks([Stub()])
        >>> m.value("streamem_sink_deliveries_total", sink="file")
        3.0
        """
        self._sinks = list(sinks)

    def set_source_lag(self, lag: Mapping[int, int]) -> None:
        """Store ``{partition: lag}`` measured by the daemon loop, exported at scrape time.

        The safe choice for sources that are not thread-safe: ``KafkaSource.lag()`` queries
        the consumer, so call it on the loop thread (say, every status interval) and pass
        the result here rather than handing it to :meth:`set_lag_provider`.

        Parameters
        ----------
        lag
            Events behind per partition; partitions absent from it are no longer exported.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.set_source_lag({0: 40, 1: 2})
        >>> m.value("streamem_source_lag_events", partition="1")
        2.0
        """
        self._lag = {int(p): int(v) for p, v in lag.items()}

    def set_lag_provider(self, provider: Callable[[], Mapping[int, int]] | None) -> None:
        """Call ``provider()`` at each scrape for ``{partition: lag}``.

        It runs on the HTTP thread: it must be thread-safe and must not block (read cached
        values; a Kafka consumer is not thread-safe, see :meth:`set_source_lag`). Errors it
        raises are logged and the scrape goes on without lag samples. While a provider is
        set, values from :meth:`set_source_lag` are not used.

        Parameters
        ----------
        provider
            Returns events behind per partition; None stops exporting lag.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.set_lag_provider(lambda: {0: 12})
        >>> m.value("streamem_source_lag_events", partition="0")
        12.0
        """
        self._lag_provider = provider

    # -- liveness / readiness ----------------------------------------------------------------
    def heartbeat(self) -> None:
        """Tell ``/healthz`` that the daemon loop is alive (call once per loop turn).

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.heartbeat()
        >>> m.liveness(timeout=10.0), m.value("streamem_up")
        ((True, 'ok'), 1.0)
        """
        self._last_beat = time.monotonic()
        if not self._up:
            self.set_up(True)

    def set_up(self, up: bool) -> None:
        """Mark the daemon loop running (True) or stopped (False: ``/healthz`` turns 503).

        Parameters
        ----------
        up
            Whether the loop runs.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.set_up(False)
        >>> m.liveness(timeout=10.0)[0], m.value("streamem_up")
        (False, 0.0)
        """
        self._stopped = not up
        self._up = bool(up)
        if up:
            self._last_beat = time.monotonic()
        self.up.set(1 if up else 0)

    def set_ready(self, ready: bool) -> None:
        """Mark warm-up done (``/readyz`` 200, ``streamem_ready`` 1) or not.

        Parameters
        ----------
        ready
            Whether the model scores.

        Examples
        --------
        >>> m = Metrics(CollectorRegistry()); m.set_ready(True)
        >>> m.readiness(), m.value("streamem_ready")
        ((True, 'ready'), 1.0)
        """
        self._ready = bool(ready)
        self.ready.set(1 if ready else 0)

    def liveness(self, timeout: float) -> tuple[bool, str]:
        """Whether the loop is alive: a heartbeat came within ``timeout`` seconds.

        Parameters
        ----------
        timeout
            Longest allowed silence; the first one counts from construction.

        Returns
        -------
        tuple of (bool, str)
            ``(alive, text for /healthz)``.

        Examples
        --------
        >>> Metrics(CollectorRegistry()).liveness(timeout=60.0)
        (True, 'ok')
        """
        if self._stopped:
            return False, "stopped: the daemon loop is not running"
        silent = time.monotonic() - self._last_beat
        if silent > timeout:
            return False, f"stale: no heartbeat for {silent:.1f} s (limit {timeout:g} s)"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        """Whether warm-up is done.

        Returns
        -------
        tuple of (bool, str)
            ``(ready, text for /readyz)``.

        Examples
        --------
        >>> Metrics(CollectorRegistry()).readiness()
        (False, 'not ready: warming up')
        """
        return (True, "ready") if self._ready else (False, "not ready: warming up")

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


class _QuietHandler(WSGIRequestHandler):
    timeout = 5.0  # a stalled client cannot hold close() for longer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics http: " + format, *args)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads


class MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` in a background thread.

    Parameters
    ----------
    metrics
        What to expose.
    host
        Bind address (``metrics.host``); IPv6 literals work.
    port
        Bind port (``metrics.port``); 0 picks a free one, see :attr:`port`.
    liveness_timeout
        Seconds without :meth:`Metrics.heartbeat` after which ``/healthz`` answers 503.

    Raises
    ------
    ConfigError
        When the address cannot be bound.

    Examples
    --------
    >>> import urllib.request
    >>> m = Metrics(CollectorRegistry())
    >>> with MetricsServer(m, "127.0.0.1", 0) as srv:
    ...     urllib.request.urlopen(f"{srv.url}/healthz").read()
    b'ok\\n'
    """

    def __init__(
        self, metrics: Metrics, host: str = "127.0.0.1", port: int = 9108,
        *, liveness_timeout: float = 60.0,
    ) -> None:  # fmt: skip
        self.metrics = metrics
        self.liveness_timeout = liveness_timeout
        self._prom_app = make_wsgi_app(metrics.registry)
        server_class: type[_Server] = _Server
        if ":" in host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self._server = make_server(host, port, self._app, server_class, _QuietHandler)
        except OSError as exc:
            raise ConfigError(
                "metrics.port", f"cannot listen on {host}:{port} ({exc}); choose a free port or 0"
            ) from exc
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"streamem-metrics-{self.port}", daemon=True,
        )  # fmt: skip
        self._closed = False
        self._thread.start()
        logger.info("serving metrics on %s/metrics", self.url)

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:9108`` (with the bound port).

        Examples
        --------
        >>> with MetricsServer(Metrics(CollectorRegistry()), "127.0.0.1", 0) as srv:
        ...     srv.url == f"http://127.0.0.1:{srv.port}"
        True
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Sequence[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return self._prom_app(environ, start_response)  # type: ignore[no-any-return]
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, 405, "use GET")
        if path == "/healthz":
            ok, text = self.metrics.liveness(self.liveness_timeout)
        elif path == "/readyz":
            ok, text = self.metrics.readiness()
        elif path == "/":
            return _reply(start_response, 200, "streamem: /metrics /healthz /readyz")
        else:
            return _reply(start_response, 404, f"no such path {path}; try /metrics")
        return _reply(start_response, 200 if ok else 503, text)

    def close(self) -> None:
        """Stop serving and join every server thread; safe to call twice.

        Examples
        --------
        >>> srv = MetricsServer(Metrics(CollectorRegistry()), "127.0.0.1", 0)
        >>> srv.close(); srv.close()
        """
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reply(start_response: Callable[..., Any], status: int, text: str) -> list[bytes]:
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    body = f"{text}\n".encode()
    start_response(
        f"{status} {reasons[status]}",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
