"""Where each partition of the Kafka source stands: pending seeks, read positions and lag.

:class:`PartitionPositions` is the source's per-partition bookkeeping for one topic:

- ``next_offsets``: the next offset to read, per partition, after the last record ``poll``
  returned or the last seek (lag falls back to ``consumer.position()`` for the others);
- pending seeks: positions from :meth:`PartitionPositions.seek` for partitions that are not
  assigned yet, applied when they are (:meth:`PartitionPositions.start`), unless the rebalance
  listener gives its own;
- lag: the end offset minus the next offset to read, as last measured.

The consumer is passed to each call (the source creates it lazily and drops it on close);
nothing here decides what to do about an error: Kafka errors reach the source, which counts,
logs or raises them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from streamem.kafka.client import KafkaConsumer, OffsetAndMetadata, TopicPartition

__all__ = ["PartitionPositions"]

# the Kafka source's logger (operators filter on "streamem.sources.kafka")
logger = logging.getLogger("streamem.sources.kafka")


class PartitionPositions:
    """Per-partition positions of the source's topic (see the module docstring).

    Parameters
    ----------
    name, topic
        The source's name (for logs) and its topic.

    Examples
    --------
    With a stand-in for the two consumer calls used here (partition 0 is assigned):

    >>> class Consumer:
    ...     def assignment(self): return {TopicPartition("events", 0)}
    ...     def seek(self, tp, offset): print("seek", tp.partition, offset)
    >>> pos = PartitionPositions("kafka", "events")
    >>> pos.seek(Consumer(), {0: 42, 1: 10})  # 0 now; 1 waits for its assignment
    seek 0 42
    >>> pos.start(Consumer(), [1, 2], {2: 7})  # assigned: 1 from seek(), 2 from the listener
    seek 1 10
    seek 2 7
    >>> pos.next_offsets
    {0: 42, 1: 10, 2: 7}
    >>> pos.forget([0]); pos.next_offsets
    {1: 10, 2: 7}
    """

    def __init__(self, name: str, topic: str) -> None:
        self.name = name
        self.topic = topic
        self.next_offsets: dict[int, int] = {}
        """``{partition: next offset to read}``; ``poll`` writes it for each record returned."""
        self._pending_seek: dict[int, int] = {}
        self._lag: dict[int, int] = {}

    def seek(self, consumer: KafkaConsumer | None, positions: Mapping[int, int]) -> None:
        """Resume at ``{partition: next_offset}`` now (assigned partitions) or on assignment."""
        for partition, offset in positions.items():
            self._pending_seek[int(partition)] = int(offset)
        if consumer is None:
            return
        for tp in consumer.assignment():
            if tp.partition in self._pending_seek:
                offset = self._pending_seek.pop(tp.partition)
                consumer.seek(tp, offset)
                self.next_offsets[tp.partition] = offset

    def start(self, consumer: KafkaConsumer | None, partitions: list[int],
              offsets: dict[int, int]) -> None:
        """Seek newly assigned partitions: the listener's offsets win over :meth:`seek`'s."""
        for p in partitions:
            off = offsets.get(p, self._pending_seek.pop(p, None))
            self._pending_seek.pop(p, None)
            if off is not None and consumer is not None:
                consumer.seek(TopicPartition(self.topic, p), off)
                self.next_offsets[p] = off
        logger.info("%s: partitions %s assigned; seeking to %s (others resume from the "
                    "committed offset)", self.name, partitions,
                    {p: self.next_offsets[p] for p in partitions if p in self.next_offsets})

    def forget(self, partitions: list[int]) -> None:
        """Drop the state of revoked (or lost) partitions (the listener has run)."""
        for p in partitions:
            self.next_offsets.pop(p, None)
            self._lag.pop(p, None)

    def owned_offsets(self, consumer: KafkaConsumer, positions: Mapping[int, int],
                      ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The commit request for ``positions``, limited to the partitions still assigned.

        Partitions no longer assigned are left to their new owner (and logged).
        """
        owned = {tp.partition for tp in consumer.assignment()}
        offsets = {TopicPartition(self.topic, int(p)): OffsetAndMetadata(int(o), "", -1)
                   for p, o in positions.items() if int(p) in owned}
        skipped = sorted(set(map(int, positions)) - owned)
        if skipped:
            logger.info("%s: not committing partitions %s: no longer assigned", self.name, skipped)
        return offsets

    def measure_lag(self, consumer: KafkaConsumer) -> None:
        """Ask the broker for the end offsets of the assigned partitions and update :meth:`lag`.

        Raises
        ------
        KafkaError, ValueError
            From the consumer; the last measured lag is kept.
        """
        tps = list(consumer.assignment())
        if tps:
            ends = consumer.end_offsets(tps, timeout_ms=2000)
            self._lag = {tp.partition: max(0, int(end) - self._position(consumer, tp))
                         for tp, end in ends.items() if end is not None}
        else:
            self._lag = {}

    def lag(self) -> dict[int, int]:
        """Per assigned partition, as last measured: end offset minus the next to read."""
        return dict(self._lag)

    def _position(self, consumer: KafkaConsumer, tp: TopicPartition) -> int:
        if tp.partition in self.next_offsets:
            return self.next_offsets[tp.partition]
        pos = consumer.position(tp, timeout_ms=2000)
        return int(pos) if pos is not None else 0
