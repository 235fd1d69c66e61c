"""The ``CheckpointStore`` protocol and the :class:`Snapshot` it stores.

A snapshot holds the whole detector state (plain arrays and scalars, never pickle), the input
positions that state reflects, and counters. ``key`` separates independent states: ``"global"``
for one model, ``"p<N>"`` for the model of input partition N (``model.scope: partition``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["SCHEMA_VERSION", "CheckpointStore", "Snapshot", "SnapshotCheck"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """One durable checkpoint.

    Parameters
    ----------
    key
        Which state this is (``"global"`` or ``"p3"``).
    sequence
        Monotonic checkpoint number per key (the "checkpoint id").
    created_at
        Unix time of the write.
    detector
        ``Detector.to_state()``: nested dicts of numpy arrays, ints, floats, strings.
    positions
        ``{partition: next_offset}`` that the detector state reflects.
    counters
        Event counters (``events_learned``, ``events_anomalous``, ``events_rejected``...).
    parsing
        State of the line parsing that the positions reflect (the template miner's, as
        plain JSON values); empty for JSON and CSV input.
    feedback
        The operator verdicts this state has learned or still has to
        (:meth:`streamem.runtime.feedback.FeedbackLoop.lane_state`); empty without any.
    schema_version
        Format version; loaders refuse versions they do not know.

    Examples
    --------
    >>> Snapshot(key="global", sequence=1, created_at=0.0, detector={}, positions={0: 10}).key
    'global'
    """

    key: str
    sequence: int
    created_at: float
    detector: dict[str, Any]
    positions: dict[int, int]
    counters: dict[str, int] = field(default_factory=dict)
    parsing: dict[str, Any] = field(default_factory=dict)
    feedback: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


SnapshotCheck = Callable[[Snapshot], object]
"""The caller's test that a decoded snapshot is usable: it raises
:class:`~streamem.errors.StateError` to reject one (say, a detector state that misses a key),
and the store falls back to the previous snapshot as for a corrupt one."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Durable, versioned snapshots. Implementations are context managers."""

    def save(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` durably; when this returns the snapshot survives kill -9."""
        ...

    def load_latest(self, key: str = "global",
                    check: SnapshotCheck | None = None) -> Snapshot | None:
        """Newest *valid* snapshot for ``key``, or None when it has none.

        Corrupt ones, and those ``check`` rejects, are skipped with a warning naming them;
        a snapshot of a newer schema version raises
        :class:`~streamem.state.codec.UnknownSchemaVersionError` (upgrade, do not roll back);
        snapshots that exist but none of which is usable raise
        :class:`~streamem.errors.StateError`.
        """
        ...

    def keys(self) -> list[str]:
        """Keys that have at least one snapshot."""
        ...

    def close(self) -> None:
        """Release; safe to call twice."""
        ...

    def __enter__(self) -> CheckpointStore: ...

    def __exit__(self, *exc: object) -> None: ...
