"""Small frozen value types shared across layers (pure: stdlib only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import NamedTuple, overload

# re-exported: streamem/scoring/report.py (owned by another helper this session) imports
# FeatureContribution from here; new code imports streamem.alerting.records
from streamem.alerting.records import AnomalyRecord, FeatureContribution

__all__ = ["AnomalyRecord", "EventBatch", "FeatureContribution", "Position", "RawEvent",
           "partition_of"]


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
    """One undecoded event as a source delivers it (an immutable tuple).

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
    """Events of one partition stored column-wise, so a fast source builds no per-event
    objects; indexing still gives :class:`RawEvent` (built on demand).

    Parameters
    ----------
    payloads
        Raw bytes of each event.
    offsets, next_offsets
        Position of each event and the position after it.
    partition, topic
        Where they all come from.
    keys, timestamps_ms
        Optional message keys and source timestamps (milliseconds since the epoch, negative
        when unknown), as a Kafka source has them.

    Examples
    --------
    >>> b = EventBatch([b"a", b"b"], [0, 2], [2, 4], 0, "f")
    >>> len(b), b[1].position.id, b[-1].next_offset
    (2, 'f:0:2', 4)
    >>> EventBatch([b"v"], [7], [8], 3, "t", [b"k"], [1500]).__getitem__(0)[2:4]
    (b'k', 1.5)
    """

    __slots__ = ("keys", "next_offsets", "offsets", "partition", "payloads", "timestamps_ms",
                 "topic")

    def __init__(self, payloads: list[bytes], offsets: list[int], next_offsets: list[int],
                 partition: int, topic: str, keys: list[bytes | None] | None = None,
                 timestamps_ms: list[int] | None = None) -> None:
        self.payloads = payloads
        self.offsets = offsets
        self.next_offsets = next_offsets
        self.partition = partition
        self.topic = topic
        self.keys = keys
        self.timestamps_ms = timestamps_ms

    def __len__(self) -> int:
        return len(self.payloads)

    @overload
    def __getitem__(self, i: int) -> RawEvent: ...

    @overload
    def __getitem__(self, i: slice) -> EventBatch: ...

    def __getitem__(self, i: int | slice) -> RawEvent | EventBatch:
        if isinstance(i, slice):
            return EventBatch(self.payloads[i], self.offsets[i], self.next_offsets[i],
                              self.partition, self.topic,
                              None if self.keys is None else self.keys[i],
                              None if self.timestamps_ms is None else self.timestamps_ms[i])
        ms = None if self.timestamps_ms is None else self.timestamps_ms[i]
        return RawEvent(self.payloads[i], Position(self.partition, self.offsets[i], self.topic),
                        None if self.keys is None else self.keys[i],
                        ms / 1000.0 if ms is not None and ms >= 0 else None,
                        self.next_offsets[i])


#: ``partition_of(event) == event.position.partition``, at C speed (an ``attrgetter``), for
#: the per-event bookkeeping of the daemon and the pipeline (``map(partition_of, events)``).
partition_of: Callable[[RawEvent], int] = attrgetter("position.partition")
