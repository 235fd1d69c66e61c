"""The per-batch pipeline shared by ``streamem run`` and ``streamem replay``:
decode -> reject bad events -> score and learn -> explain anomalies -> sinks and incidents.

With a :class:`~streamem.runtime.chunking.Chunker` (Kafka sources) polled events are buffered
per lane and each lane learns in chunks of exactly ``batch.max_events`` events, so its state is
a function of its event sequence alone, not of what each poll returned. The lane's positions
advance only over processed events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from streamem.alerting.incidents import IncidentTracker
from streamem.alerting.records import AnomalyRecord, Incident
from streamem.alerting.rules import Rules
from streamem.config import Config
from streamem.events import DecodedBatch, EventBatch, RawEvent
from streamem.features import FeatureExtractor
from streamem.logs import RateLimitedLog
from streamem.parsing import evidence
from streamem.runtime.aggregation import BucketStage
from streamem.runtime.chunking import Chunker
from streamem.runtime.feedback import FeedbackLoop
from streamem.runtime.lane import Lane
from streamem.scoring.detector import DetectionResult
from streamem.sinks.base import DeadLetterSink, Sink
from streamem.ui.history import History

__all__ = ["BatchOutcome", "MetricsLike", "Pipeline"]

logger = logging.getLogger(__name__)


class MetricsLike(Protocol):
    """What the pipeline needs of the metrics recorder."""

    def observe_batch(self, log_likelihoods: NDArray[np.float64], n_learned: int,
                      n_anomalous: int, n_skipped: int, duration_seconds: float) -> None: ...

    def count_rejected(self, reason: str, n: int = 1) -> None: ...

    def count_suppressed(self, rule: str) -> None: ...

    def count_incidents_evicted(self, n: int) -> None: ...


@dataclass
class BatchOutcome:
    """What one batch did (for replay reports and tests)."""

    decoded: DecodedBatch
    result: DetectionResult | None
    anomalies: list[AnomalyRecord]
    events: EventBatch


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
    chunker
        Buffer events per lane and process them in chunks of exactly its ``size``
        (partial chunks only through :meth:`flush_partial`); see the module docstring.
    history
        The operator page's recent history: every scored batch, anomaly and incident.
    stage
        With ``aggregate:``, the bucket stage: each lane scores the buckets its events
        close (:mod:`streamem.runtime.aggregation`), not the events.
    feedback
        Operator verdicts: queued false positives are learned by their lane before its next
        batch, and feedback suppressions hold back matching anomalies.
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
        chunker: Chunker | None = None,
        history: History | None = None,
        stage: BucketStage | None = None,
        feedback: FeedbackLoop | None = None,
    ) -> None:
        self.cfg = cfg
        self.stage = stage
        self.history = history
        self.feedback = feedback
        self.chunker = chunker
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

    def process(self, events: EventBatch) -> list[BatchOutcome]:
        """Run one batch through the pipeline; bad events never raise.

        With a chunker the events are buffered per lane and only full chunks are processed.
        """
        if not len(events):
            return []
        if self.chunker is not None:
            return self._buffer(self.chunker, events)
        runs = events.runs()
        if self.cfg.model.scope == "global" or len(runs) == 1:  # one state: no routing
            return [self._process_lane(self.lane_for(runs[0].partitions[0]), events)]
        groups: dict[str, list[EventBatch]] = {}
        lanes: dict[str, Lane] = {}
        for run in runs:
            lane = self.lane_for(run.partitions[0])
            lanes[lane.key] = lane
            groups.setdefault(lane.key, []).append(run)
        return [self._process_lane(lanes[k], EventBatch.join(g)) for k, g in groups.items()]

    def _buffer(self, chunker: Chunker, events: EventBatch) -> list[BatchOutcome]:
        now = time.monotonic()
        touched: dict[str, Lane] = {}
        # sources deliver runs of one partition: one lane lookup per run, not per event
        for run in events.runs():
            lane = self.lane_for(run.partitions[0])
            chunker.add(lane.key, run, now)
            touched[lane.key] = lane
        out: list[BatchOutcome] = []
        for lane in touched.values():
            out.extend(self._process_lane(lane, c) for c in chunker.full(lane.key, now))
        return out

    def flush_partial(self, lanes: Sequence[Lane]) -> list[BatchOutcome]:
        """Process what ``lanes`` hold buffered, even less than a chunk (with a chunker).

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
        >>> from streamem.runtime.build import new_detector
        >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
        ...                     "batch": {"max_events": 4}})
        >>> lane = Lane("global", new_detector(cfg))
        >>> chunker = Chunker(size=4, max_wait=0.1)
        >>> pl = Pipeline(cfg, FeatureExtractor(["a"]), None, None, None, lambda p: lane,
        ...               chunker=chunker)
        >>> evs = EventBatch([b'{"a": %d}' % i for i in range(6)], list(range(6)),
        ...                  list(range(1, 7)), 0, "t")
        >>> len(pl.process(evs)), lane.positions, len(chunker.buffered("global"))
        (1, {0: 4}, 2)
        >>> len(pl.flush_partial([lane])), lane.positions, len(chunker.buffered("global"))
        (1, {0: 6}, 0)
        """
        if self.chunker is None:
            return []
        return [self._process_lane(lane, c) for lane in lanes
                for c in self.chunker.rest(lane.key)]

    def end_of_input(self, lanes: Sequence[Lane]) -> list[BatchOutcome]:
        """The input ended (a finite file): with ``aggregate:``, close and score the open
        buckets of ``lanes``."""
        if self.stage is None:
            return []
        return [self._process_lane(lane, self.stage.closing(lane.key, lane.positions))
                for lane in lanes]

    def _process_lane(self, lane: Lane, events: EventBatch) -> BatchOutcome:
        t0 = time.perf_counter()
        if self.feedback is not None:  # between batches, in the pipeline thread
            self.feedback.apply(lane)
        decoded = lane.scorer.screen(
            self.extractor.decode(events.payloads) if self.stage is None
            else self.stage.decode(lane.key, events))  # aggregate: buckets, not events
        self._reject(events, decoded)
        result: DetectionResult | None = None
        anomalies: list[AnomalyRecord] = []
        counts: dict[str, int] = {}
        n = len(decoded.kept)
        if n:
            result = lane.scorer.process(decoded, self._learnable(decoded))
            if self.history is not None:
                self.history.observe_batch(lane.key, result)
            anomalies = self._route(lane, events, decoded, result, counts)
            n_anom = int(result.is_anomaly.sum())
            n_learned = int(result.learned.sum())
            counts["events_anomalous"] = n_anom
            counts["events_learned"] = n_learned
            counts["events_skipped"] = n - n_anom - n_learned
            self.totals["anomalous"] += n_anom
            self.totals["learned"] += n_learned
            if self.metrics is not None:
                self.metrics.observe_batch(-result.scores, n_learned, n_anom,
                                           n - n_anom - n_learned, time.perf_counter() - t0)
        counts["events_rejected"] = len(decoded.rejected)
        counts["events_seen"] = len(events)
        self.totals["events"] += len(events)
        self.totals["rejected"] += len(decoded.rejected)
        lane.progress.advance(events.last_positions(), counts)
        return BatchOutcome(decoded, result, anomalies, events)

    def _reject(self, events: EventBatch, decoded: DecodedBatch) -> None:
        for rej in decoded.rejected:
            ev = events[rej.index]
            reason = f"{rej.reason}: {rej.detail}"
            if self.dead_letter is not None:
                self.dead_letter.write(ev.payload, reason, ev.position.id)
            if self.metrics is not None:
                self.metrics.count_rejected(rej.reason)
            self._rate_log.warning(rej.reason, "rejected event %s (%s)", ev.position.id, reason)

    def _route(self, lane: Lane, events: EventBatch, decoded: DecodedBatch,
               result: DetectionResult, counts: dict[str, int]) -> list[AnomalyRecord]:
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
                why = self.rules.rules[rule].name if rule >= 0 else (
                    None if self.feedback is None else self.feedback.suppressing(record))
                if why is not None:  # an operator rule: no sinks, no incident; the page shows it
                    self._suppress(record, why, counts)
                    continue
                out.append(record)
                if self.sinks is not None:
                    self.sinks.emit(record)
                if self.history is not None:
                    self.history.anomaly(record, decoded.X[i])
            for incident in self.incidents.observe(lane.scorer.key(decoded, int(i)),
                                                   float(result.severity[i]),
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

    def _suppress(self, record: AnomalyRecord, rule: str, counts: dict[str, int]) -> None:
        record.extra["suppressed_by"] = rule
        counts["anomalies_suppressed"] = counts.get("anomalies_suppressed", 0) + 1
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
        return AnomalyRecord(
            id=decoded.id(i) or ev.position.id,
            key=lane.scorer.key(decoded, i),
            timestamp=decoded.timestamp(i),
            score=float(result.scores[i]),
            tail_probability=float(result.tail_probability[i]),
            severity=float(result.severity[i]),
            threshold=float(result.threshold[i]),
            top_features=tuple(lane.scorer.explain(decoded, i)),
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

