"""The ``Source`` protocol: where raw events come from.

A source hands out :class:`~streamem.events.EventBatch` batches and knows how to resume from
positions stored in a checkpoint. Positions are ``{partition: next_offset}``; a file source
has the single partition ``0`` whose offset is a byte offset.

:meth:`Source.commit` is called only after a durable checkpoint holds those positions, and
:meth:`Source.seek` on start with the positions of the restored one (the ordering is
:mod:`streamem.runtime.checkpoint`'s). Sources whose partitions are assigned dynamically
(Kafka) are also :class:`Rebalancing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from streamem.events import EventBatch

__all__ = ["RebalanceListener", "Rebalancing", "Source"]


class RebalanceListener(Protocol):
    """Called by sources that have partitions assigned dynamically (Kafka consumer groups).

    Both methods run on the thread that calls :meth:`Source.poll`.
    """

    def on_partitions_revoked(self, partitions: Sequence[int]) -> None:
        """Checkpoint the state of ``partitions`` before another instance takes them."""

    def on_partitions_assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        """Restore the state of ``partitions``; return ``{partition: next_offset}`` to seek to."""
        ...


@runtime_checkable
class Source(Protocol):
    """A stream of raw events with resumable positions.

    Implementations are context managers; ``close()`` is idempotent.
    """

    name: str

    def poll(self, max_events: int, timeout: float) -> EventBatch:
        """Return up to ``max_events`` events, waiting at most ``timeout`` seconds.

        An empty batch means nothing arrived in time (or the source is exhausted).
        """
        ...

    @property
    def exhausted(self) -> bool:
        """True when no event will ever arrive again (a file read to its end without follow)."""
        ...

    def seek(self, positions: Mapping[int, int]) -> None:
        """Resume reading at ``{partition: next_offset}``."""
        ...

    def commit(self, positions: Mapping[int, int]) -> None:
        """Record that a durable checkpoint covers everything before ``positions``."""
        ...

    def lag(self) -> dict[int, int]:
        """Events between the read position and the end, per partition (best effort)."""
        ...

    def close(self) -> None:
        """Release the source; safe to call twice."""
        ...

    def __enter__(self) -> Source: ...

    def __exit__(self, *exc: object) -> None: ...


class Rebalancing(Protocol):
    """A source whose partitions are assigned dynamically (a Kafka consumer group member)."""

    def set_rebalance_listener(self, listener: RebalanceListener) -> None:
        """Register the daemon's listener, called from inside :meth:`Source.poll`."""
        ...
