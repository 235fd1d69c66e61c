"""Checkpoints that carry the input position: :class:`Checkpointer`.

The ordering that makes "nothing accepted is lost" hold (the one place it is written down):

1. **flush** the sinks and the dead-letter sink (delivered or durably spooled), through the
   :class:`~streamem.sinks.gate.SinkGate`. If that fails nothing is saved or committed: the
   daemon pauses input and retries with backoff until the sinks work again or
   ``checkpoint.sinks_failure_timeout_seconds`` ends the run with exit 1, so the checkpoint
   never moves past records a sink did not keep and the next start replays from it;
2. **save** one snapshot per changed lane, holding the detector *and* the input positions
   (and counters, and the template miner's state);
3. only then **commit** those positions to the source (Kafka), which is for lag monitoring.

On start the newest valid snapshot of a lane is restored and the source is sought to its
positions, so model state and input position never disagree: a ``kill -9`` at any moment
resumes to the same state as an uninterrupted run (with count-based batching, or chunks:
:mod:`streamem.runtime.chunking`).

With the Kafka state store a save that fails (say, the brokers are restarting) does not stop
the daemon: the lanes stay dirty, nothing is committed for them, and the save is retried when
the next checkpoint is due, for up to :data:`SAVE_RETRY_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from streamem.errors import StateError
from streamem.parsing import LineDecoder
from streamem.runtime.aggregation import BucketStage
from streamem.runtime.feedback import FeedbackLoop
from streamem.runtime.lane import Lane
from streamem.scoring.detector import Detector
from streamem.sinks.base import DeadLetterSink
from streamem.sinks.fanout import FanoutSink
from streamem.sinks.gate import SinkGate
from streamem.state.base import CheckpointStore, Snapshot

__all__ = ["SAVE_RETRY_SECONDS", "Checkpointer", "detector_from_snapshot"]

logger = logging.getLogger("streamem.daemon")  # the daemon's logger, as operators know it

SAVE_RETRY_SECONDS = 300.0
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


class _Recorder(Protocol):
    """What the checkpointer needs of the metrics recorder."""

    def observe_checkpoint(self, duration_seconds: float) -> None: ...

    def restored_checkpoint(self, created_at: float) -> None: ...

    def set_sinks_blocked(self, reason: str | None) -> None: ...

    def heartbeat(self) -> None: ...


class Checkpointer:
    """Flush, save, commit (see the module docstring), and when the next checkpoint is due.

    Parameters
    ----------
    store
        Where snapshots go.
    commit
        Commits ``{partition: next offset}`` to the source (step 3).
    gate
        Flushes the sinks and holds checkpoints back while they fail (step 1).
    sinks, dead_letter
        What the gate flushes.
    metrics
        Metrics recorder (or None).
    every_events, every_seconds
        A checkpoint is due after this many polled events or seconds (if a lane learned).
    retry_saves
        Keep running when a save fails, for :data:`SAVE_RETRY_SECONDS` (the Kafka store).
    lines
        The text-format decoder whose template miner is saved with every snapshot.
    stage
        With ``aggregate:``, the bucket stage whose open buckets are saved with each lane.
    after_save
        Called after each complete checkpoint (the operator page's history).
    feedback
        The operator verdicts: each lane's are saved in its snapshot and restored with it.
    """

    def __init__(self, store: CheckpointStore, commit: Callable[[Mapping[int, int]], None],
                 gate: SinkGate, *, sinks: FanoutSink | None = None,
                 dead_letter: DeadLetterSink | None = None, metrics: _Recorder | None = None,
                 every_events: int = 10_000, every_seconds: float = 30.0,
                 retry_saves: bool = False,
                 lines: LineDecoder | None = None,
                 stage: BucketStage | None = None,
                 after_save: Callable[[], None] = lambda: None,
                 feedback: FeedbackLoop | None = None) -> None:
        self.store = store
        self._commit = commit
        self.gate = gate
        self._sinks = sinks
        self._dead = dead_letter
        self._metrics = metrics
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._retry_saves = retry_saves
        self._lines = lines
        self._stage = stage
        self._after_save = after_save
        self._feedback = feedback
        self.checkpoints = 0
        self.failing_since: float | None = None
        self._since_events = 0
        self._last = time.monotonic()

    def _parsing_state(self, key: str) -> dict[str, Any]:
        out = self._lines.to_state() if self._lines is not None else {}
        return out if self._stage is None else {**out, **self._stage.to_state(key)}

    def restore(self, key: str, fresh: Callable[[], Detector], n_features: int,
                where: str) -> Lane:
        """The lane ``key`` from its newest usable snapshot, or a fresh one.

        A snapshot whose detector state cannot be rebuilt is skipped like a corrupt file (the
        store warns and falls back to the previous one). The restored positions are committed
        to the source at once: the kill that may have prevented their commit must not leave
        the group's committed offsets (and so its lag) behind a durable state until new
        events arrive.

        Parameters
        ----------
        key
            The lane.
        fresh
            Builds a new detector (no usable snapshot).
        n_features
            How many features the config lists (a snapshot must have as many).
        where
            The checkpoint location, for the message of a feature-count mismatch.

        Raises
        ------
        StateError
            The newest usable snapshot has another number of features.
        """
        restored: list[Detector] = []

        def usable(snap: Snapshot) -> None:
            restored[:] = [detector_from_snapshot(snap)]

        snap = self.store.load_latest(key, check=usable)
        if self._feedback is not None:
            self._feedback.restore_lane(key, {} if snap is None else snap.feedback)
        if snap is None:
            logger.info("state %s: no checkpoint, starting a new model", key)
            if self._stage is not None:
                self._stage.restore(key, {})  # new buckets too
            return Lane(key, fresh())
        det = restored[0]
        if det.n_features_in_ is not None and det.n_features_in_ != n_features:
            raise StateError(
                f"checkpoint {snap.sequence} of state {key!r} has {det.n_features_in_} features "
                f"but fields.features lists {n_features}; restore the old feature list or move "
                f"{where!r} away to start a new model")
        logger.info("state %s: restored checkpoint %d (%d events learned), resuming at %s",
                    key, snap.sequence, snap.counters.get("events_learned", 0), snap.positions)
        self.resumed(key, snap.positions, snap.parsing, snap.created_at)
        return Lane(key, det, snap.positions, snap.counters, snap.sequence)

    def resumed(self, key: str, positions: Mapping[int, int], parsing: Mapping[str, Any],
                created_at: float | None = None) -> None:
        """Lane ``key`` was restored at ``positions``: restore the template miner's and the
        open buckets' ``parsing`` state and commit the positions (see :meth:`restore`)."""
        if self._metrics is not None and created_at is not None:
            self._metrics.restored_checkpoint(created_at)
        if self._lines is not None:  # the template miner as of this checkpoint
            self._lines.restore(dict(parsing))
        if self._stage is not None:  # the open buckets as of this checkpoint
            self._stage.restore(key, dict(parsing))
        if positions:
            self._commit(dict(positions))

    def polled(self, n: int) -> None:
        """``n`` more events were polled."""
        self._since_events += n

    def due(self, lanes: Iterable[Lane]) -> bool:
        """True when a lane learned and ``every_events`` or ``every_seconds`` passed."""
        # dirty, not "events polled": a chunked lane may learn (a partial chunk) without a poll
        if not any(ln.dirty for ln in lanes):
            return False
        return self._since_events >= self.every_events or \
            time.monotonic() - self._last >= self.every_seconds

    def checkpoint(self, lanes: Iterable[Lane], every: Iterable[Lane] = (), *,
                   final: bool = False, stopping: bool = False) -> None:
        """Make the state of ``lanes`` durable, then commit the positions it reflects.

        Parameters
        ----------
        lanes
            The lanes to checkpoint; only the dirty ones unless ``final`` (so a shutdown
            always leaves a snapshot written at shutdown).
        every
            All live lanes (named in the message when the sinks fail for good).
        final
            Save every lane of ``lanes``, changed or not.
        stopping
            A stop was requested: sinks that fail now end the run at once.
        """
        todo = [ln for ln in lanes if ln.dirty or final]
        if not todo:
            return
        t0 = time.perf_counter()
        last = ", ".join(f"{ln.key} #{ln.sequence}" for ln in every) or "none"
        if not self.gate.durable(self._sinks, self._dead, self._metrics, stopping=stopping,
                                 last_checkpoint=f"checkpoint {last}"):
            return  # 1. failed: lanes stay dirty, nothing saved, nothing committed
        positions: dict[int, int] = {}
        failed = False
        for lane in todo:
            batches = lane.progress.batches
            try:  # 2.
                lane.scorer.save(self.store, lane, self._parsing_state(lane.key),
                                 {} if self._feedback is None
                                 else self._feedback.lane_state(lane.key))
            except StateError as exc:
                if not self._save_failed(exc):
                    raise
                failed = True
                break
            lane.saved.mark(lane.sequence + 1, batches)
            positions.update(lane.positions)
        if positions:
            self._commit(positions)  # 3.
        self._since_events = 0
        self._last = time.monotonic()
        if failed:
            return
        if self.failing_since is not None:
            logger.warning("checkpoints saved again after %.0f s of failures",
                           time.monotonic() - self.failing_since)
            self.failing_since = None
        self.checkpoints += 1
        if self._metrics is not None:
            self._metrics.observe_checkpoint(time.perf_counter() - t0)
        self._after_save()

    def _save_failed(self, exc: StateError) -> bool:
        """A Kafka state store that fails to save (a broker outage): keep running, the lanes
        stay dirty and the save is retried when the next checkpoint is due; no offsets are
        committed for them meanwhile. True to carry on, False to raise (any other store, or
        failing for :data:`SAVE_RETRY_SECONDS`)."""
        if not self._retry_saves:
            return False
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        failing = now - self.failing_since
        if failing > SAVE_RETRY_SECONDS:
            return False
        logger.warning("checkpoint not saved (%s); still running, retrying in %.0f s "
                       "(giving up after %.0f s of failures)", exc, self.every_seconds,
                       SAVE_RETRY_SECONDS - failing)
        return True
