"""The ``Sink`` protocol: where anomalies and incidents go.

A sink must never stall detection: :meth:`Sink.emit` returns quickly (slow network sinks
queue in memory, with a bound, and spool to disk what they cannot deliver). Each sink keeps
plain counters in :class:`SinkStats`; :mod:`streamem.metrics` reads them, so sinks never import
prometheus_client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from streamem.alerting.records import AnomalyRecord, Incident

__all__ = ["ClosingSink", "DeadLetterSink", "Sink", "SinkStats"]


@dataclass
class SinkStats:
    """Delivery counters of one sink (mutable, read by the metrics collector).

    ``delivered``: records handed over for good; ``failed``: failed delivery attempts;
    ``retried``: attempts after the first; ``spooled``: records written to the on-disk spool;
    ``dropped``: records lost (the spool itself failed); ``suppressed``: records not sent by
    policy (cool-down); ``rejected``: records the peer refused for good (4xx, kept in the
    spool's ``rejected.jsonl``); ``spool_size``: records waiting in the spool now (a gauge).

    Examples
    --------
    >>> s = SinkStats(); s.delivered += 1; s.delivered
    1
    """

    delivered: int = 0
    failed: int = 0
    retried: int = 0
    spooled: int = 0
    dropped: int = 0
    suppressed: int = 0
    rejected: int = 0
    spool_size: int = 0


class ClosingSink:
    """The context-manager base every sink shares: ``with sink:`` closes it on exit.

    Subclasses implement :meth:`close` (flush what they can, release, safe to call twice).

    Examples
    --------
    >>> class Counting(ClosingSink):
    ...     closed = 0
    ...     def close(self) -> None:
    ...         self.closed += 1
    >>> with Counting() as sink:
    ...     pass
    >>> sink.closed
    1
    """

    def close(self) -> None:
        """Flush and release; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Sink(Protocol):
    """Destination of anomaly records. Implementations are context managers."""

    name: str
    stats: SinkStats

    def emit(self, record: AnomalyRecord) -> None:
        """Hand one anomaly to the sink; returns quickly."""
        ...

    def emit_incident(self, incident: Incident) -> None:
        """Hand one incident transition (firing or resolved) to the sink."""
        ...

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver or durably spool everything emitted so far; True if nothing is left in memory."""
        ...

    def close(self) -> None:
        """Flush and release; safe to call twice."""
        ...

    def __enter__(self) -> Sink: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class DeadLetterSink(Protocol):
    """Destination of events that could not be used, with the reason."""

    name: str

    def write(self, payload: bytes, reason: str, source_id: str) -> None:
        """Store one bad event with the reason it was rejected."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable."""
        ...

    def close(self) -> None:
        """Release; safe to call twice."""
        ...

    def __enter__(self) -> DeadLetterSink: ...

    def __exit__(self, *exc: object) -> None: ...
