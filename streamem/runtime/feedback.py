"""Operator verdicts acted on: a false positive is learned by the lane that flagged it, and
opens an optional temporary suppression for that key and feature.

The HTTP thread only queues (:meth:`FeedbackLoop.submit`); the pipeline thread applies the
queue between batches (:meth:`FeedbackLoop.apply`, called at the start of each lane's batch),
so the model is never touched by two threads. What a lane has learned, what it still has to
learn and the open suppressions are saved in that lane's snapshot
(:meth:`FeedbackLoop.lane_state`), so a verdict is durable exactly when the state that learned
it is: after a ``kill -9`` the restored lane re-queues every stored false positive its
snapshot does not list (:meth:`FeedbackLoop.restore_lane`), and learns it again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from streamem.alerting.records import AnomalyRecord
from streamem.errors import StreamemError
from streamem.runtime.lane import Lane
from streamem.ui.history import History

__all__ = ["SUPPRESSED_BY", "FeedbackLoop"]

logger = logging.getLogger(__name__)

SUPPRESSED_BY = "feedback"
"""The ``rule`` label of anomalies held back by a feedback suppression."""

_STATE_VERSION = 1
_MAX_APPLIED = 1000


class FeedbackLoop:
    """Queue verdicts from the page, learn false positives in the pipeline thread.

    Parameters
    ----------
    history
        The page's history (holds each recent anomaly's feature vector and lane).
    weight
        ``ui.feedback_weight``: the mixture weight a false positive is learned at.
    suppress_seconds
        ``ui.feedback_suppress_seconds``: how long a false positive suppresses that key and
        top feature (0: no suppression).
    clock
        Clock of the suppressions (wall time live; event time in replays).

    Examples
    --------
    >>> from streamem.alerting.records import AnomalyRecord
    >>> from streamem.scoring.detector import Detector
    >>> h = History()
    >>> rng = np.random.default_rng(0)
    >>> lane = Lane("global", Detector(warmup=200, random_state=0))
    >>> _ = lane.detector.process(rng.normal(size=(400, 2)))
    >>> h.anomaly(AnomalyRecord(id="a1", key="pump-1", timestamp=1.0, score=9.0,
    ...                         tail_probability=1e-7, severity=95.0, threshold=1e-3,
    ...                         extra={"state": "global"}), np.array([5.0, 5.0]))
    >>> loop = FeedbackLoop(h, weight=0.02, suppress_seconds=60, clock=lambda: 0.0)
    >>> loop.submit(h.feedback("a1", "false_positive"))
    >>> loop.pending, loop.apply(lane), loop.pending
    (1, 1, 0)
    >>> bool(lane.detector.process(np.array([[5.0, 5.0]])).is_anomaly[0])
    False
    >>> loop.lane_state("global")["applied"]
    ['a1']
    """

    def __init__(self, history: History, *, weight: float, suppress_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.history = history
        self.weight = weight
        self.suppress_seconds = suppress_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._queue: deque[dict[str, Any]] = deque(maxlen=history.max_anomalies)
        self._applied: dict[str, deque[str]] = {}
        self._suppressions: dict[tuple[str | None, str | None], float] = {}
        self.learned = 0
        self.not_learned = 0
        self.suppressed = 0

    @property
    def pending(self) -> int:
        """False positives queued, not learned yet."""
        with self._lock:
            return len(self._queue)

    # ------------------------------------------------------------------ HTTP thread
    def submit(self, entry: Mapping[str, Any]) -> None:
        """Queue one stored verdict (``UiApp(on_feedback=...)``); true positives need nothing."""
        if entry.get("verdict") != "false_positive":
            return
        item = self._item(str(entry["id"]))
        if item is not None:
            with self._lock:
                self._queue.append(item)

    def _item(self, anomaly_id: str) -> dict[str, Any] | None:
        rec = self.history.anomaly_by_id(anomaly_id)
        if rec is None or rec.get("x") is None:
            return None
        top = rec.get("top_features") or [{}]
        return {"id": anomaly_id, "lane": (rec.get("extra") or {}).get("state", "global"),
                "x": rec["x"], "key": rec.get("key"), "feature": top[0].get("name")}

    # ------------------------------------------------------------------ pipeline thread
    def apply(self, lane: Lane) -> int:
        """Learn the queued false positives of ``lane`` (the others stay queued); returns how
        many were learned."""
        with self._lock:
            if not self._queue:
                return 0
            mine = [q for q in self._queue if q["lane"] == lane.key]
            if not mine:
                return 0
            self._queue = deque((q for q in self._queue if q["lane"] != lane.key),
                                maxlen=self._queue.maxlen)
        done = self._applied.setdefault(lane.key, deque(maxlen=_MAX_APPLIED))
        n = 0
        for q in mine:
            if q["id"] in done:
                continue
            x = np.array([math.nan if v is None else float(v) for v in q["x"]])
            try:
                lane.detector.learn_false_positive(x, weight=self.weight)
            except StreamemError as exc:  # still warming up, or a feature vector of old width
                self.not_learned += 1
                logger.warning("false positive %s not learned by %s (%s)", q["id"], lane.key, exc)
                continue
            done.append(q["id"])
            n += 1
            if self.suppress_seconds > 0:
                self._suppressions[(q["key"], q["feature"])] = (
                    self.clock() + self.suppress_seconds)
        self.learned += n
        return n

    def suppressing(self, record: AnomalyRecord) -> str | None:
        """:data:`SUPPRESSED_BY` when a feedback suppression covers the record's key and top
        feature, else None."""
        if not self._suppressions:
            return None
        feature = record.top_features[0].name if record.top_features else None
        until = self._suppressions.get((record.key, feature))
        if until is None:
            return None
        if until <= self.clock():
            del self._suppressions[(record.key, feature)]
            return None
        self.suppressed += 1
        return SUPPRESSED_BY

    # ------------------------------------------------------------------ reports and state
    def status(self) -> dict[str, Any]:
        """For ``GET /api/v1/status``: the active suppressions and the counts."""
        now = self.clock()
        active = [{"key": k, "feature": f, "until": t}
                  for (k, f), t in list(self._suppressions.items()) if t > now]
        return {"feedback": {"pending": self.pending, "learned": self.learned,
                             "not_learned": self.not_learned, "suppressed": self.suppressed,
                             "weight": self.weight, "suppressions": active}}

    def lane_state(self, key: str) -> dict[str, Any]:
        """What lane ``key`` has learned, for its snapshot (plain JSON)."""
        now = self.clock()
        with self._lock:
            pending = [dict(q) for q in self._queue if q["lane"] == key]
        return {"version": _STATE_VERSION, "applied": list(self._applied.get(key, ())),
                "pending": pending,
                "suppressions": [[k, f, t] for (k, f), t in list(self._suppressions.items())
                                 if t > now]}

    def restore_lane(self, key: str, state: Mapping[str, Any]) -> None:
        """Take lane ``key``'s snapshot state, then queue again every stored false positive
        of that lane its snapshot does not list (received, but not durable when killed)."""
        done = self._applied[key] = deque((str(a) for a in state.get("applied", ())),
                                          maxlen=_MAX_APPLIED)
        for k, f, t in state.get("suppressions", ()):
            self._suppressions[(k, f)] = float(t)
        with self._lock:
            queued = {q["id"] for q in self._queue}
            for q in state.get("pending", ()):
                if q["id"] not in queued and q["id"] not in done:
                    self._queue.append(dict(q))
                    queued.add(q["id"])
        for entry in self.history.recent_feedback(self.history.max_anomalies):
            if entry.get("verdict") != "false_positive" or entry["id"] in done:
                continue
            item = self._item(str(entry["id"]))
            if item is not None and item["lane"] == key:
                with self._lock:
                    if all(q["id"] != item["id"] for q in self._queue):
                        self._queue.append(item)
