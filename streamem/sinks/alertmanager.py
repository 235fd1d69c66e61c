"""The Alertmanager sink: incidents as alerts on Alertmanager's ``/api/v2/alerts``.

An incident that opens is posted as a firing alert (labels ``alertname="StreamemAnomaly"``,
``key``, ``severity`` = ``warning`` or ``critical``, plus the configured labels) whose
``endsAt`` lies ``alert_ttl_seconds`` ahead; the sink re-posts it every ``refresh_seconds``
so it stays firing, and anomalies of the same key refresh its annotations (at most once per
``update_seconds``). When the incident resolves, the alert is posted once more with
``endsAt`` at the resolution time. A warning that escalates to critical resolves the warning
labelset and fires the critical one in the same request, so no stale alert lingers.
Anomalies of keys without an open incident are not sent (counted in ``stats.suppressed``).
Queueing, retries and the durable spool are those of
:class:`~streamem.sinks.delivery.QueuedHttpSink`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.config.rules import check_labels, check_sink_value
from streamem.errors import ConfigError
from streamem.sinks.delivery import QueuedHttpSink
from streamem.sinks.http import HttpTransport
from streamem.sinks.payload import delivery_id, dumps
from streamem.sinks.spool import Delivery

__all__ = ["AlertmanagerSink", "postable_alert", "rfc3339"]



def rfc3339(seconds: float) -> str:
    """An epoch time as the RFC 3339 UTC text Alertmanager expects.

    Parameters
    ----------
    seconds
        Seconds since the epoch.

    Returns
    -------
    str
        For example ``2026-01-01T00:00:00.000Z``.

    Examples
    --------
    >>> rfc3339(0.25)
    '1970-01-01T00:00:00.250Z'
    """
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(record: AnomalyRecord | None) -> dict[str, str]:
    if record is None:
        return {}
    features = "; ".join(f"{f.name}={f.value:.6g} (expected {f.expected:.6g}, z={f.z:.2f})"
                         for f in record.top_features[:5])
    text = (f"score {record.score:.3g} (threshold {record.threshold:.3g}), tail probability "
            f"{record.tail_probability:.3g}, severity {record.severity:.0f}/100")
    return {"description": text + (f". Top features: {features}" if features else ""),
            "score": f"{record.score:.6g}",
            "tail_probability": f"{record.tail_probability:.6g}",
            "anomaly_id": record.id}


def postable_alert(labels: Mapping[str, str], annotations: Mapping[str, str], starts_at: float,
                   ends_at: float, generator_url: str | None = None) -> dict[str, Any]:
    """One alert in the shape of Alertmanager's v2 ``PostableAlert``.

    Parameters
    ----------
    labels
        The alert's identity (label names must match ``[a-zA-Z_][a-zA-Z0-9_]*``).
    annotations
        Free text shown to people.
    starts_at, ends_at
        Epoch seconds; an alert whose ``endsAt`` passed is resolved.
    generator_url
        Link back to the source, if any.

    Returns
    -------
    dict
        ``labels``, ``annotations``, ``startsAt``, ``endsAt`` and maybe ``generatorURL``.

    Examples
    --------
    >>> postable_alert({"alertname": "StreamemAnomaly"}, {"summary": "x"}, 0.0, 60.0)
    {'labels': {'alertname': 'StreamemAnomaly'}, 'annotations': {'summary': 'x'},
     'startsAt': '1970-01-01T00:00:00.000Z', 'endsAt': '1970-01-01T00:01:00.000Z'}
    """
    alert: dict[str, Any] = {"labels": {str(k): str(v) for k, v in labels.items()},
                             "annotations": {str(k): str(v) for k, v in annotations.items()},
                             "startsAt": rfc3339(starts_at), "endsAt": rfc3339(ends_at)}
    if generator_url:
        alert["generatorURL"] = generator_url
    return alert


@dataclass
class _OpenAlert:
    incident: Incident
    labels: dict[str, str]
    max_severity: float
    last: AnomalyRecord | None
    posted_at: float
    updates: int = 0


class AlertmanagerSink(QueuedHttpSink):
    """Incidents as Alertmanager alerts (firing, refreshed, escalated, resolved).

    Parameters
    ----------
    name
        Sink name (the ``sink`` label of the metrics).
    url
        Alertmanager base url, e.g. ``http://127.0.0.1:9093``.
    labels
        Extra labels on every alert (e.g. ``{"team": "plant-ops"}``); may override
        ``alertname`` but not ``key`` or ``severity``.
    generator_url
        ``generatorURL`` of the alerts (a dashboard link), if any.
    critical_severity
        Severity (0-100) from which the ``severity`` label is ``critical``, not ``warning``.
    alert_ttl_seconds
        ``endsAt`` of a firing alert lies this far ahead...
    refresh_seconds
        ...and the alert is re-posted this often while the incident is open.
    update_seconds
        Anomalies of an open incident re-post it at most this often.
    timeout_seconds, max_retries, backoff_base_seconds, backoff_max_seconds, queue_size
        As for :class:`~streamem.sinks.delivery.QueuedHttpSink`.
    spool_dir
        This sink's spool directory.
    transport
        HTTP transport (a new one by default).
    clock, wall_clock
        Monotonic clock (pacing) and epoch clock (``endsAt``).

    Examples
    --------
    >>> import tempfile
    >>> sink = AlertmanagerSink("am", "http://127.0.0.1:1", labels={"team": "ops"},
    ...                         max_retries=0, spool_dir=tempfile.mkdtemp())
    >>> sink.emit_incident(Incident(id="k:1", key="k", status="firing", started_at=1.0,
    ...                             ended_at=None, max_severity=95.0, last=None))
    >>> sink.close()             # nothing listens on port 1: the alert waits in the spool
    >>> sink.stats.spooled, sink.stats.spool_size
    (1, 1)
    """

    def __init__(self, name: str, url: str, labels: Mapping[str, str] | None = None,
                 generator_url: str | None = None, *, critical_severity: float = 90.0,
                 alert_ttl_seconds: float = 3600.0, refresh_seconds: float = 300.0,
                 update_seconds: float = 60.0, timeout_seconds: float = 5.0,
                 max_retries: int = 5, backoff_base_seconds: float = 0.5,
                 backoff_max_seconds: float = 30.0, queue_size: int = 10000,
                 spool_dir: str | os.PathLike[str], transport: HttpTransport | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        extra = dict(labels or {})
        check_labels(extra)  # the config's rules (streamem.config.rules)
        if generator_url is not None:
            check_sink_value("generator_url", generator_url)
        if not 0 < refresh_seconds < alert_ttl_seconds:
            raise ConfigError("refresh_seconds", f"{refresh_seconds} must be positive and "
                              f"below alert_ttl_seconds={alert_ttl_seconds}, or alerts expire "
                              "between refreshes")
        self.labels = {"alertname": "StreamemAnomaly", **extra}
        self.generator_url = generator_url
        self.critical_severity = critical_severity
        self.alert_ttl_seconds = alert_ttl_seconds
        self.refresh_seconds = refresh_seconds
        self.update_seconds = update_seconds
        self._wall = wall_clock
        self._open: dict[str | None, _OpenAlert] = {}
        self._serial = 0
        self._lock = threading.Lock()
        super().__init__(name, url, spool_dir=spool_dir, timeout_seconds=timeout_seconds,
                         max_retries=max_retries, backoff_base_seconds=backoff_base_seconds,
                         backoff_max_seconds=backoff_max_seconds, queue_size=queue_size,
                         transport=transport, clock=clock)

    def _target(self, delivery: Delivery) -> str:
        return self.url.rstrip("/") + "/api/v2/alerts"

    def _labels(self, key: str | None, severity: float) -> dict[str, str]:
        level = "critical" if severity >= self.critical_severity else "warning"
        labels = {**self.labels, "severity": level}
        if key:
            labels["key"] = key
        return labels

    def _alert(self, state: _OpenAlert, labels: dict[str, str], ends_at: float) -> dict[str, Any]:
        incident = state.incident
        who = incident.key if incident.key else "the stream"
        annotations = {"summary": f"streamem: anomalous behaviour of {who} (max severity "
                                  f"{state.max_severity:.0f}/100)",
                       "incident_id": incident.id, "max_severity": f"{state.max_severity:.1f}",
                       "count": str(incident.count + state.updates),
                       **_describe(state.last)}
        return postable_alert(labels, annotations, incident.started_at, ends_at,
                              self.generator_url)

    def _post(self, state: _OpenAlert, alerts: list[dict[str, Any]], kind: str,
              ident: str) -> Delivery:
        state.posted_at = self._clock()
        return Delivery(ident, kind, state.incident.key, dumps(alerts).encode("utf-8"))

    def _incident_delivery(self, incident: Incident) -> Delivery | None:
        with self._lock:
            previous = self._open.pop(incident.key, None)
            state = _OpenAlert(incident, self._labels(incident.key, incident.max_severity),
                               incident.max_severity, incident.last, 0.0)
            alerts = []
            if incident.status == "firing":
                if previous is not None and previous.labels != state.labels:
                    alerts.append(self._alert(previous, previous.labels, self._wall()))
                self._open[incident.key] = state
                ends_at = self._wall() + self.alert_ttl_seconds
            else:
                if previous is not None:  # resolve the labelset that was actually posted
                    state.labels = previous.labels
                    state.max_severity = max(state.max_severity, previous.max_severity)
                    state.last = state.last or previous.last
                ends_at = incident.ended_at if incident.ended_at is not None else self._wall()
            alerts.append(self._alert(state, state.labels, ends_at))
            return self._post(state, alerts, "incident", delivery_id(incident))

    def _anomaly_delivery(self, record: AnomalyRecord) -> Delivery | None:
        with self._lock:
            state = self._open.get(record.key)
            if state is None:
                self._count("suppressed")
                return None
            state.last = record
            state.updates += 1
            state.max_severity = max(state.max_severity, record.severity)
            escalates = self._labels(record.key, state.max_severity) != state.labels
            if not escalates and self._clock() - state.posted_at < self.update_seconds:
                self._count("suppressed")
                return None
            return self._refresh(state, "update")

    def _refresh(self, state: _OpenAlert, kind: str) -> Delivery:
        labels = self._labels(state.incident.key, state.max_severity)
        alerts = []
        if labels != state.labels:  # escalation: end the old labelset, fire the new one
            alerts.append(self._alert(state, state.labels, self._wall()))
            state.labels = labels
        alerts.append(self._alert(state, labels, self._wall() + self.alert_ttl_seconds))
        self._serial += 1
        return self._post(state, alerts, kind, f"{state.incident.id}/{kind}/{self._serial}")

    def _periodic(self, now: float) -> list[Delivery]:
        with self._lock:
            return [self._refresh(state, "refresh") for state in self._open.values()
                    if now - state.posted_at >= self.refresh_seconds]
