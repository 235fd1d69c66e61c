"""The daemon: source -> pipeline -> sinks, until the source ends or a stop is requested.

The parts it runs: :mod:`~streamem.runtime.build` makes every object from the config,
:mod:`~streamem.runtime.checkpoint` holds the flush -> save -> commit ordering and restores
lanes, :mod:`~streamem.runtime.chunking` cuts a Kafka source's events into deterministic
chunks, :mod:`~streamem.runtime.rebalance` makes the lanes follow a consumer group's
assignment, and :mod:`~streamem.runtime.lifecycle` handles signals and the status line.

In global scope over several Kafka partitions the interleaving of the partitions in a lane
depends on fetch timing, so there only exactly-once, not bit-for-bit equality, holds after a
restart; in partition scope (and for files) a ``kill -9`` resumes to the state of an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamem import parsing
from streamem.config import Config
from streamem.metrics.health import report_lane
from streamem.runtime import build, keyed_lane
from streamem.runtime.checkpoint import Checkpointer
from streamem.runtime.chunking import Chunker, LagBound
from streamem.runtime.feedback import FeedbackLoop
from streamem.runtime.lane import Lane, Lanes
from streamem.runtime.lifecycle import RunSummary, StatusLog, capture_signals
from streamem.runtime.pipeline import Pipeline
from streamem.runtime.rebalance import LaneRebalancer
from streamem.sinks.gate import SinkGate
from streamem.sources.base import Source
from streamem.ui.history import History
from streamem.ui.store import save_history

__all__ = ["Daemon"]

logger = logging.getLogger("streamem.daemon")  # the name operators filter the daemon on


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

    Attributes
    ----------
    lanes
        The live model states.
    metrics
        The metrics recorder while running with ``metrics.enabled`` (else None).
    bound_address
        ``(host, port)`` the metrics server listens on while running (else None).
    """

    def __init__(self, config: Config, *, registry: Any = None,
                 install_signal_handlers: bool = True) -> None:
        self.cfg = config
        self._registry = registry
        self._signals = install_signal_handlers
        self._stop = False
        self.lanes = Lanes(config.model.scope, self._restore)
        self.metrics: Any = None
        self.history: History | None = None
        self.feedback: FeedbackLoop | None = None
        self.bound_address: tuple[str, int] | None = None
        self._ckpt: Checkpointer | None = None
        self._source: Source | None = None
        self._chunker: Chunker | None = None
        self._lag: LagBound | None = None
        self._ready_reported = False

    @property
    def checkpoints(self) -> int:
        """Checkpoints completed so far."""
        return self._ckpt.checkpoints if self._ckpt is not None else 0

    def stop(self) -> None:
        """Ask the loop to finish the current batch, checkpoint and return."""
        self._stop = True

    # ------------------------------------------------------------------ wiring
    def _build(self, stack: contextlib.ExitStack) -> Pipeline:
        cfg, self._stack = self.cfg, stack  # the stack also closes keyed lanes' key stores
        state_dir = Path(cfg.checkpoint.dir)
        store = stack.enter_context(build.make_store(cfg))
        made = build.make_source(cfg)
        self._source = source = stack.enter_context(made.source)
        sinks = stack.enter_context(build.make_sinks(cfg, state_dir))
        dead = stack.enter_context(build.make_dead_letter(cfg))
        if cfg.metrics.enabled:
            self.history, self.feedback = build.make_page(cfg)
            self.metrics, server = build.make_metrics(cfg, self._registry, sinks, self.feedback)
            stack.enter_context(server)
            self.bound_address = (cfg.metrics.host, server.port)
        lines = parsing.from_config(cfg)  # text formats; None for jsonl and csv
        fx = build.new_extractor(cfg, made.header, lines)
        stage = build.new_stage(cfg, fx)  # aggregate: buckets (None without)
        c = cfg.checkpoint
        self._ckpt = Checkpointer(
            store, source.commit, SinkGate(c.sinks_failure_timeout_seconds), sinks=sinks,
            dead_letter=dead, metrics=self.metrics, every_events=c.every_events,
            every_seconds=c.every_seconds, retry_saves=c.store == "kafka", lines=lines,
            stage=stage, after_save=self._save_history, feedback=self.feedback)
        wait = cfg.batch.max_wait_ms / 1000.0
        if cfg.source.type == "kafka":
            self._chunker = Chunker(cfg.batch.max_events, wait)
            self._lag = LagBound(source.lag, wait / 2)
        if made.rebalancing is not None:
            made.rebalancing.set_rebalance_listener(
                LaneRebalancer(self.lanes, self.checkpoint, self._chunker))
        return Pipeline(cfg, fx, sinks, dead, self.metrics, self.lanes.lane_for, stage=stage,
                        chunker=self._chunker, history=self.history, feedback=self.feedback)

    def _restore(self, key: str) -> Lane:
        assert self._ckpt is not None
        return keyed_lane.restore_lane(self.cfg, key, self._stack, self._ckpt)

    def checkpoint(self, lanes: Sequence[Lane] | None = None, *, final: bool = False) -> None:
        """Flush, save, commit ``lanes`` (all live ones by default): see the checkpoint module."""
        assert self._ckpt is not None
        every = self.lanes.values()
        self._ckpt.checkpoint(every if lanes is None else lanes, every, final=final,
                              stopping=self._stop)

    def _save_history(self) -> None:
        """The page's history, next to the checkpoints (best effort: not model state)."""
        if self.history is None:
            return
        try:
            save_history(self.cfg.checkpoint.dir, self.history)
        except OSError as exc:
            logger.warning("ui history not saved in %s (%s)", self.cfg.checkpoint.dir, exc)

    # ------------------------------------------------------------------ main loop
    def run(self) -> RunSummary:
        """Consume until the source ends or :meth:`stop`; always end with a checkpoint."""
        t_start = time.monotonic()
        with contextlib.ExitStack() as stack:
            pipeline = self._build(stack)
            assert self._ckpt is not None and self._source is not None
            gate = self._ckpt.gate
            stack.enter_context(capture_signals(self.stop, self._signals))
            if self.cfg.model.scope == "global" or self.cfg.source.type != "kafka":
                lane = self.lanes.lane_for(0)
                if lane.positions:
                    self._source.seek(lane.positions)
            if self.metrics is not None:
                self.metrics.set_up(True)
            status = StatusLog(self.cfg.logging.status_interval_seconds)
            try:
                self._loop(pipeline, status)
                self.checkpoint(final=True)
                while gate.blocked:  # sinks fail: retry until they work or time runs out
                    gate.wait(lambda: self._stop, self.metrics)
                    self.checkpoint(final=True)
            finally:
                if self.metrics is not None:
                    self.metrics.set_up(False)
            if pipeline.sinks is not None:
                pipeline.sinks.flush(timeout=30.0)
            self.bound_address = None
        t = pipeline.totals
        summary = RunSummary(t["events"], t["learned"], t["anomalous"], t["rejected"],
                             self.checkpoints, time.monotonic() - t_start)
        logger.info(summary.line())
        return summary

    def _loop(self, pipeline: Pipeline, status: StatusLog) -> None:
        source, ckpt = self._source, self._ckpt
        assert source is not None and ckpt is not None
        b = self.cfg.batch
        follow = self.cfg.source.type != "file" or self.cfg.source.follow
        wait = b.max_wait_ms / 1000.0 if follow else 0.0
        while not self._stop:
            if ckpt.gate.blocked:  # input paused until the sinks work again
                ckpt.gate.wait(lambda: self._stop, self.metrics)
                self.checkpoint()
                continue
            events = source.poll(b.max_events, wait)
            if self.metrics is not None:
                self.metrics.heartbeat()
            if events:
                if self._lag is not None:
                    self._lag.polled(events.counts())
                pipeline.process(events)
                ckpt.polled(len(events))
            elif source.exhausted:
                pipeline.end_of_input(self.lanes.values())  # aggregate: the open buckets
                break
            if self._chunker is not None:
                self._flush_partial(pipeline)
            self._update_health(status)
            pipeline.tick()
            if ckpt.due(self.lanes.values()):
                self.checkpoint()
            status.maybe_log(pipeline.totals, source.lag)

    def _flush_partial(self, pipeline: Pipeline) -> None:
        """Process the partial chunks the log cannot complete
        (:meth:`~streamem.runtime.chunking.Chunker.due`), measuring the lag again only when
        its lower bound no longer rules a flush out."""
        chunker, lag = self._chunker, self._lag
        assert chunker is not None and lag is not None
        now = time.monotonic()
        due = chunker.due(now, lag.lag)
        if due and lag.refresh(now):
            due = chunker.due(now, lag.lag)
        elif due:
            return  # measured less than max_wait / 2 ago: wait for the next measurement
        if due:
            pipeline.flush_partial([self.lanes[k] for k in due])

    def _update_health(self, status: StatusLog) -> None:
        """Model health to metrics: at most once a second (and when a model became ready)."""
        if self.metrics is None:
            return
        lanes = self.lanes.values()
        ready = bool(lanes) and all(ln.scorer.ready for ln in lanes)
        if not (status.health_due() or ready != self._ready_reported):
            return
        for lane in lanes:
            report_lane(self.metrics, lane)
            if self.history is not None:
                keyed_lane.observe_lane(self.history, lane)  # keyed: /api/v1/keys states
        assert self._source is not None
        lag = self._source.lag()  # on the loop thread: not thread-safe
        if self._lag is not None:
            self._lag.set(lag, time.monotonic())
        if self._chunker is not None:  # buffered events are not processed yet: still lag
            for p, n in self._chunker.counts().items():
                if p in lag:
                    lag[p] += n
        self.metrics.set_source_lag(lag)
        self.metrics.set_ready(ready)
        self._ready_reported = ready
