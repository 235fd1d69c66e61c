"""The rebalance bridge: kafka-python's group callbacks to the daemon's rebalance listener.

kafka-python 3.x runs group callbacks on its IO thread, where blocking consumer calls raise.
The bridge is called while the thread that called ``KafkaSource.poll`` (or ``close``) is
blocked inside it, so the daemon's :class:`~streamem.sources.base.RebalanceListener` never
runs concurrently with the daemon loop:

- ``on_partitions_revoked`` comes first; a commit made from it (while :attr:`in_callback`)
  is sent asynchronously, handed to :meth:`RebalanceBridge.defer_commit`, and awaited here
  before the group re-joins;
- ``on_partitions_assigned`` returns ``{partition: next_offset}``, which the source seeks
  before any record is fetched; commits made while it runs (those of restored checkpoints)
  are sent asynchronously and awaited here too;
- an exception raised by the listener is kept and re-raised, unchanged, on the caller's
  thread by :meth:`RebalanceBridge.raise_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from streamem.kafka.client import AsyncConsumerRebalanceListener, TopicPartition
from streamem.sources.base import RebalanceListener
from streamem.sources.kafka.stats import SourceStats

__all__ = ["RebalanceBridge"]

# the Kafka source's logger (operators filter on "streamem.sources.kafka")
logger = logging.getLogger("streamem.sources.kafka")

_T = TypeVar("_T")


class RebalanceBridge(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Runs the daemon's listener from kafka-python's rebalance callbacks (module docstring).

    Parameters
    ----------
    name, topic
        The source's name (for logs) and topic (partitions of other topics are ignored).
    stats
        The source's counters (``rebalances`` counts assignments).
    forget
        Called with the revoked (or lost) partitions after the listener ran: drop their state.
    start
        Called with the assigned partitions and the listener's ``{partition: next_offset}``
        (while :attr:`in_callback`: a commit it makes is deferred and awaited).
    commit_failed
        Called with the error of a commit that was sent from the revoke callback and failed.
    """

    def __init__(self, name: str, topic: str, stats: SourceStats, *,
                 forget: Callable[[list[int]], None],
                 start: Callable[[list[int], dict[int, int]], None],
                 commit_failed: Callable[[BaseException], None]) -> None:
        self.name = name
        self.topic = topic
        self.stats = stats
        self.listener: RebalanceListener | None = None
        self.in_callback = False
        """True while the listener runs (on kafka-python's IO thread: no blocking calls)."""
        self._forget = forget
        self._start = start
        self._commit_failed = commit_failed
        self._commits: list[Any] = []
        self._error: BaseException | None = None

    def defer_commit(self, future: Any) -> None:
        """Await ``future`` (an asynchronous commit) before the revoke callback returns."""
        self._commits.append(future)

    def raise_error(self, cause: BaseException | None) -> None:
        """Re-raise the listener's exception, if it raised one, from ``cause``."""
        err, self._error = self._error, None
        if err is not None:
            raise err from cause

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for fut in self._revoked(revoked):
            try:
                await fut
            except Exception as exc:
                self._commit_failed(exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for fut in self._assigned(assigned):
            try:
                await fut
            except Exception as exc:
                self._commit_failed(exc)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        # membership lost (session expired): the partitions may already be elsewhere, so
        # committing is pointless; the listener still gets the chance to drop their state
        for fut in self._revoked(lost):
            try:
                await fut
            except Exception as exc:
                self._commit_failed(exc)

    def _revoked(self, tps: set[TopicPartition]) -> list[Any]:
        partitions = sorted(tp.partition for tp in tps if tp.topic == self.topic)
        logger.info("%s: partitions %s revoked", self.name, partitions)
        self._commits = []
        listener = self.listener
        if listener is not None and partitions:
            self._call(lambda: listener.on_partitions_revoked(partitions))
        self._forget(partitions)
        futures, self._commits = self._commits, []
        return futures

    def _assigned(self, tps: set[TopicPartition]) -> list[Any]:
        partitions = sorted(tp.partition for tp in tps if tp.topic == self.topic)
        self.stats.rebalances += 1
        self._commits = []
        offsets: dict[int, int] = {}
        listener = self.listener
        if listener is not None and partitions:
            result = self._call(lambda: listener.on_partitions_assigned(partitions))
            offsets = {int(p): int(o) for p, o in (result or {}).items()}
        self.in_callback = True  # the start may commit too (positions restored before)
        try:
            self._start(partitions, offsets)
        finally:
            self.in_callback = False
        futures, self._commits = self._commits, []
        return futures

    def _call(self, call: Callable[[], _T]) -> _T:
        self.in_callback = True
        try:
            return call()
        except BaseException as exc:
            self._error = exc  # re-raised from poll() on the caller's thread
            raise
        finally:
            self.in_callback = False
