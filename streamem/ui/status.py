"""The overview numbers of the operator page (``GET /api/v1/status``).

Counters and gauges come from :class:`streamem.metrics.Metrics` (so the page and
``/metrics`` can never disagree); rates over the last minute come from the
:class:`~streamem.ui.history.History` score points.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

from streamem.sinks.base import SinkStats
from streamem.ui.history import History

__all__ = ["MetricsView", "status"]

RATE_WINDOW_SECONDS = 60.0
"""Events/s and the observed anomaly rate are averaged over this many seconds."""


class _NamedStats(Protocol):
    name: str
    stats: SinkStats


class MetricsView(Protocol):
    """What the status needs of :class:`streamem.metrics.Metrics`."""

    def value(self, name: str, **labels: str) -> float | None: ...

    def readiness(self) -> tuple[bool, str]: ...

    def source_lag(self) -> dict[int, int]: ...

    @property
    def sinks(self) -> Iterable[_NamedStats]: ...


def _total(metrics: MetricsView, name: str, label: str, values: Iterable[str]) -> float:
    return sum(metrics.value(name, **{label: v}) or 0.0 for v in values)


def status(metrics: MetricsView | None, history: History, *, alert_rate: float,
           extra: Callable[[], Mapping[str, Any]] | None = None,
           clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """The overview as a JSON-ready dict.

    Parameters
    ----------
    metrics
        The daemon's metrics (None when metrics are disabled: counters are then absent).
    history
        The page's history (score points).
    alert_rate
        The configured target anomaly rate.
    extra
        More fields (e.g. the model scope), merged in last.
    clock
        Wall clock.

    Examples
    --------
    >>> s = status(None, History(), alert_rate=1e-3)
    >>> s["alert_rate_target"], s["events_per_second"], s["ready"]
    (0.001, 0.0, False)
    """
    now = clock()
    recent = history.points(since=now - RATE_WINDOW_SECONDS)
    n = sum(p["events"] for p in recent)
    flagged = sum(p["anomalies"] for p in recent)
    span = (now - recent[0]["t"]) if recent else 0.0
    out: dict[str, Any] = {
        "time": now,
        "alert_rate_target": alert_rate,
        "events_per_second": n / max(span, 1.0) if n else 0.0,
        "anomaly_rate": flagged / n if n else None,
        "threshold_surprise": next((p["threshold_surprise"] for p in reversed(recent)
                                    if p["threshold_surprise"] is not None), None),
        "warming_up": bool(recent and recent[-1]["warming_up"]),
        "ready": False, "readiness": "no metrics",
    }
    if metrics is not None:
        ready, text = metrics.readiness()
        outcomes = ("learned", "anomalous", "rejected", "skipped")
        out.update({
            "ready": ready, "readiness": text,
            "events_total": _total(metrics, "streamem_events_total", "outcome", outcomes),
            "anomalies_total": metrics.value("streamem_anomalies_total") or 0.0,
            "rejected_total": metrics.value("streamem_events_total", outcome="rejected") or 0.0,
            "lag_events": sum(metrics.source_lag().values()),
            "checkpoint_age_seconds": metrics.value("streamem_checkpoint_age_seconds"),
            "checkpoints_total": metrics.value("streamem_checkpoints_total") or 0.0,
            "sinks": [{"name": s.name, **asdict(s.stats)} for s in metrics.sinks],
        })
    if extra is not None:
        out.update(extra())
    return out
