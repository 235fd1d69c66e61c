"""What the operator page shows: bounded rings of recent anomalies, incidents, per-batch
scores, per-key activity, model snapshots and feedback verdicts (pure: stdlib + numpy).

The pipeline thread writes (:meth:`History.observe_batch`, :meth:`History.anomaly`,
:meth:`History.incident`); the HTTP threads read plain, JSON-ready copies. Every collection
has a fixed bound, so memory stays flat however many events, keys or incidents pass:
``max_anomalies`` records, ``max_anomalies`` incidents, ``max_keys`` keys (least recently
active evicted first), ``max_points`` score points and model snapshots.

The state (:meth:`History.to_state`) is plain JSON and is written with each checkpoint, so a
restart keeps the recent history.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.metrics.catalogue import FEEDBACK_VERDICTS
from streamem.model._versioned import StateReader
from streamem.scoring.result import DetectionResult

__all__ = ["VERDICTS", "History"]

VERDICTS = FEEDBACK_VERDICTS
"""The verdicts ``POST /api/v1/feedback`` takes (the metric's label values)."""

_STATE_VERSION = 1


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _incident_dict(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id, "key": incident.key, "status": incident.status,
        "started_at": incident.started_at, "ended_at": incident.ended_at,
        "max_severity": incident.max_severity, "count": incident.count,
        "last_anomaly": None if incident.last is None else incident.last.id,
    }


class History:
    """Bounded recent history for the operator page and its JSON API.

    Parameters
    ----------
    max_anomalies
        Most anomaly records (and incidents) kept, newest first out.
    max_keys
        Most keys tracked in the key ranking (least recently active evicted).
    max_points
        Most per-batch score points and model snapshots kept.
    clock
        Wall clock (``time.time``).

    Examples
    --------
    >>> from streamem.alerting.records import AnomalyRecord
    >>> h = History(max_anomalies=2)
    >>> for i in range(3):
    ...     h.anomaly(AnomalyRecord(id=f"a{i}", key="pump-1", timestamp=float(i), score=9.0,
    ...                             tail_probability=1e-6, severity=90.0, threshold=1e-3))
    >>> [a["id"] for a in h.anomalies()], h.keys()[0]["anomalies"]
    (['a2', 'a1'], 3)
    """

    def __init__(self, max_anomalies: int = 1000, max_keys: int = 10_000,
                 max_points: int = 3600, *, clock: Callable[[], float] = time.time) -> None:
        self.max_anomalies = max_anomalies
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._anomalies: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._incidents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._keys: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._points: deque[dict[str, Any]] = deque(maxlen=max_points)
        self._models: deque[dict[str, Any]] = deque(maxlen=max_points)
        self._feedback: deque[dict[str, Any]] = deque(maxlen=max_anomalies)
        self._verdicts = dict.fromkeys(VERDICTS, 0)
        self.evicted_keys = 0

    # ------------------------------------------------------------------ writers
    def observe_batch(self, lane: str, result: DetectionResult) -> None:
        """Record one scored batch: its size, flags, top and median surprise, threshold.

        Parameters
        ----------
        lane
            The model state that scored it (``"global"``, ``"p3"``).
        result
            The detector's result for the batch.
        """
        surprise = result.surprise
        scored = surprise[np.isfinite(surprise)]
        thr = result.threshold[-1] if len(result.threshold) else math.nan
        point = {
            "t": self._clock(), "lane": lane, "events": len(result),
            "anomalies": int(result.is_anomaly.sum()),
            "warming_up": int(result.warming_up.sum()),
            "max_surprise": _finite(float(scored.max())) if scored.size else None,
            "median_surprise": _finite(float(np.median(scored))) if scored.size else None,
            "threshold_surprise": _finite(-math.log10(thr)) if thr > 0 else None,
        }
        with self._lock:
            self._points.append(point)

    def observe_model(self, lane: str, health: Mapping[str, Any]) -> None:
        """Record a model snapshot: component weights, drift statistics, regime changes.

        Parameters
        ----------
        lane
            The model state.
        health
            ``Detector.health()``.
        """
        snap = {"t": self._clock(), "lane": lane,
                "weights": [float(w) for w in np.asarray(health.get("weights", ()))]}
        for k in ("n_components", "drift_cusum", "drift_divergence", "drift_detected",
                  "regime_changes", "events", "learned", "anomalies", "ready"):
            v = health.get(k)
            snap[k] = _finite(float(v)) if v is not None else None
        with self._lock:
            self._models.append(snap)

    def anomaly(self, record: AnomalyRecord, x: NDArray[np.float64] | None = None) -> None:
        """Keep one anomaly record and count it for its key; with ``x`` (the event's
        feature vector, shape (n_features,)) also as ``"x"`` (NaN as null), for learning a
        false positive."""
        d = record.to_dict()
        if x is not None:
            d["x"] = [_finite(float(v)) for v in x]
        with self._lock:
            self._anomalies[record.id] = d
            self._anomalies.move_to_end(record.id)
            while len(self._anomalies) > self.max_anomalies:
                self._anomalies.popitem(last=False)
            self._touch_key(record.key, d)

    def incident(self, incident: Incident) -> None:
        """Keep the newest state of one incident."""
        with self._lock:
            self._incidents[incident.id] = _incident_dict(incident)
            self._incidents.move_to_end(incident.id)
            while len(self._incidents) > self.max_anomalies:
                self._incidents.popitem(last=False)

    def feedback(self, anomaly_id: str, verdict: str, note: str = "") -> dict[str, Any]:
        """Store an operator's verdict on a recent anomaly.

        Raises
        ------
        KeyError
            ``anomaly_id`` is not among the recent anomalies.
        ValueError
            ``verdict`` is not one of :data:`VERDICTS`.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        with self._lock:
            record = self._anomalies.get(anomaly_id)
            if record is None:
                raise KeyError(anomaly_id)
            entry = {"id": anomaly_id, "verdict": verdict, "note": note, "at": self._clock(),
                     "key": record.get("key")}
            record["verdict"] = verdict
            self._feedback.append(entry)
            self._verdicts[verdict] += 1
            return dict(entry)

    def _touch_key(self, key: str | None, record: Mapping[str, Any]) -> None:
        name = "" if key is None else key
        row = self._keys.pop(name, None)
        if row is None:
            row = {"key": key, "anomalies": 0, "max_severity": 0.0}
            if len(self._keys) >= self.max_keys:
                self._keys.popitem(last=False)
                self.evicted_keys += 1
        row["anomalies"] += 1
        row["max_severity"] = max(row["max_severity"], float(record["severity"]))
        row["last_anomaly"] = record["id"]
        row["last_severity"] = float(record["severity"])
        row["last_at"] = record.get("timestamp") or record.get("detected_at")
        self._keys[name] = row

    def observe_key_states(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Merge the model state of ranked keys (``model.scope: key``: events, warming or
        not, last anomaly) into their rows; keys not ranked are ignored."""
        with self._lock:
            for key, state in states.items():
                row = self._keys.get(key)
                if row is not None:
                    row.update(state)

    # ------------------------------------------------------------------ readers
    def anomalies(self, key: str | None = None, since: float | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """Recent anomaly records, newest first, optionally for one key and after ``since``
        (event time, else detection time)."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for rec in reversed(self._anomalies.values()):
                if key is not None and rec.get("key") != key:
                    continue
                at = rec.get("timestamp") or rec.get("detected_at") or 0.0
                if since is not None and at < since:
                    continue
                out.append(dict(rec))
                if len(out) >= limit:
                    break
        return out

    def anomaly_by_id(self, anomaly_id: str) -> dict[str, Any] | None:
        """One recent anomaly record, or None."""
        with self._lock:
            rec = self._anomalies.get(anomaly_id)
            return None if rec is None else dict(rec)

    def incidents(self, key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recent incidents, newest transition first."""
        with self._lock:
            rows = [dict(i) for i in reversed(self._incidents.values())
                    if key is None or i["key"] == key]
        return rows[:limit]

    def keys(self, top: int = 20, query: str | None = None) -> list[dict[str, Any]]:
        """Keys ranked by recent anomalies, then by their worst severity."""
        with self._lock:
            rows = [dict(r) for r in self._keys.values()
                    if not query or query.lower() in str(r["key"]).lower()]
        rows.sort(key=lambda r: (-r["anomalies"], -r["max_severity"]))
        return rows[:top]

    def points(self, since: float | None = None) -> list[dict[str, Any]]:
        """Per-batch score points (oldest first), optionally after wall time ``since``."""
        with self._lock:
            return [dict(p) for p in self._points if since is None or p["t"] >= since]

    def models(self, since: float | None = None) -> list[dict[str, Any]]:
        """Model snapshots (oldest first)."""
        with self._lock:
            return [dict(m) for m in self._models if since is None or m["t"] >= since]

    def verdicts(self) -> dict[str, int]:
        """Verdicts stored so far, by verdict."""
        with self._lock:
            return dict(self._verdicts)

    def recent_feedback(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest verdicts first."""
        with self._lock:
            return [dict(f) for f in reversed(self._feedback)][:limit]

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Plain JSON state (no pickle), written with each checkpoint.

        Examples
        --------
        >>> h = History(); h.incident(Incident("k:1", "k", "firing", 0.0, None, 80.0, None))
        >>> History.from_state(h.to_state()).incidents()[0]["status"]
        'firing'
        """
        with self._lock:
            return {
                "version": _STATE_VERSION,
                "anomalies": list(self._anomalies.values()),
                "incidents": list(self._incidents.values()),
                "keys": list(self._keys.values()),
                "points": list(self._points), "models": list(self._models),
                "feedback": list(self._feedback), "verdicts": dict(self._verdicts),
            }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], **kwargs: Any) -> History:
        """Rebuild from :meth:`to_state` (bounds from ``kwargs``, not from the state).

        Raises
        ------
        StateError
            The state is not a history state of a version this code reads.
        """
        r = StateReader.of(state, "ui history", version=_STATE_VERSION,
                           fix="delete the history file to start an empty history")
        h = cls(**kwargs)
        with r.guard():
            for rec in _tail(r["anomalies"], h.max_anomalies):
                h._anomalies[str(rec["id"])] = dict(rec)
            for inc in _tail(r["incidents"], h.max_anomalies):
                h._incidents[str(inc["id"])] = dict(inc)
            for row in _tail(r["keys"], h.max_keys):
                h._keys["" if row["key"] is None else str(row["key"])] = dict(row)
            h._points.extend(dict(p) for p in r["points"])
            h._models.extend(dict(m) for m in r["models"])
            h._feedback.extend(dict(f) for f in r["feedback"])
            for v in VERDICTS:
                h._verdicts[v] = int(r["verdicts"].get(v, 0))
        return h


def _tail(rows: Iterable[Any], n: int) -> list[Any]:
    rows = list(rows)
    return rows[-n:] if n > 0 else []
