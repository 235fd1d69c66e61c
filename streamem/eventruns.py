"""Column-wise containers for events of several partitions (pure: stdlib only).

A Kafka poll returns runs of consecutive events of one partition each; keeping them as
:class:`~streamem.types.EventBatch` runs (lists of payloads and offsets) instead of one
:class:`~streamem.types.RawEvent` tuple per event saves the daemon about a microsecond per
event. :class:`EventRuns` is such a poll (still a ``Sequence[RawEvent]``, built on demand),
:class:`EventBuffer` is what a lane holds between polls in chunked mode: it takes runs in and
hands out chunks of exactly ``n`` events, splitting a run where a chunk ends.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, chain, groupby
from typing import overload

from streamem.types import EventBatch, RawEvent, partition_of

__all__ = ["EventBuffer", "EventRuns", "partition_counts", "runs_of"]


class EventRuns(Sequence[RawEvent]):
    """Events as runs of one partition each, in order.

    Parameters
    ----------
    runs
        Non-empty :class:`~streamem.types.EventBatch` runs, in delivery order.

    Examples
    --------
    >>> r = EventRuns([EventBatch([b"a"], [5], [6], 1, "t"), EventBatch([b"b", b"c"], [0, 1],
    ...                [1, 2], 0, "t")])
    >>> len(r), r[1].position.id, r.payloads, r.last_positions()
    (3, 't:0:0', [b'a', b'b', b'c'], {1: 6, 0: 2})
    >>> EventRuns([]) == [], r == list(r)
    (True, True)
    """

    __slots__ = ("_ends", "runs")

    def __init__(self, runs: Sequence[EventBatch]) -> None:
        self.runs = [r for r in runs if len(r)]
        self._ends = list(accumulate(map(len, self.runs)))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, i: int) -> RawEvent: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[RawEvent]: ...

    def __getitem__(self, i: int | slice) -> RawEvent | Sequence[RawEvent]:
        if isinstance(i, slice):
            return list(self)[i]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"event {i} of {n}")
        k = bisect_right(self._ends, i)
        return self.runs[k][i - (self._ends[k - 1] if k else 0)]

    def __iter__(self) -> Iterator[RawEvent]:
        return chain.from_iterable(self.runs)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same events (``poll(...) == []`` works)."""
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def payloads(self) -> list[bytes]:
        """Every payload, in order."""
        return list(chain.from_iterable(r.payloads for r in self.runs))

    def last_positions(self) -> dict[int, int]:
        """``{partition: next offset after its last event here}``."""
        return {r.partition: r.next_offsets[-1] for r in self.runs}


def partition_counts(events: Sequence[RawEvent]) -> dict[int, int]:
    """How many of ``events`` each partition has (without building events from columns).

    Examples
    --------
    >>> partition_counts(EventBatch([b"a", b"b"], [0, 1], [1, 2], 4, "t"))
    {4: 2}
    """
    if isinstance(events, EventBatch):
        return {events.partition: len(events)} if len(events) else {}
    out: dict[int, int] = {}
    runs: Iterable[tuple[int, int]] = (
        ((r.partition, len(r)) for r in events.runs) if isinstance(events, EventRuns)
        else ((p, sum(1 for _ in g)) for p, g in groupby(map(partition_of, events))))
    for p, n in runs:
        out[p] = out.get(p, 0) + n
    return out


def runs_of(events: Sequence[RawEvent]) -> list[EventBatch]:
    """``events`` as runs of one partition each (columns; no copy for EventBatch/EventRuns).

    Examples
    --------
    >>> from streamem.types import Position
    >>> evs = [RawEvent(b"a", Position(0, 0, "t"), next_offset=1),
    ...        RawEvent(b"b", Position(2, 7, "t"), next_offset=8)]
    >>> [(r.partition, r.payloads) for r in runs_of(evs)]
    [(0, [b'a']), (2, [b'b'])]
    """
    if isinstance(events, EventBatch):
        return [events] if len(events) else []
    if isinstance(events, EventRuns):
        return list(events.runs)
    runs = []
    for _, group in groupby(events, key=partition_of):
        evs = list(group)
        pos = evs[0].position
        runs.append(EventBatch([e.payload for e in evs], [e.position.offset for e in evs],
                               [e.next_offset for e in evs], pos.partition, pos.topic))
    return runs


class EventBuffer:
    """A lane's buffered events (chunked mode): runs in, chunks of ``n`` events out.

    Examples
    --------
    >>> buf = EventBuffer()
    >>> buf.extend(EventBatch([b"a", b"b", b"c"], [0, 1, 2], [1, 2, 3], 0, "t"))
    >>> buf.extend(EventBatch([b"x"], [9], [10], 1, "t"))
    >>> chunk = buf.take(2)
    >>> [e.payload for e in chunk], len(buf), buf.counts()
    ([b'a', b'b'], 2, {0: 1, 1: 1})
    >>> [e.position.id for e in buf.take(5)], len(buf)
    (['t:0:2', 't:1:9'], 0)
    """

    __slots__ = ("_n", "_runs")

    def __init__(self) -> None:
        self._runs: list[EventBatch] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self) -> Iterator[RawEvent]:
        return chain.from_iterable(self._runs)

    def extend(self, events: Sequence[RawEvent]) -> None:
        """Append ``events`` (an EventBatch, EventRuns or any sequence of RawEvents)."""
        for run in runs_of(events):
            self._runs.append(run)
            self._n += len(run)

    def take(self, n: int) -> EventBatch | EventRuns:
        """Remove and return the first ``n`` events (fewer if the buffer holds fewer)."""
        out: list[EventBatch] = []
        need = n
        while need and self._runs:
            run = self._runs[0]
            if len(run) <= need:
                out.append(self._runs.pop(0))
                need -= len(run)
            else:
                out.append(run[:need])
                self._runs[0] = run[need:]
                need = 0
        self._n -= n - need
        return out[0] if len(out) == 1 else EventRuns(out)

    def counts(self) -> dict[int, int]:
        """``{partition: buffered events}``."""
        return partition_counts(EventRuns(self._runs))

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the buffered events of ``partitions`` (they were revoked)."""
        gone = set(partitions)
        self._runs = [r for r in self._runs if r.partition not in gone]
        self._n = sum(map(len, self._runs))
