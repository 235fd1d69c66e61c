"""The events every runtime stage passes on (pure: stdlib + numpy).

:class:`EventBatch` is the one batch type from source to sinks: events column-wise (lists of
payloads, offsets, keys, timestamps) in delivery order, as consecutive *runs* of one partition
each. A source's poll returns one, the chunker slices and joins them, the pipeline decodes and
scores one. Indexing builds a :class:`RawEvent` view of one event on demand; nothing on the
hot path does, so a fast source builds no object per event.

:class:`DecodedBatch` is what decoding a batch gives: the feature matrix, which events it holds
and why the others were rejected (:class:`Rejection`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple, overload

import numpy as np
from numpy.typing import NDArray

from streamem.model._catcodes import CategoricalBatch
from streamem.parsing.eventmeta import lookup as _lookup

__all__ = ["DecodedBatch", "EventBatch", "Position", "RawEvent", "Rejection"]


class Position(NamedTuple):
    """Where an event sits in its source (an immutable tuple: cheap on the hot path).

    Parameters
    ----------
    partition
        Source partition (``0`` for a file or stdin; the Kafka partition otherwise).
    offset
        Offset of the event inside the partition (byte offset of the line for a file,
        Kafka offset otherwise). The *next* position to read is ``offset + 1`` for Kafka
        and the end of the line for a file; sources track that themselves.
    topic
        Kafka topic, or the file path, or ``"-"`` for stdin.

    Examples
    --------
    >>> Position(0, 42, "events").id
    'events:0:42'
    """

    partition: int
    offset: int
    topic: str = ""

    @property
    def id(self) -> str:
        """A stable identifier of the event: ``topic:partition:offset``."""
        return f"{self.topic}:{self.partition}:{self.offset}"


class RawEvent(NamedTuple):
    """A view of one undecoded event of an :class:`EventBatch` (an immutable tuple).

    Parameters
    ----------
    payload
        The raw bytes (one JSON line, one CSV row, one Kafka message value).
    position
        Where it came from.
    key
        The message key, if the source has one.
    timestamp
        Source timestamp in seconds since the epoch, if known.
    next_offset
        The offset to resume from after this event (what a checkpoint stores).

    Examples
    --------
    >>> RawEvent(b'{"a": 1}', Position(0, 0, "f"), next_offset=9).payload
    b'{"a": 1}'
    """

    payload: bytes
    position: Position
    key: bytes | None = None
    timestamp: float | None = None
    next_offset: int = 0


class EventBatch(Sequence[RawEvent]):
    """Events column-wise, in delivery order, as runs of one partition each.

    Parameters
    ----------
    payloads
        Raw bytes of each event, shape (n_events,).
    offsets, next_offsets
        Position of each event and the position after it, shape (n_events,).
    partition
        The partition of every event (a batch of several partitions comes from :meth:`join`).
    topic
        Where they come from (a Kafka topic, a file path, ``"-"``).
    keys, timestamps_ms
        Optional message keys and source timestamps (milliseconds since the epoch, negative
        when unknown), as a Kafka source has them.

    Examples
    --------
    >>> b = EventBatch([b"a", b"b"], [0, 2], [2, 4], 0, "f")
    >>> len(b), b[1].position.id, b[-1].next_offset
    (2, 'f:0:2', 4)
    >>> EventBatch([b"v"], [7], [8], 3, "t", [b"k"], [1500])[0][2:4]
    (b'k', 1.5)
    >>> j = EventBatch.join([EventBatch([b"x"], [5], [6], 1, "t"), b])
    >>> j.payloads, j.counts(), j.last_positions(), j[1:].partitions
    ([b'x', b'a', b'b'], {1: 1, 0: 2}, {1: 6, 0: 4}, [0])
    """

    __slots__ = ("_starts", "keys", "next_offsets", "offsets", "payloads", "timestamps_ms",
                 "topic")

    def __init__(self, payloads: list[bytes], offsets: list[int], next_offsets: list[int],
                 partition: int, topic: str, keys: list[bytes | None] | None = None,
                 timestamps_ms: list[int] | None = None) -> None:
        self.payloads = payloads
        self.offsets = offsets
        self.next_offsets = next_offsets
        self.topic = topic
        self.keys = keys
        self.timestamps_ms = timestamps_ms
        # (partition, index of the run's first event); the last run ends at len(payloads),
        # so a source may append to the columns of a one-run batch after building it
        self._starts: list[tuple[int, int]] = [(partition, 0)]

    @classmethod
    def of(cls, events: Iterable[RawEvent], topic: str = "") -> EventBatch:
        """A batch of ``events`` (RawEvent tuples, in order; consecutive ones of one partition
        form a run).

        Examples
        --------
        >>> b = EventBatch.of([RawEvent(b"a", Position(0, 0, "t"), next_offset=1),
        ...                    RawEvent(b"b", Position(2, 7, "t"), b"k", 1.5, 8)])
        >>> b.partitions, b.keys, b.timestamps_ms, b[1] == RawEvent(b"b", Position(2, 7, "t"),
        ...                                                          b"k", 1.5, 8)
        ([0, 2], [None, b'k'], [-1, 1500], True)
        """
        evs = list(events)
        if not evs:
            return cls([], [], [], 0, topic)
        out = cls([e.payload for e in evs], [e.position.offset for e in evs],
                  [e.next_offset for e in evs], evs[0].position.partition,
                  evs[0].position.topic)
        if any(e.key is not None for e in evs):
            out.keys = [e.key for e in evs]
        if any(e.timestamp is not None for e in evs):
            out.timestamps_ms = [-1 if e.timestamp is None else round(e.timestamp * 1000)
                                 for e in evs]
        starts = [(p, i) for i, p in enumerate(e.position.partition for e in evs)]
        out._starts = [s for k, s in enumerate(starts) if k == 0 or starts[k - 1][0] != s[0]]
        return out

    @classmethod
    def join(cls, batches: Sequence[EventBatch]) -> EventBatch:
        """One batch of ``batches`` in order (their runs kept; columns concatenated)."""
        parts = [b for b in batches if len(b)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return batches[0] if batches else cls([], [], [], 0, "")
        out = cls(list(chain.from_iterable(b.payloads for b in parts)),
                  list(chain.from_iterable(b.offsets for b in parts)),
                  list(chain.from_iterable(b.next_offsets for b in parts)), 0, parts[0].topic)
        if any(b.keys is not None for b in parts):
            out.keys = list(chain.from_iterable(
                b.keys if b.keys is not None else [None] * len(b) for b in parts))
        if any(b.timestamps_ms is not None for b in parts):
            out.timestamps_ms = list(chain.from_iterable(
                b.timestamps_ms if b.timestamps_ms is not None else [-1] * len(b)
                for b in parts))
        starts: list[tuple[int, int]] = []
        base = 0
        for b in parts:
            for p, s in b._runs():
                if starts and starts[-1][0] == p and s == 0:  # a run continued: one run
                    continue
                starts.append((p, base + s))
            base += len(b)
        out._starts = starts
        return out

    def _runs(self) -> list[tuple[int, int]]:
        """``(partition, start)`` of each non-empty run."""
        n = len(self.payloads)
        s = self._starts
        if len(s) == 1:
            return s if n else []
        return [r for r, end in zip(s, [*(t for _, t in s[1:]), n], strict=True) if end > r[1]]

    def _bounds(self) -> list[tuple[int, int, int]]:
        """``(partition, start, stop)`` of each non-empty run."""
        runs = self._runs()
        if not runs:
            return []
        ends = [*(s for _, s in runs[1:]), len(self.payloads)]
        return [(p, s, e) for (p, s), e in zip(runs, ends, strict=True)]

    @property
    def partitions(self) -> list[int]:
        """The partition of each run, in order."""
        return [p for p, _ in self._runs()]

    def runs(self) -> list[EventBatch]:
        """The runs as one-partition batches (the batch itself when it has one run)."""
        bounds = self._bounds()
        if len(bounds) <= 1:
            return [self] if bounds else []
        return [self[s:e] for _, s, e in bounds]

    def counts(self) -> dict[int, int]:
        """``{partition: number of its events here}``."""
        out: dict[int, int] = {}
        for p, s, e in self._bounds():
            out[p] = out.get(p, 0) + e - s
        return out

    def last_positions(self) -> dict[int, int]:
        """``{partition: next offset after its last event here}``."""
        return {p: self.next_offsets[e - 1] for p, _, e in self._bounds()}

    def __len__(self) -> int:
        return len(self.payloads)

    @overload
    def __getitem__(self, i: int) -> RawEvent: ...

    @overload
    def __getitem__(self, i: slice) -> EventBatch: ...

    def __getitem__(self, i: int | slice) -> RawEvent | EventBatch:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError(f"EventBatch slices take step 1, not {step}")
            out = EventBatch(self.payloads[i], self.offsets[i], self.next_offsets[i], 0,
                             self.topic, None if self.keys is None else self.keys[i],
                             None if self.timestamps_ms is None else self.timestamps_ms[i])
            kept = [(p, max(s, start) - start) for p, s, e in self._bounds()
                    if s < stop and e > start]
            out._starts = kept or [(self._starts[0][0], 0)]
            return out
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"event {i} of {n}")
        s = self._starts
        partition = s[0][0] if len(s) == 1 else s[bisect_right([t for _, t in s], i) - 1][0]
        ms = None if self.timestamps_ms is None else self.timestamps_ms[i]
        return RawEvent(self.payloads[i], Position(partition, self.offsets[i], self.topic),
                        None if self.keys is None else self.keys[i],
                        ms / 1000.0 if ms is not None and ms >= 0 else None,
                        self.next_offsets[i])

    def __iter__(self) -> Iterator[RawEvent]:
        for _, s, e in self._bounds():
            yield from (self[k] for k in range(s, e))

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same events (``poll(...) == []`` works)."""
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EventBatch({len(self)} events of {self.topic!r}, runs {self._runs()})"


@dataclass(frozen=True)
class Rejection:
    """Why event ``index`` of a batch was not used."""

    index: int
    reason: str
    detail: str


class DecodedBatch:
    """A decoded batch: rows of ``X`` correspond to ``kept`` indices of the input.

    Keys and ids are read from the decoded records on demand (:meth:`key`, :meth:`id` for one
    row; :attr:`keys`, :attr:`ids` for all rows), so a batch with no anomalies never pays for
    them; timestamps were parsed (and checked) while decoding.

    Examples
    --------
    >>> from streamem.features import FeatureExtractor
    >>> b = FeatureExtractor(["a"], key="k", timestamp="t").decode(
    ...     [b'{"a": 1, "k": "s1", "t": 5}', b'{"a": 2, "t": "1970-01-01T00:00:09Z"}'])
    >>> b.key(0), b.timestamp(1), b.keys, b.ids
    ('s1', 9.0, ['s1', None], [None, None])
    """

    __slots__ = ("X", "_cache", "_fields", "_recs", "_ts", "categorical", "kept", "rejected")

    def __init__(self, X: NDArray[np.float64], kept: list[int], rejected: list[Rejection],
                 recs: Sequence[dict[str, Any]] = (),
                 fields: tuple[tuple[str, ...] | None, ...] = (None, None, None),
                 ts: NDArray[np.float64] | None = None,
                 categorical: CategoricalBatch | None = None) -> None:
        self.X = X
        self.categorical = categorical  # codes of fields.categorical per kept row, or None
        self.kept = kept
        self.rejected = rejected
        self._recs = recs
        self._fields = fields  # paths of (key, timestamp, id)
        self._ts = ts  # seconds per kept row, NaN where none (None: no timestamp field)
        self._cache: dict[str, list[Any]] = {}

    def key(self, i: int) -> str | None:
        """The key of kept row ``i`` (None without a key field or value)."""
        path = self._fields[0]
        return None if path is None else _str(_lookup(self._recs[i], path))

    def timestamp(self, i: int) -> float | None:
        """The timestamp of kept row ``i`` in seconds since the epoch, or None."""
        if self._ts is None:
            return None
        t = float(self._ts[i])
        return None if math.isnan(t) else t

    def id(self, i: int) -> str | None:
        """The event id of kept row ``i`` (None without an id field or value)."""
        path = self._fields[2]
        return None if path is None else _str(_lookup(self._recs[i], path))

    def _all(self, name: str) -> list[Any]:
        if name not in self._cache:
            one = getattr(self, name)
            self._cache[name] = [one(i) for i in range(len(self.kept))]
        return self._cache[name]

    def record(self, i: int) -> dict[str, Any]:
        """The decoded record of kept row ``i`` (all its fields)."""
        rec: dict[str, Any] = self._recs[i]
        return rec

    def subset(self, rows: Sequence[int], rejected: list[Rejection]) -> DecodedBatch:
        """The batch of kept rows ``rows`` only, with ``rejected`` as its rejections."""
        ts = None if self._ts is None else self._ts[list(rows)]
        return DecodedBatch(self.X[list(rows)], [self.kept[i] for i in rows], rejected,
                            [self._recs[i] for i in rows], self._fields, ts)

    @property
    def seconds(self) -> NDArray[np.float64] | None:
        """Timestamps of every kept row in seconds, NaN where none (None: no timestamp
        field)."""
        return self._ts

    @property
    def keys(self) -> list[str | None]:
        """Keys of every kept row."""
        return self._all("key")

    @property
    def timestamps(self) -> list[float | None]:
        """Timestamps of every kept row."""
        return self._all("timestamp")

    @property
    def ids(self) -> list[str | None]:
        """Event ids of every kept row."""
        return self._all("id")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
