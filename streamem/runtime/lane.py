"""A lane: one independent model state (``"global"``, or ``"p3"`` for input partition 3).

A lane is made of small parts, each written by one owner:

* ``detector``: the model, learned by the pipeline;
* :class:`Progress` (``progress``): positions, counters and the number of batches
  processed, advanced by the pipeline (:meth:`Progress.advance`);
* :class:`Saved` (``saved``): the checkpoint sequence and the batches the last checkpoint
  covers, written by the checkpointer (:meth:`Saved.mark`);
* ``reported``: the cumulative counts already turned into metric increments, written by the
  health mapping (:func:`streamem.metrics.health.report_lane`).

The events a lane holds between polls belong to the :class:`~streamem.runtime.chunking.Chunker`,
not to the lane. :class:`Lanes` is the table of live lanes, restoring a lane the first time a
partition of it is seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from streamem.errors import StateError
from streamem.runtime.scorer import DetectorScorer, Scorer
from streamem.scoring.detector import Detector

__all__ = ["Lane", "Lanes", "Progress", "Saved", "lane_key"]


def lane_key(scope: str, partition: int) -> str:
    """The lane of ``partition`` under ``model.scope``.

    Examples
    --------
    >>> lane_key("global", 3), lane_key("partition", 3)
    ('global', 'p3')
    """
    return "global" if scope == "global" else f"p{partition}"


@dataclass
class Progress:
    """How far a lane's model got: ``{partition: next offset}``, event counters, and how many
    batches it processed (written by the pipeline only)."""

    positions: dict[int, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def advance(self, positions: Mapping[int, int], counts: Mapping[str, int]) -> None:
        """Record one processed batch: its last positions and its counts.

        Examples
        --------
        >>> p = Progress()
        >>> p.advance({0: 9}, {"events_seen": 3, "events_rejected": 0})
        >>> p.positions, p.counters, p.batches
        ({0: 9}, {'events_seen': 3}, 1)
        """
        self.positions.update(positions)
        c = self.counters
        for name, n in counts.items():
            if n:
                c[name] = c.get(name, 0) + n
        self.batches += 1


@dataclass
class Saved:
    """What the newest checkpoint of a lane covers (written by the checkpointer only)."""

    sequence: int = 0
    batches: int = 0

    def mark(self, sequence: int, batches: int) -> None:
        """Checkpoint ``sequence`` holds the state after ``batches`` batches."""
        self.sequence, self.batches = sequence, batches


class Lane:
    """One model state and the parts around it (see the module docstring).

    Parameters
    ----------
    key
        ``"global"`` or ``"p<partition>"``.
    detector
        The model (scope global and partition).
    positions, counters
        Where the model's input stands and its counters (from a checkpoint, or empty).
    sequence
        The sequence of the checkpoint it was restored from (0 for a new model).
    scorer
        What the lane scores with (:mod:`streamem.runtime.scorer`); by default the
        ``detector``.

    Examples
    --------
    >>> lane = Lane("p0", Detector(warmup=20), {0: 10}, sequence=3)
    >>> lane.dirty, lane.sequence
    (False, 3)
    >>> lane.progress.advance({0: 12}, {"events_seen": 2}); lane.dirty, lane.positions
    (True, {0: 12})
    """

    __slots__ = ("key", "progress", "reported", "saved", "scorer")

    def __init__(self, key: str, detector: Detector | None = None,
                 positions: Mapping[int, int] | None = None,
                 counters: Mapping[str, int] | None = None, sequence: int = 0, *,
                 scorer: Scorer | None = None) -> None:
        self.key = key
        if scorer is None:
            if detector is None:
                raise TypeError("Lane needs a detector or a scorer")
            scorer = DetectorScorer(detector)
        self.scorer: Scorer = scorer
        self.progress = Progress(dict(positions or {}), dict(counters or {}))
        self.saved = Saved(sequence)
        self.reported: dict[str, float] = {}

    @property
    def detector(self) -> Detector:
        """The lane's :class:`Detector` (scope global and partition; a keyed lane has none)."""
        if not isinstance(self.scorer, DetectorScorer):
            raise StateError(f"state {self.key!r} is keyed (model.scope: key): it holds one "
                             "model per key, not one Detector; use lane.scorer")
        return self.scorer.detector

    @property
    def sequence(self) -> int:
        """The sequence of the newest checkpoint of this lane."""
        return self.saved.sequence

    @property
    def dirty(self) -> bool:
        """True when the model learned since its newest checkpoint."""
        return self.progress.batches != self.saved.batches

    @property
    def positions(self) -> dict[int, int]:
        """``{partition: next offset}`` after the last processed event."""
        return self.progress.positions

    @property
    def counters(self) -> dict[str, int]:
        """Event counters (``events_seen``, ``events_learned``, ...)."""
        return self.progress.counters


class Lanes:
    """The live lanes by key; a lane is restored (or created) the first time it is asked for.

    Parameters
    ----------
    scope
        ``model.scope``: ``"global"`` (one lane) or ``"partition"`` (one per partition).
    restore
        Builds the lane of a key (from its newest checkpoint, or a fresh model).

    Examples
    --------
    >>> lanes = Lanes("partition", lambda key: Lane(key, Detector(warmup=20)))
    >>> lanes.lane_for(2).key, list(lanes), lanes.get("p1"), lanes.pop("p2").key, len(lanes)
    ('p2', ['p2'], None, 'p2', 0)
    """

    def __init__(self, scope: str, restore: Callable[[str], Lane]) -> None:
        self.scope = scope
        self._restore = restore
        self._lanes: dict[str, Lane] = {}

    def lane_for(self, partition: int) -> Lane:
        """The lane that owns ``partition`` (restored on first use)."""
        key = lane_key(self.scope, partition)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = self._restore(key)
        return lane

    def get(self, key: str) -> Lane | None:
        """The live lane ``key``, or None."""
        return self._lanes.get(key)

    def pop(self, key: str) -> Lane | None:
        """Drop lane ``key`` (its partitions were revoked); returns it, or None."""
        return self._lanes.pop(key, None)

    def values(self) -> list[Lane]:
        """The live lanes, in the order they were first used."""
        return list(self._lanes.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._lanes))

    def __len__(self) -> int:
        return len(self._lanes)

    def __getitem__(self, key: str) -> Lane:
        return self._lanes[key]
