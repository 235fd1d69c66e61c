"""The rebalance listener: lanes follow the partitions a Kafka consumer group assigns.

``model.scope: partition``: a gained partition's lane is restored from the store (its
positions are where the source seeks); a revoked partition's lane is checkpointed, then
dropped with its buffered, unprocessed events (the new owner reads them again).
``global``: the one lane is checkpointed on revocation, the buffered events of the revoked
partitions are dropped, and gained partitions resume at the lane's positions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from streamem.runtime.chunking import Chunker
from streamem.runtime.lane import Lane, Lanes, lane_key

__all__ = ["LaneRebalancer"]

logger = logging.getLogger(__name__)


class LaneRebalancer:
    """A :class:`~streamem.sources.base.RebalanceListener` over the daemon's lanes.

    Parameters
    ----------
    lanes
        The live lanes (restored on assignment, dropped on revocation).
    checkpoint
        Checkpoints the given lanes (flush, save, commit).
    chunker
        The lanes' event buffers, if the pipeline is chunked.

    Examples
    --------
    >>> from streamem.scoring.detector import Detector
    >>> lanes = Lanes("partition", lambda key: Lane(key, Detector(warmup=20), {3: 40}))
    >>> saved = []
    >>> rb = LaneRebalancer(lanes, saved.extend)
    >>> rb.on_partitions_assigned([3, 4]), list(lanes)
    ({3: 40}, ['p3', 'p4'])
    >>> rb.on_partitions_revoked([3]); [ln.key for ln in saved], list(lanes)
    (['p3'], ['p4'])
    """

    def __init__(self, lanes: Lanes, checkpoint: Callable[[list[Lane]], None],
                 chunker: Chunker | None = None) -> None:
        self.lanes = lanes
        self._checkpoint = checkpoint
        self._chunker = chunker

    def on_partitions_revoked(self, partitions: Sequence[int]) -> None:
        """Checkpoint the lanes of ``partitions``, then let their buffered events go."""
        scope = self.lanes.scope
        if scope != "global":  # partition and key scope: one lane per partition
            keys = [lane_key(scope, p) for p in partitions]
            self._checkpoint([ln for k in keys if (ln := self.lanes.get(k)) is not None])
            for k in keys:
                self.lanes.pop(k)
                if self._chunker is not None:
                    self._chunker.drop(k)
            return
        lane = self.lanes.get("global")
        if lane is None:
            return
        self._checkpoint([lane])
        if self._chunker is not None:
            self._chunker.drop(lane.key, partitions)

    def on_partitions_assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
        """Restore the lanes of ``partitions``; return where each partition resumes."""
        out: dict[int, int] = {}
        for p in partitions:
            lane = self.lanes.lane_for(p)
            if p in lane.positions:
                out[p] = lane.positions[p]
        logger.info("partitions %s assigned; resuming at %s (others: committed offset "
                    "or source.auto_offset_reset)", list(partitions), out)
        return out
