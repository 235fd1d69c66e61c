"""The daemon: source -> pipeline -> sinks, with checkpoints that carry the input position.

Checkpoint ordering (what makes "nothing accepted is lost" hold), see :meth:`Daemon.checkpoint`:

1. flush the sinks and the dead-letter sink (delivered or durably spooled);
2. write one snapshot per model state, holding the detector *and* the input positions;
3. only then commit those positions to the source (Kafka), which is for lag monitoring.

If step 1 fails, nothing is saved or committed and the loop pauses input, retrying with
backoff, until the sinks work again or ``checkpoint.sinks_failure_timeout_seconds`` ends the
run with exit 1 (:class:`~streamem.sinks.gate.SinkGate`): the checkpoint never moves past
records a sink did not keep, and the next start replays from it.

On start the newest valid snapshot is restored and the source is sought to its positions, so
model state and input position never disagree: a ``kill -9`` at any moment resumes to the same
state as an uninterrupted run (with count-based batching).

Kafka sources (what poll() returns is not deterministic): the pipeline runs *chunked*. Each
lane (``global``, or ``pN`` in ``model.scope: partition``) buffers polled events and learns in
chunks of exactly ``batch.max_events`` of its own events, so its state after ``k`` chunks is a
function of the first ``k * max_events`` events of its input alone. Checkpoints therefore
always fall on chunk boundaries; the buffered remainder is never checkpointed and is read
again from Kafka after a crash, a graceful stop or a rebalance (the revoked lane's buffer is
dropped, its new owner resumes at the checkpointed boundary).

A partial chunk is processed only when the log cannot complete it: its oldest event waited
``batch.max_wait_ms`` *and* the buffered events plus the partition's lag (events in Kafka not
yet fetched) are fewer than ``max_events``. Catching up on a backlog thus only ever flushes
the last, partial chunk at the end of the log, which makes a restarted run (after ``kill -9``)
reach bit-for-bit the state of an uninterrupted one in partition scope. While the daemon keeps
up with a live stream, partial chunks keep alerts within about ``max_wait_ms``; their sizes
depend on timing, so a crash replay may cut those events into different chunks (each event is
still learned exactly once). In global scope over several partitions the interleaving of the
partitions in a lane depends on fetch timing, so only exactly-once, not bit-for-bit equality,
holds there.

With the Kafka state store a save that fails (say, the brokers are restarting) does not stop
the daemon: the lanes stay dirty, nothing is committed for them, and the save is retried when
the next checkpoint is due, for up to five minutes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamem import parsing
from streamem.config import Config
from streamem.errors import StateError
from streamem.eventruns import partition_counts
from streamem.features import FeatureExtractor
from streamem.lifecycle import capture_signals
from streamem.metrics.health import report_lane
from streamem.pipeline import Lane, Pipeline, new_detector
from streamem.scoring.detector import Detector
from streamem.sinks.base import DeadLetterSink, Sink
from streamem.sinks.gate import SinkGate
from streamem.sources.base import Source
from streamem.state.base import CheckpointStore, Snapshot
from streamem.ui.history import History
from streamem.ui.store import load_history, save_history

__all__ = ["Daemon", "RunSummary", "detector_from_snapshot"]

logger = logging.getLogger(__name__)

_SAVE_RETRY_SECONDS = 300.0
"""How long a Kafka state store may fail to save before the daemon gives up (the same
patience as the Kafka source's ``unavailable_timeout``)."""


def detector_from_snapshot(snap: Snapshot) -> Detector:
    """The detector a snapshot holds; the ``check`` that makes a store skip unusable ones.

    Parameters
    ----------
    snap
        A decoded snapshot (its envelope is already validated by the codec).

    Returns
    -------
    Detector

    Raises
    ------
    StateError
        When the detector state misses a key or holds a value of the wrong type or shape.

    Examples
    --------
    >>> detector_from_snapshot(Snapshot("global", 1, 0.0, {"version": 1}, {}))
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: malformed Detector state: 'params' is missing ...
    """
    try:
        return Detector.from_state(snap.detector)
    except StateError:
        raise
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise StateError(f"the detector state is malformed ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); the snapshot is corrupt") from exc


@dataclass(frozen=True)
class RunSummary:
    """Totals of one ``run()``."""

    events: int
    learned: int
    anomalous: int
    rejected: int
    checkpoints: int
    seconds: float

    def line(self) -> str:
        """The one-line summary logged at shutdown.

        Examples
        --------
        >>> RunSummary(10, 8, 1, 1, 2, 0.5).line()
        'streamem stopped: 10 events (8 learned, 1 anomalous, 1 rejected) in 0.5 s, 2 checkpoints'
        """
        return (f"streamem stopped: {self.events} events ({self.learned} learned, "
                f"{self.anomalous} anomalous, {self.rejected} rejected) in {self.seconds:.1f} s, "
                f"{self.checkpoints} checkpoints")


class Daemon:
    """Run the detector over a source until it ends or a stop is requested.

    Parameters
    ----------
    config
        Validated configuration.
    registry
        Prometheus registry for the metrics (a fresh one by default).
    install_signal_handlers
        Route SIGTERM/SIGINT to a graceful stop (off for tests and embedding).
    """

    def __init__(self, config: Config, *, registry: Any = None,
                 install_signal_handlers: bool = True) -> None:
        self.cfg = config
        self._registry = registry
        self._signals = install_signal_handlers
        self._stop = False
        self.lanes: dict[str, Lane] = {}
        self.checkpoints = 0
        self.metrics: Any = None
        self.metrics_url: str | None = None
        self._store: CheckpointStore | None = None
        self._source: Source | None = None
        self._sinks: Sink | None = None
        self._dead: DeadLetterSink | None = None
        self._last_ckpt = time.monotonic()
        self._since_ckpt = 0
        self._lines: parsing.LineDecoder | None = None
        self._ready_reported = False
        self._log_lag: dict[int, int] = {}
        self._save_failing_since: float | None = None
        self._log_lag_at = -1e18
        self.history: History | None = None
        self._gate = SinkGate(config.checkpoint.sinks_failure_timeout_seconds)

    def stop(self) -> None:
        """Ask the loop to finish the current batch, checkpoint and return."""
        self._stop = True

    # ------------------------------------------------------------------ wiring
    def _build(self, stack: contextlib.ExitStack) -> Pipeline:
        from streamem import adapters

        cfg = self.cfg
        state_dir = Path(cfg.checkpoint.dir)
        self._store = stack.enter_context(adapters.make_store(cfg))
        self._source = stack.enter_context(adapters.make_source(cfg))
        self._sinks = stack.enter_context(adapters.make_sinks(cfg, state_dir))
        self._dead = adapters.make_dead_letter(cfg)
        stack.callback(self._dead.close)
        if cfg.metrics.enabled:
            if cfg.ui.enabled:
                self.history = load_history(state_dir, max_anomalies=cfg.ui.max_anomalies)
            self.metrics, server = adapters.make_metrics(cfg, self._registry, self._sinks,
                                                         self.history)
            if server is not None:
                stack.enter_context(server)
                self.metrics_url = server.url
        self._lines = parsing.from_config(cfg)  # text formats; None for jsonl and csv
        extractor = FeatureExtractor(
            cfg.fields.features, timestamp=cfg.fields.timestamp, key=cfg.fields.key,
            id=cfg.fields.id, format=cfg.source.format,
            max_event_bytes=cfg.source.max_event_bytes, lines=self._lines,
            max_clock_skew=cfg.fields.max_clock_skew_seconds,
        )
        header = getattr(self._source, "header", None)
        if cfg.source.format == "csv" and header is not None:
            extractor.set_csv_header(header)
        return Pipeline(cfg, extractor, self._sinks, self._dead, self.metrics, self._lane_for,
                        chunked=cfg.source.type == "kafka", history=self.history)

    def _lane_key(self, partition: int) -> str:
        return "global" if self.cfg.model.scope == "global" else f"p{partition}"

    def _lane_for(self, partition: int) -> Lane:
        key = self._lane_key(partition)
        lane = self.lanes.get(key)
        if lane is None:
            lane = self._restore(key)
            self.lanes[key] = lane
        return lane

    def _restore(self, key: str) -> Lane:
        """The lane for ``key`` from its newest usable snapshot, or a fresh one.

        A snapshot whose detector state cannot be rebuilt is skipped like a corrupt file (the
        store warns and falls back to the previous one). The restored positions are committed
        to the source at once: the kill that may have prevented their commit must not leave
        the group's committed offsets (and so its lag) behind a durable state until new
        events arrive.
        """
        assert self._store is not None
        restored: list[Detector] = []

        def usable(snap: Snapshot) -> None:
            restored[:] = [detector_from_snapshot(snap)]

        snap = self._store.load_latest(key, check=usable)
        if snap is None:
            logger.info("state %s: no checkpoint, starting a new model", key)
            return Lane(key, new_detector(self.cfg))
        det = restored[0]
        n_feat = len(self.cfg.fields.features)
        if det.n_features_in_ is not None and det.n_features_in_ != n_feat:
            raise StateError(
                f"checkpoint {snap.sequence} of state {key!r} has {det.n_features_in_} features "
                f"but fields.features lists {n_feat}; restore the old feature list or move "
                f"{self.cfg.checkpoint.dir!r} away to start a new model")
        logger.info("state %s: restored checkpoint %d (%d events learned), resuming at %s",
                    key, snap.sequence, snap.counters.get("events_learned", 0), snap.positions)
        if self.metrics is not None:
            self.metrics.restored_checkpoint(snap.created_at)
        if self._lines is not None:  # the template miner as of this checkpoint
            self._lines.restore(snap.parsing)
        if snap.positions and self._source is not None:
            self._source.commit(dict(snap.positions))
        return Lane(key, det, dict(snap.positions), dict(snap.counters), snap.sequence)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, lanes: Sequence[Lane] | None = None, *, final: bool = False) -> None:
        """Make the state durable, then commit the positions it reflects.

        1. flush sinks and the dead-letter sink;
        2. save one snapshot per changed lane (every lane when ``final``, so a shutdown always
           leaves a snapshot written at shutdown): detector state + positions + counters;
        3. commit the positions to the source.
        """
        assert self._store is not None and self._source is not None
        todo = [ln for ln in (lanes if lanes is not None else self.lanes.values())
                if ln.dirty or final]
        if not todo:
            return
        t0 = time.perf_counter()
        last = ", ".join(f"{ln.key} #{ln.sequence}" for ln in self.lanes.values()) or "none"
        if not self._gate.durable(self._sinks, self._dead, self.metrics, stopping=self._stop,
                                  last_checkpoint=f"checkpoint {last}"):
            return  # lanes stay dirty: nothing saved, nothing committed
        positions: dict[int, int] = {}
        failed = False
        for lane in todo:
            try:
                self._store.save(Snapshot(
                    key=lane.key, sequence=lane.sequence + 1, created_at=time.time(),
                    detector=lane.detector.to_state(), positions=dict(lane.positions),
                    counters=dict(lane.counters),
                    parsing=self._lines.to_state() if self._lines is not None else {},
                ))
            except StateError as exc:
                if not self._save_failed(exc):
                    raise
                failed = True
                break
            lane.sequence += 1
            lane.dirty = False
            positions.update(lane.positions)
        if positions:
            self._source.commit(positions)
        self._since_ckpt = 0
        self._last_ckpt = time.monotonic()
        if failed:
            return
        if self._save_failing_since is not None:
            logger.warning("checkpoints saved again after %.0f s of failures",
                           time.monotonic() - self._save_failing_since)
            self._save_failing_since = None
        self.checkpoints += 1
        if self.metrics is not None:
            self.metrics.observe_checkpoint(time.perf_counter() - t0)
        self._save_history()

    def _save_history(self) -> None:
        """The operator page's recent history, next to the checkpoints (best effort: the page
        is not state the model depends on)."""
        if self.history is None:
            return
        try:
            save_history(self.cfg.checkpoint.dir, self.history)
        except OSError as exc:
            logger.warning("ui history not saved in %s (%s)", self.cfg.checkpoint.dir, exc)

    def _save_failed(self, exc: StateError) -> bool:
        """A Kafka state store that fails to save (a broker outage): keep running, the lanes
        stay dirty and the save is retried when the next checkpoint is due; no offsets are
        committed for them meanwhile. True to carry on, False to raise (any other store, or
        failing for ``_SAVE_RETRY_SECONDS``)."""
        if self.cfg.checkpoint.store != "kafka":
            return False
        now = time.monotonic()
        if self._save_failing_since is None:
            self._save_failing_since = now
        failing = now - self._save_failing_since
        if failing > _SAVE_RETRY_SECONDS:
            return False
        logger.warning("checkpoint not saved (%s); still running, retrying in %.0f s "
                       "(giving up after %.0f s of failures)", exc,
                       self.cfg.checkpoint.every_seconds, _SAVE_RETRY_SECONDS - failing)
        return True

    def _checkpoint_due(self) -> bool:
        c = self.cfg.checkpoint
        # dirty, not "events polled": a chunked lane may learn (a partial chunk) without a poll
        if not any(ln.dirty for ln in self.lanes.values()):
            return False
        return self._since_ckpt >= c.every_events or \
            time.monotonic() - self._last_ckpt >= c.every_seconds

    # ------------------------------------------------------------------ main loop
    def run(self) -> RunSummary:
        """Consume until the source ends or :meth:`stop`; always end with a checkpoint."""
        t_start = time.monotonic()
        with contextlib.ExitStack() as stack:
            pipeline = self._build(stack)
            stack.enter_context(capture_signals(self.stop, self._signals))
            self._start_positions()
            if self.metrics is not None:
                self.metrics.set_up(True)
            status = _Status(self.cfg.logging.status_interval_seconds)
            try:
                self._loop(pipeline, status)
                self.checkpoint(final=True)
                while self._gate.blocked:  # sinks fail: retry until they work or time runs out
                    self._gate.wait(lambda: self._stop, self.metrics)
                    self.checkpoint(final=True)
            finally:
                if self.metrics is not None:
                    self.metrics.set_up(False)
            if self._sinks is not None:
                self._sinks.flush(timeout=30.0)
        t = pipeline.totals
        summary = RunSummary(t["events"], t["learned"], t["anomalous"], t["rejected"],
                             self.checkpoints, time.monotonic() - t_start)
        logger.info(summary.line())
        return summary

    def _start_positions(self) -> None:
        """Seek the source to the positions of the restored state(s)."""
        assert self._source is not None and self._store is not None
        if self.cfg.model.scope == "partition":
            from streamem.adapters import attach_rebalance

            attach_rebalance(self, self._source)
            return
        lane = self._lane_for(0)
        if self.cfg.source.type == "kafka":
            from streamem.adapters import attach_rebalance

            attach_rebalance(self, self._source)
        if lane.positions:
            self._source.seek(lane.positions)

    def _loop(self, pipeline: Pipeline, status: _Status) -> None:
        assert self._source is not None
        b = self.cfg.batch
        follow = self.cfg.source.type != "file" or self.cfg.source.follow
        wait = b.max_wait_ms / 1000.0 if follow else 0.0
        while not self._stop:
            if self._gate.blocked:  # input paused until the sinks work again
                self._gate.wait(lambda: self._stop, self.metrics)
                self.checkpoint()
                continue
            events = self._source.poll(b.max_events, wait)
            if self.metrics is not None:
                self.metrics.heartbeat()
            if events:
                if pipeline.chunked:
                    lag = self._log_lag
                    for p, n in partition_counts(events).items():
                        if p in lag:
                            lag[p] -= n
                pipeline.process(events)
                self._since_ckpt += len(events)
            elif self._source.exhausted:
                break
            if pipeline.chunked:
                self._flush_partial(pipeline)
            self._update_health(status)
            pipeline.tick()
            if self._checkpoint_due():
                self.checkpoint()
            status.maybe_log(pipeline.totals, self._source.lag)

    def _flush_partial(self, pipeline: Pipeline) -> None:
        """Process the partial chunks the log cannot complete (see the module docstring).

        ``self._log_lag`` is the lag last measured minus the events polled since: the log
        only grows, so it is a lower bound, and the broker is asked again (at most twice per
        ``max_wait_ms``) only when that bound no longer rules a flush out.
        """
        wait = self.cfg.batch.max_wait_ms / 1000.0
        now = time.monotonic()
        size = self.cfg.batch.max_events
        lag = self._log_lag
        due: list[Lane] = []
        for measured in (False, True):
            due = []
            for lane in self.lanes.values():
                if lane.buffered_at is None or now - lane.buffered_at < wait:
                    continue
                parts = set(lane.buffer.counts())
                if all(p in lag for p in parts) and \
                        len(lane.buffer) + sum(lag[p] for p in parts) >= size:
                    continue  # the log holds enough to complete the chunk
                due.append(lane)
            if not due or measured:
                break
            if now - self._log_lag_at < wait / 2:
                return
            assert self._source is not None
            lag = self._log_lag = self._source.lag()
            self._log_lag_at = now
        if due:
            pipeline.flush_partial(due)

    def _update_health(self, status: _Status, force: bool = False) -> None:
        """Model health to metrics: at most once a second (and when a model became ready)."""
        if self.metrics is None:
            return
        ready = bool(self.lanes) and all(ln.detector.ready_ for ln in self.lanes.values())
        if not (status.health_due() or force or ready != self._ready_reported):
            return
        for lane in self.lanes.values():
            report_lane(self.metrics, lane)
            if self.history is not None:
                self.history.observe_model(lane.key, lane.detector.health())
        assert self._source is not None
        lag = self._source.lag()  # on the loop thread: not thread-safe
        self._log_lag, self._log_lag_at = dict(lag), time.monotonic()
        for lane in self.lanes.values():  # buffered events are not processed yet: still lag
            for p, n in lane.buffer.counts().items():
                if p in lag:
                    lag[p] += n
        self.metrics.set_source_lag(lag)
        self.metrics.set_ready(ready)
        self._ready_reported = ready


class _Status:
    """Periodic progress line: events/s, anomalies, rejected, lag."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = time.monotonic()
        self._last_events = 0
        self._last_health = 0.0

    def health_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_health >= 1.0:
            self._last_health = now
            return True
        return False

    def maybe_log(self, totals: dict[str, int], lag_of: Callable[[], dict[int, int]]) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        lag = lag_of()
        rate = (totals["events"] - self._last_events) / (now - self._last)
        lag_total = sum(lag.values()) if lag else 0
        logger.info("status: %.0f events/s, %d events, %d anomalies, %d rejected, lag %d",
                    rate, totals["events"], totals["anomalous"], totals["rejected"], lag_total)
        self._last, self._last_events = now, totals["events"]


