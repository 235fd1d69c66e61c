"""Prometheus metrics and the HTTP probes of the daemon.

- :mod:`streamem.metrics.recorder`: :class:`Metrics`, what the daemon records;
- :mod:`streamem.metrics.exporter`: the Prometheus registry and instruments (the only module
  that imports prometheus_client);
- :mod:`streamem.metrics.health`: the one mapping from detector and lane state to metrics;
- :mod:`streamem.metrics.catalogue`: names, label values and buckets (``docs/contracts.md``);
- :mod:`streamem.metrics.probes`, :mod:`streamem.metrics.inputs`,
  :mod:`streamem.metrics.loglik`: liveness and readiness, the values read at scrape time,
  the log-likelihood histogram and mean;
- :mod:`streamem.metrics.server`: :class:`MetricsServer`, serving ``/metrics``, ``/healthz``
  and ``/readyz``.

:class:`Metrics` is imported on first use, so importing the pure parts (the catalogue, the
health mapping, the server) does not load prometheus_client.

Examples
--------
>>> from streamem.metrics import Metrics
>>> Metrics().value("streamem_anomalies_total")
0.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamem.metrics.catalogue import (
    BATCH_BUCKETS,
    CHECKPOINT_BUCKETS,
    COMPONENT_ARRAYS,
    EVENT_OUTCOMES,
    FEEDBACK_VERDICTS,
    HEALTH_GAUGES,
    LOG_LIKELIHOOD_BUCKETS,
    MAX_LAG_PARTITIONS,
    REJECT_REASONS,
)
from streamem.metrics.health import (
    HEALTH_ALIASES,
    HEALTH_CUMULATIVE,
    HEALTH_NOT_EXPORTED,
    HealthValues,
    health_values,
    report_lane,
)
from streamem.metrics.inputs import HasSinkStats
from streamem.metrics.server import MetricsServer

if TYPE_CHECKING:
    from streamem.metrics.recorder import Metrics

__all__ = [
    "BATCH_BUCKETS",
    "CHECKPOINT_BUCKETS",
    "COMPONENT_ARRAYS",
    "EVENT_OUTCOMES",
    "FEEDBACK_VERDICTS",
    "HEALTH_ALIASES",
    "HEALTH_CUMULATIVE",
    "HEALTH_GAUGES",
    "HEALTH_NOT_EXPORTED",
    "LOG_LIKELIHOOD_BUCKETS",
    "MAX_LAG_PARTITIONS",
    "REJECT_REASONS",
    "HasSinkStats",
    "HealthValues",
    "Metrics",
    "MetricsServer",
    "health_values",
    "report_lane",
]


def __getattr__(name: str) -> Any:
    if name == "Metrics":
        from streamem.metrics.recorder import Metrics

        return Metrics
    raise AttributeError(f"module 'streamem.metrics' has no attribute {name!r}")
