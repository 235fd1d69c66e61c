"""What the daemon records: every streamem metric behind cheap per-batch update methods.

:class:`Metrics` is the one object the daemon, the pipeline, the sink gate, the operator page
and :class:`~streamem.metrics.server.MetricsServer` talk to. It is called once per
micro-batch, never per event, and composes the parts (no mixins):

- :class:`~streamem.metrics.exporter.Exporter`: the Prometheus registry and instruments;
- :class:`~streamem.metrics.probes.Probes`: liveness and readiness;
- :class:`~streamem.metrics.inputs.ScrapeInputs`: the sinks and source lag read at scrape time;
- :class:`~streamem.metrics.loglik.LogLikelihoodStats`: the log-likelihood histogram and mean;
- :func:`~streamem.metrics.health.health_values`: the mapping of detector health to metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from streamem.errors import InvalidInputError
from streamem.metrics.catalogue import LOG_LIKELIHOOD_BUCKETS, REJECT_REASONS
from streamem.metrics.exporter import Exporter
from streamem.metrics.health import HealthValues, health_values
from streamem.metrics.inputs import HasSinkStats, Scrape, ScrapeInputs
from streamem.metrics.loglik import LogLikelihoodStats
from streamem.metrics.probes import Probes
from streamem.metrics.server import WsgiApp

__all__ = ["Metrics"]

logger = logging.getLogger(__name__)


class Metrics:
    """Every streamem metric, on one registry, with cheap per-batch update methods.

    Parameters
    ----------
    registry
        A :class:`prometheus_client.CollectorRegistry` to register on; a fresh one (with the
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

    def __init__(self, registry: Any = None, *, ll_half_life: float = 1000.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ll = LogLikelihoodStats(LOG_LIKELIHOOD_BUCKETS, ll_half_life)
        self._arrays: dict[str, np.ndarray[Any, Any]] = {}
        self._last_checkpoint = clock()
        self._inputs = ScrapeInputs()
        self._reported: dict[str, float] = {}
        self._warned_keys: set[str] = set()
        self._prom = Exporter(registry, self._scrape)
        self.registry = self._prom.registry
        self._probes = Probes(show_up=lambda up: self._prom.up.set(1 if up else 0),
                              show_ready=lambda ready: self._prom.ready.set(1 if ready else 0))

    # -- hot path: once per micro-batch ------------------------------------------------------
    def observe_batch(self, log_likelihoods: np.ndarray[Any, Any], n_learned: int,
                      n_anomalous: int, n_skipped: int, duration_seconds: float) -> None:
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
        >>> m = Metrics()
        >>> m.observe_batch(np.zeros(1024), 1024, 0, 0, 0.01)
        >>> m.value("streamem_log_likelihood_bucket", le="+Inf")
        1024.0
        >>> m.value("streamem_log_likelihood_mean")
        0.0
        """
        with self._lock:
            mean = self._ll.observe(log_likelihoods)
        if mean is not None:
            self._prom.gauges["log_likelihood_mean"].set(mean)
        for outcome, n in (("learned", n_learned), ("anomalous", n_anomalous),
                           ("skipped", n_skipped)):
            if n:
                self._prom.outcome[outcome].inc(n)
        if n_anomalous:
            self._prom.anomalies.inc(n_anomalous)
        self._prom.batch_duration.observe(duration_seconds)

    def count_rejected(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected events (``streamem_rejected_events_total`` and the outcome).

        Raises
        ------
        InvalidInputError
            For a reason outside :data:`~streamem.metrics.catalogue.REJECT_REASONS` (label
            values must stay bounded).

        Examples
        --------
        >>> m = Metrics(); m.count_rejected("too_large", 2)
        >>> m.value("streamem_rejected_events_total", reason="too_large")
        2.0
        """
        if reason not in self._prom.reason:
            raise InvalidInputError(
                f"reject reason {reason!r} is not a known label value; use one of {REJECT_REASONS}"
            )
        if n:
            self._prom.reason[reason].inc(n)
            self._prom.outcome["rejected"].inc(n)

    # -- model health --------------------------------------------------------------------------
    def update_health(self, health: Mapping[str, Any]) -> None:
        """Set the model-health metrics from ``Detector.health()`` (or metric-named keys).

        The mapping is :func:`~streamem.metrics.health.health_values`: missing keys keep
        their previous value (NaN until first reported), ``ready`` drives
        :meth:`set_ready`, and the cumulative ``drift_alarms`` and ``regime_changes`` advance
        ``streamem_drift_events_total`` and ``streamem_regime_changes_total`` by how much they
        grew since the previous call (from 0 on the first). Unknown keys are ignored with a
        one-time warning. The daemon reports each lane with
        :func:`~streamem.metrics.health.report_lane` instead.

        Examples
        --------
        >>> m = Metrics()
        >>> m.update_health({"drift_detected": 1, "mean_shift": np.array([0.1, 2.0]),
        ...                  "drift_alarms": 4})
        >>> m.update_health({"drift_alarms": 6})
        >>> m.value("streamem_drift_detected"), m.value("streamem_drift_events_total")
        (1.0, 6.0)
        >>> m.value("streamem_component_mean_shift", component="1")
        2.0
        """
        self.apply_health(health_values(health, reported=self._reported))

    def apply_health(self, values: HealthValues) -> None:
        """Set the metrics to already-mapped :class:`~streamem.metrics.health.HealthValues`.

        Examples
        --------
        >>> from streamem.metrics.health import HealthValues
        >>> m = Metrics(); m.apply_health(HealthValues(gauges={"threshold": 2.5}))
        >>> m.value("streamem_threshold")
        2.5
        """
        if values.arrays:
            with self._lock:
                self._arrays.update(values.arrays)
        for key, v in values.gauges.items():
            self._prom.gauges[key].set(v)
        counters = {"drift_events": self._prom.drift_events,
                    "regime_changes": self._prom.regime_changes, **self._prom.key_counters}
        for key, inc in values.increments.items():
            counters[key].inc(inc)
        for key, delta in values.deltas.items():
            self._prom.key_gauges[key].inc(delta)
        if values.ready is not None:
            self.set_ready(values.ready)
        for key in values.unknown:
            if key not in self._warned_keys:
                self._warned_keys.add(key)
                logger.warning("update_health: unknown key %r ignored", key)

    # -- counters ------------------------------------------------------------------------------
    def declare_rules(self, names: Iterable[str]) -> None:
        """Export ``streamem_anomalies_suppressed_total`` at 0 for each configured rule.

        Examples
        --------
        >>> m = Metrics(); m.declare_rules(["maintenance"])
        >>> m.value("streamem_anomalies_suppressed_total", rule="maintenance")
        0.0
        """
        for name in names:
            self._prom.suppressed.labels(rule=name)

    def count_suppressed(self, rule: str) -> None:
        """Count one anomaly suppressed by the rule named ``rule`` (a config name: bounded).

        Examples
        --------
        >>> m = Metrics(); m.count_suppressed("maintenance")
        >>> m.value("streamem_anomalies_suppressed_total", rule="maintenance")
        1.0
        """
        self._prom.suppressed.labels(rule=rule).inc()

    def count_feedback(self, verdict: str) -> None:
        """Count one operator verdict (``streamem_feedback_total{verdict}``).

        Examples
        --------
        >>> m = Metrics(); m.count_feedback("false_positive")
        >>> m.value("streamem_feedback_total", verdict="false_positive")
        1.0
        """
        self._prom.verdict[verdict].inc()

    def count_incidents_evicted(self, n: int) -> None:
        """Count ``n`` evicted incidents (``streamem_incidents_evicted_total``).

        Examples
        --------
        >>> m = Metrics(); m.count_incidents_evicted(3)
        >>> m.value("streamem_incidents_evicted_total")
        3.0
        """
        self._prom.incidents_evicted.inc(n)

    # -- checkpoints ---------------------------------------------------------------------------
    def observe_checkpoint(self, duration_seconds: float, at: float | None = None) -> None:
        """Record a durable checkpoint written at unix time ``at`` (now when None).

        Examples
        --------
        >>> m = Metrics(); m.observe_checkpoint(0.01)
        >>> m.value("streamem_checkpoints_total"), m.value("streamem_checkpoint_age_seconds") < 1
        (1.0, True)
        """
        self._prom.checkpoints.inc()
        self._prom.checkpoint_duration.observe(duration_seconds)
        self.restored_checkpoint(self._clock() if at is None else at)

    def restored_checkpoint(self, at: float) -> None:
        """Count the checkpoint age from a snapshot restored at start-up (not a new write).

        Parameters
        ----------
        at
            The snapshot's ``created_at`` (unix time).

        Examples
        --------
        >>> m = Metrics(clock=lambda: 100.0); m.restored_checkpoint(40.0)
        >>> m.value("streamem_checkpoint_age_seconds"), m.value("streamem_checkpoints_total")
        (60.0, 0.0)
        """
        with self._lock:
            self._last_checkpoint = at

    # -- liveness, readiness and scrape-time inputs (see Probes and ScrapeInputs) ---------------
    def heartbeat(self) -> None:
        """The daemon loop is alive (:meth:`Probes.heartbeat <streamem.metrics.probes.Probes.heartbeat>`)."""  # noqa: E501
        self._probes.heartbeat()

    def set_up(self, up: bool) -> None:
        """The daemon loop runs or stopped (:meth:`Probes.set_up`)."""
        self._probes.set_up(up)

    def set_ready(self, ready: bool) -> None:
        """Warm-up done or not (:meth:`Probes.set_ready`)."""
        self._probes.set_ready(ready)

    def set_sinks_blocked(self, reason: str | None) -> None:
        """A sink failure holds the checkpoint back, or not (:meth:`Probes.set_sinks_blocked`)."""
        self._probes.set_sinks_blocked(reason)

    def liveness(self, timeout: float) -> tuple[bool, str]:
        """``(alive, text for /healthz)`` (:meth:`Probes.liveness`)."""
        return self._probes.liveness(timeout)

    def readiness(self) -> tuple[bool, str]:
        """``(ready, text for /readyz)`` (:meth:`Probes.readiness`)."""
        return self._probes.readiness()

    @property
    def sinks(self) -> list[HasSinkStats]:
        """The sinks attached by :meth:`attach_sinks`."""
        return self._inputs.sinks

    def attach_sinks(self, sinks: Iterable[HasSinkStats]) -> None:
        """Export these sinks' ``stats`` at scrape time (:meth:`ScrapeInputs.attach_sinks`)."""
        self._inputs.attach_sinks(sinks)

    def set_source_lag(self, lag: Mapping[int, int]) -> None:
        """Store ``{partition: lag}`` for the scrape (:meth:`ScrapeInputs.set_source_lag`)."""
        self._inputs.set_source_lag(lag)

    def source_lag(self) -> dict[int, int]:
        """``{partition: lag}`` as last stored by :meth:`set_source_lag`."""
        return self._inputs.source_lag()

    # -- reading -------------------------------------------------------------------------------
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
        >>> Metrics().value("streamem_events_total", outcome="learned")
        0.0
        """
        return self._prom.value(name, labels)

    def wsgi_app(self) -> WsgiApp:
        """The Prometheus exposition app for this registry (``/metrics``).

        Examples
        --------
        >>> callable(Metrics().wsgi_app())
        True
        """
        return self._prom.wsgi_app()

    def _scrape(self) -> Scrape:
        with self._lock:
            counts = self._ll.counts.copy()
            arrays = dict(self._arrays)
            last_checkpoint = self._last_checkpoint
        return Scrape(ll_bounds=self._ll.bounds, ll_counts=counts, arrays=arrays,
                      checkpoint_age=max(0.0, self._clock() - last_checkpoint),
                      sinks_blocked_seconds=self._probes.sinks_blocked_seconds(),
                      sinks=self._inputs.sinks, source_lag=self._inputs.source_lag())

