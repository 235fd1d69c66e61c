"""The per-batch pipeline shared by ``streamem run`` and ``streamem replay``:
decode -> reject bad events -> score and learn -> explain anomalies -> sinks and incidents.

Chunked mode (``Pipeline(..., chunked=True)``, used for Kafka sources): polled events are
buffered per lane and each lane learns in chunks of exactly ``batch.max_events`` events, so
its state is a function of its event sequence alone, not of what each poll returned. The
lane's positions advance only over processed events; buffered ones are not checkpointed and
are read again after a restart (see :mod:`streamem.daemon`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from streamem.alerting.incidents import IncidentTracker
from streamem.alerting.records import AnomalyRecord, Incident
from streamem.alerting.rules import Rules
from streamem.config import Config
from streamem.eventruns import EventBuffer, EventRuns, runs_of
from streamem.features import DecodedBatch, FeatureExtractor
from streamem.logs import RateLimitedLog
from streamem.parsing import evidence
from streamem.scoring.detector import DetectionResult, Detector
from streamem.sinks.base import DeadLetterSink, Sink
from streamem.types import EventBatch, RawEvent, partition_of
from streamem.ui.history import History

__all__ = ["BatchOutcome", "Lane", "Pipeline", "new_detector"]

logger = logging.getLogger(__name__)
_next_offset = attrgetter("next_offset")


class MetricsLike(Protocol):
    """What the pipeline needs of :class:`streamem.metrics.Metrics`."""

    def observe_batch(self, log_likelihoods: NDArray[np.float64], n_learned: int,
                      n_anomalous: int, n_skipped: int, duration_seconds: float) -> None: ...

    def count_rejected(self, reason: str, n: int = 1) -> None: ...

    def count_suppressed(self, rule: str) -> None: ...

    def count_incidents_evicted(self, n: int) -> None: ...


def new_detector(cfg: Config) -> Detector:
    """A fresh detector from the ``model`` and ``detector`` sections.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}})
    >>> new_detector(cfg).warmup
    1000
    """
    m, d = cfg.model, cfg.detector
    return Detector(
        n_components=m.n_components, covariance_type=m.covariance_type,
        half_life=m.half_life, alert_rate=d.alert_rate, warmup=m.warmup,
        max_components=m.max_components, reg_covar=m.reg_covar,
        protect_model=d.protect_model, regime_patience=d.regime_patience,
        regime_min_events=d.regime_min_events,
        detrend_half_life=d.detrend_half_life, detrend_min_autocorr=d.detrend_min_autocorr,
        smooth_window=d.smooth_window, cold_start=d.cold_start,
        feature_names=list(cfg.fields.features), random_state=m.random_state,
    )


@dataclass
class Lane:
    """One independent model state (``"global"``, or ``"p3"`` for input partition 3)."""

    key: str
    detector: Detector
    positions: dict[int, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    sequence: int = 0
    dirty: bool = False
    reported: dict[str, float] = field(default_factory=dict)
    buffer: EventBuffer = field(default_factory=EventBuffer)
    buffered_at: float | None = None  # monotonic time the oldest buffered event arrived

    def count(self, name: str, n: int) -> None:
        """Add ``n`` to counter ``name``."""
        if n:
            self.counters[name] = self.counters.get(name, 0) + n


@dataclass
class BatchOutcome:
    """What one batch did (for replay reports and tests)."""

    decoded: DecodedBatch
    result: DetectionResult | None
    anomalies: list[AnomalyRecord]
    events: Sequence[RawEvent]


class Pipeline:
    """Decode, score, learn and route one micro-batch at a time.

    Parameters
    ----------
    cfg
        The configuration.
    extractor
        Payload decoder.
    sinks
        Where anomalies and incidents go (a fan-out of all configured sinks).
    dead_letter
        Where rejected events go, with the reason.
    metrics
        Metrics recorder (or None).
    lane_for
        Maps an input partition to the lane (model state) that owns it.
    chunked
        Buffer events per lane and process them in chunks of exactly ``batch.max_events``
        (partial chunks only through :meth:`flush_partial`); see the module docstring.
    history
        The operator page's recent history: every scored batch, anomaly and incident.
    """

    def __init__(
        self,
        cfg: Config,
        extractor: FeatureExtractor,
        sinks: Sink | None,
        dead_letter: DeadLetterSink | None,
        metrics: MetricsLike | None,
        lane_for: Callable[[int], Lane],
        *,
        chunked: bool = False,
        history: History | None = None,
    ) -> None:
        self.cfg = cfg
        self.history = history
        self.chunked = chunked
        self.extractor = extractor
        self.sinks = sinks
        self.dead_letter = dead_letter
        self.metrics = metrics
        self.lane_for = lane_for
        a = cfg.alerting
        self.incidents = IncidentTracker(a.open_severity, a.resolve_severity, a.cooldown_seconds,
                                         a.max_open_incidents)
        self._evictions_reported = 0
        self.rules = Rules.from_config(cfg.rules, cfg.fields.features)
        self._rate_log = RateLimitedLog(logger, interval=10.0)
        self.totals: dict[str, int] = {"events": 0, "learned": 0, "anomalous": 0, "rejected": 0}
        self._event_clock: float | None = None  # newest event timestamp, when events carry one

    def process(self, events: Sequence[RawEvent]) -> list[BatchOutcome]:
        """Run one batch through the pipeline; bad events never raise.

        In chunked mode the events are buffered per lane and only full chunks are processed.
        """
        if not events:
            return []
        if self.chunked:
            return self._buffer(events)
        if self.cfg.model.scope == "global":  # one state: no per-event routing
            first = events.partition if isinstance(events, EventBatch) else events[0].position[0]
            return [self._process_lane(self.lane_for(first), events)]
        groups: dict[str, list[RawEvent]] = {}
        lanes: dict[str, Lane] = {}
        for ev in events:
            lane = self.lane_for(ev.position.partition)
            lanes[lane.key] = lane
            groups.setdefault(lane.key, []).append(ev)
        return [self._process_lane(lanes[k], evs) for k, evs in groups.items()]

    def _buffer(self, events: Sequence[RawEvent]) -> list[BatchOutcome]:
        now = time.monotonic()
        touched: dict[str, Lane] = {}
        # sources deliver runs of one partition: one lane lookup per run, not per event
        for run in runs_of(events):
            lane = self.lane_for(run.partition)
            if not lane.buffer:
                lane.buffered_at = now
            lane.buffer.extend(run)
            touched[lane.key] = lane
        out: list[BatchOutcome] = []
        for lane in touched.values():
            out.extend(self._drain(lane, partial=False))
        return out

    def _drain(self, lane: Lane, partial: bool) -> list[BatchOutcome]:
        size = self.cfg.batch.max_events
        out: list[BatchOutcome] = []
        while len(lane.buffer) >= size or (partial and lane.buffer):
            out.append(self._process_lane(lane, lane.buffer.take(size)))
        if not lane.buffer:
            lane.buffered_at = None
        elif out:
            lane.buffered_at = time.monotonic()
        return out

    def flush_partial(self, lanes: Sequence[Lane]) -> list[BatchOutcome]:
        """Process what ``lanes`` hold buffered, even less than a chunk (chunked mode).

        Parameters
        ----------
        lanes
            The lanes to flush.

        Returns
        -------
        list of BatchOutcome
            One per processed chunk.

        Examples
        --------
        >>> from streamem.config import parse_config
        >>> from streamem.types import Position, RawEvent
        >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
        ...                     "batch": {"max_events": 4}})
        >>> lane = Lane("global", new_detector(cfg))
        >>> pl = Pipeline(cfg, FeatureExtractor(["a"]), None, None, None, lambda p: lane,
        ...               chunked=True)
        >>> evs = [RawEvent(b'{"a": %d}' % i, Position(0, i), next_offset=i + 1)
        ...        for i in range(6)]
        >>> len(pl.process(evs)), lane.positions, len(lane.buffer)
        (1, {0: 4}, 2)
        >>> len(pl.flush_partial([lane])), lane.positions, len(lane.buffer)
        (1, {0: 6}, 0)
        """
        out: list[BatchOutcome] = []
        for lane in lanes:
            out.extend(self._drain(lane, partial=True))
        return out

    def _process_lane(self, lane: Lane, events: Sequence[RawEvent]) -> BatchOutcome:
        t0 = time.perf_counter()
        decoded = self.extractor.decode(events.payloads if isinstance(events, (
            EventBatch, EventRuns)) else [e.payload for e in events])
        self._reject(events, decoded)
        result: DetectionResult | None = None
        anomalies: list[AnomalyRecord] = []
        n = len(decoded.kept)
        if n:
            result = lane.detector.process(decoded.X, self._learnable(decoded))
            if self.history is not None:
                self.history.observe_batch(lane.key, result)
            anomalies = self._route(lane, events, decoded, result)
            n_anom = int(result.is_anomaly.sum())
            n_learned = int(result.learned.sum())
            lane.count("events_anomalous", n_anom)
            lane.count("events_learned", n_learned)
            lane.count("events_skipped", n - n_anom - n_learned)
            self.totals["anomalous"] += n_anom
            self.totals["learned"] += n_learned
            if self.metrics is not None:
                self.metrics.observe_batch(-result.scores, n_learned, n_anom,
                                           n - n_anom - n_learned, time.perf_counter() - t0)
        lane.count("events_rejected", len(decoded.rejected))
        lane.count("events_seen", len(events))
        self.totals["events"] += len(events)
        self.totals["rejected"] += len(decoded.rejected)
        positions = lane.positions
        if isinstance(events, EventBatch):
            positions[events.partition] = events.next_offsets[-1]
        elif isinstance(events, EventRuns):
            positions.update(events.last_positions())
        else:  # the last event of each partition wins: dict() keeps the last value per key
            positions.update(zip(map(partition_of, events), map(_next_offset, events),
                                 strict=True))
        lane.dirty = True
        return BatchOutcome(decoded, result, anomalies, events)

    def _reject(self, events: Sequence[RawEvent], decoded: DecodedBatch) -> None:
        for rej in decoded.rejected:
            ev = events[rej.index]
            reason = f"{rej.reason}: {rej.detail}"
            if self.dead_letter is not None:
                self.dead_letter.write(ev.payload, reason, ev.position.id)
            if self.metrics is not None:
                self.metrics.count_rejected(rej.reason)
            self._rate_log.warning(rej.reason, "rejected event %s (%s)", ev.position.id, reason)

    def _route(self, lane: Lane, events: Sequence[RawEvent], decoded: DecodedBatch,
               result: DetectionResult) -> list[AnomalyRecord]:
        out: list[AnomalyRecord] = []
        resolve = self.cfg.alerting.resolve_severity
        watch = np.flatnonzero(result.severity >= resolve)
        self._advance_clock(decoded, watch)
        if watch.size == 0:
            return out
        now = time.time()
        suppressed = self._suppressed(decoded, result, watch)
        for i, rule in zip(watch, suppressed.tolist(), strict=True):
            ts = decoded.timestamp(int(i))
            record = None
            if result.is_anomaly[i]:
                record = self._record(lane, events[decoded.kept[i]], decoded, result, int(i), now)
                if rule >= 0:  # an operator rule: no sinks, no incident; the page shows it
                    self._suppress(lane, record, self.rules.rules[rule].name)
                    continue
                out.append(record)
                if self.sinks is not None:
                    self.sinks.emit(record)
                if self.history is not None:
                    self.history.anomaly(record)
            for incident in self.incidents.observe(decoded.key(int(i)), float(result.severity[i]),
                                                   ts if ts is not None else now, record):
                self._emit_incident(incident)
        return out

    def _learnable(self, decoded: DecodedBatch) -> NDArray[np.bool_] | None:
        """Rows no ``skip_learning`` rule matches (None when there is no such rule)."""
        if not self.rules.has("skip_learning"):
            return None
        # keys are read (one lookup per event) only if a rule tests them
        matched: NDArray[np.bool_] = self.rules.matching(
            "skip_learning", decoded.X, lambda: decoded.keys) < 0
        return matched

    def _suppressed(self, decoded: DecodedBatch, result: DetectionResult,
                    watch: NDArray[np.intp]) -> NDArray[np.intp]:
        """Per watched row, the ``suppress`` rule that matches it, else -1."""
        if not self.rules.has("suppress"):
            return np.full(len(watch), -1, dtype=np.intp)
        keys = [decoded.key(int(i)) for i in watch]
        return self.rules.matching("suppress", decoded.X[watch], keys, result.severity[watch])

    def _suppress(self, lane: Lane, record: AnomalyRecord, rule: str) -> None:
        record.extra["suppressed_by"] = rule
        lane.count("anomalies_suppressed", 1)
        if self.metrics is not None:
            self.metrics.count_suppressed(rule)
        if self.history is not None:
            self.history.anomaly(record)

    def _emit_incident(self, incident: Incident) -> None:
        if self.sinks is not None:
            self.sinks.emit_incident(incident)
        if self.history is not None:
            self.history.incident(incident)

    def _advance_clock(self, decoded: DecodedBatch, watch: NDArray[np.intp]) -> None:
        """Move the event clock to the newest timestamp among the batch's last event and the
        watched ones (reading every timestamp of every batch would cost more than scoring)."""
        rows = [*watch.tolist(), len(decoded.kept) - 1]
        stamps = [t for t in map(decoded.timestamp, rows) if t is not None]
        if stamps:
            newest = max(stamps)
            if self._event_clock is None or newest > self._event_clock:
                self._event_clock = newest

    def _record(self, lane: Lane, ev: RawEvent, decoded: DecodedBatch,
                result: DetectionResult, i: int, now: float) -> AnomalyRecord:
        x = decoded.X[i]
        return AnomalyRecord(
            id=decoded.id(i) or ev.position.id,
            key=decoded.key(i),
            timestamp=decoded.timestamp(i),
            score=float(result.scores[i]),
            tail_probability=float(result.tail_probability[i]),
            severity=float(result.severity[i]),
            threshold=float(result.threshold[i]),
            top_features=tuple(lane.detector.explain(x)),
            model_generation=lane.sequence,
            detected_at=now,
            extra={"state": lane.key, "position": ev.position.id,
                   **evidence(decoded.record(i))},
        )

    def tick(self, now: float | None = None) -> None:
        """Resolve incidents whose cool-down ran out (call between batches).

        The clock is the newest event timestamp when events carry one (so replays of old
        data behave as they did live), else the wall clock.
        """
        if now is None:
            now = self._event_clock if self._event_clock is not None else time.time()
        for incident in self.incidents.tick(now):
            self._emit_incident(incident)
        evicted = self.incidents.evicted - self._evictions_reported
        if evicted and self.metrics is not None:
            self.metrics.count_incidents_evicted(evicted)
        self._evictions_reported += evicted

