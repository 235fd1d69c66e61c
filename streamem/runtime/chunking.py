"""Chunked learning for Kafka sources: each lane learns in chunks of exactly ``size`` events.

What ``poll()`` returns is not deterministic, so the events of each lane are buffered and cut
into chunks of exactly ``batch.max_events`` of its own events: the lane's state after ``k``
chunks is then a function of the first ``k * size`` events of its input alone, and
checkpoints fall on chunk boundaries (buffered events are never checkpointed; they are read
again after a restart or a rebalance).

A partial chunk is processed only when the log cannot complete it (:meth:`Chunker.due`): its
oldest event waited ``max_wait`` seconds *and* the buffered events plus the partition's lag
(events in Kafka not fetched yet) are fewer than ``size``. Catching up on a backlog thus only
ever flushes the last, partial chunk at the end of the log, which makes a restarted run reach
bit-for-bit the state of an uninterrupted one in partition scope. :class:`LagBound` keeps the
lag as a lower bound between measurements, so the broker is asked only when the bound no
longer rules a flush out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from streamem.events import EventBatch

__all__ = ["Chunker", "LagBound"]


@dataclass
class _Buffer:
    runs: list[EventBatch] = field(default_factory=list)
    n: int = 0
    since: float | None = None  # monotonic time the oldest buffered event arrived


class Chunker:
    """Per-lane event buffers that hand out chunks of exactly ``size`` events.

    Parameters
    ----------
    size
        Events per chunk (``batch.max_events``).
    max_wait
        Seconds the oldest buffered event may wait before a partial chunk is considered
        (``batch.max_wait_ms / 1000``).

    Examples
    --------
    >>> ch = Chunker(size=2, max_wait=0.5)
    >>> ch.add("p0", EventBatch([b"a", b"b", b"c"], [0, 1, 2], [1, 2, 3], 0, "t"), now=0.0)
    >>> [c.payloads for c in ch.full("p0", now=0.0)], len(ch.buffered("p0"))
    ([[b'a', b'b']], 1)
    >>> ch.due(now=1.0, lag={0: 0}), ch.due(now=1.0, lag={0: 5}), ch.counts()
    (['p0'], [], {0: 1})
    >>> [c.payloads for c in ch.rest("p0")], ch.due(now=2.0, lag={})
    ([[b'c']], [])
    """

    def __init__(self, size: int, max_wait: float) -> None:
        self.size = size
        self.max_wait = max_wait
        self._buffers: dict[str, _Buffer] = {}

    def add(self, key: str, batch: EventBatch, now: float) -> None:
        """Buffer ``batch`` (events of lane ``key``, arrived at monotonic time ``now``)."""
        if not len(batch):
            return
        buf = self._buffers.setdefault(key, _Buffer())
        if not buf.n:
            buf.since = now
        buf.runs.append(batch)
        buf.n += len(batch)

    def _take(self, buf: _Buffer, n: int) -> EventBatch:
        parts: list[EventBatch] = []
        need = n
        while need and buf.runs:
            run = buf.runs[0]
            if len(run) <= need:
                parts.append(buf.runs.pop(0))
                need -= len(run)
            else:
                parts.append(run[:need])
                buf.runs[0] = run[need:]
                need = 0
        buf.n -= n - need
        return EventBatch.join(parts)

    def _drain(self, key: str, now: float | None, partial: bool) -> list[EventBatch]:
        buf = self._buffers.get(key)
        if buf is None:
            return []
        out = []
        while buf.n >= self.size or (partial and buf.n):
            out.append(self._take(buf, self.size))
        if not buf.n:
            buf.since = None
        elif out and now is not None:
            buf.since = now
        return out

    def full(self, key: str, now: float) -> list[EventBatch]:
        """Remove and return the full chunks of lane ``key`` (its rest waits, from ``now``)."""
        return self._drain(key, now, partial=False)

    def rest(self, key: str, now: float | None = None) -> list[EventBatch]:
        """Remove and return everything lane ``key`` holds, the last chunk partial."""
        return self._drain(key, now, partial=True)

    def buffered(self, key: str) -> EventBatch:
        """What lane ``key`` holds (not removed)."""
        buf = self._buffers.get(key)
        return EventBatch.join(buf.runs) if buf is not None else EventBatch([], [], [], 0, "")

    def counts(self) -> dict[int, int]:
        """``{partition: buffered events}`` over every lane (they are still lag)."""
        out: dict[int, int] = {}
        for buf in self._buffers.values():
            for run in buf.runs:
                for p, n in run.counts().items():
                    out[p] = out.get(p, 0) + n
        return out

    def due(self, now: float, lag: Mapping[int, int]) -> list[str]:
        """The lanes whose partial chunk the log cannot complete (see the module docstring).

        Parameters
        ----------
        now
            Monotonic time.
        lag
            Events not fetched yet, per partition (a lower bound is enough; a partition
            missing from it is treated as unknown, so its lane is due once it waited).
        """
        out = []
        for key, buf in self._buffers.items():
            if buf.since is None or now - buf.since < self.max_wait:
                continue
            parts: dict[int, int] = {}
            for run in buf.runs:
                parts.update(run.counts())
            if all(p in lag for p in parts) and buf.n + sum(lag[p] for p in parts) >= self.size:
                continue  # the log holds enough to complete the chunk
            out.append(key)
        return out

    def drop(self, key: str, partitions: Iterable[int] | None = None) -> None:
        """Forget what lane ``key`` holds of ``partitions`` (all when None): they were revoked."""
        buf = self._buffers.get(key)
        if buf is None:
            return
        if partitions is None:
            del self._buffers[key]
            return
        gone = set(partitions)
        kept = [b for run in buf.runs for b in run.runs() if b.partitions[0] not in gone]
        buf.runs, buf.n = kept, sum(map(len, kept))
        if not buf.n:
            buf.since = None


class LagBound:
    """The log's lag per partition as a lower bound: measured now and then, minus the events
    polled since (the log only grows).

    Parameters
    ----------
    measure
        Asks the source for its lag (``Source.lag``).
    min_interval
        Seconds between two measurements asked for by :meth:`refresh`.

    Examples
    --------
    >>> lb = LagBound(lambda: {0: 10}, min_interval=1.0)
    >>> lb.refresh(now=5.0), lb.lag
    (True, {0: 10})
    >>> lb.polled({0: 4}); lb.lag, lb.refresh(now=5.5)
    ({0: 6}, False)
    """

    def __init__(self, measure: Callable[[], dict[int, int]], min_interval: float) -> None:
        self._measure = measure
        self.min_interval = min_interval
        self.lag: dict[int, int] = {}
        self._at = -1e18

    def polled(self, counts: Mapping[int, int]) -> None:
        """``counts`` events per partition were polled."""
        lag = self.lag
        for p, n in counts.items():
            if p in lag:
                lag[p] -= n

    def set(self, lag: Mapping[int, int], now: float) -> None:
        """Use a lag just measured elsewhere (at monotonic time ``now``)."""
        self.lag, self._at = dict(lag), now

    def refresh(self, now: float) -> bool:
        """Measure again unless the last measurement is younger than ``min_interval``;
        True when measured."""
        if now - self._at < self.min_interval:
            return False
        self.set(self._measure(), now)
        return True
