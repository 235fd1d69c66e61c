"""Values exported at scrape time from where they already live: sink stats and source lag.

:class:`ScrapeInputs` is held by :class:`~streamem.metrics.recorder.Metrics` to be told where
those values are (:meth:`ScrapeInputs.attach_sinks`, :meth:`ScrapeInputs.set_source_lag`);
the scrape-time collector of :mod:`streamem.metrics.exporter` reads them back, with the rest
of the scrape-time state, as one :class:`Scrape`, so keeping them current costs the daemon
loop nothing. Pure: no prometheus_client here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamem.metrics.catalogue import MAX_LAG_PARTITIONS
from streamem.sinks.base import SinkStats

__all__ = ["HasSinkStats", "Scrape", "ScrapeInputs"]

logger = logging.getLogger(__name__)


class HasSinkStats(Protocol):
    """What the sink collector reads: a configured ``name`` and live ``stats``."""

    name: str
    stats: SinkStats


@dataclass(frozen=True)
class Scrape:
    """Everything the scrape-time collector exports, copied out under the owner's lock.

    Attributes
    ----------
    ll_bounds
        Upper bounds of the finite ``streamem_log_likelihood`` buckets, shape (n_buckets,).
    ll_counts
        Events per bucket (not cumulative), the last one above every bound, shape
        (n_buckets + 1,).
    arrays
        Per-component values by metric name without ``streamem_``, each shape
        (n_components,).
    checkpoint_age
        Seconds since the last durable checkpoint.
    sinks_blocked_seconds
        Seconds a sink failure has held the checkpoint back (0.0 if none).
    sinks
        The sinks whose ``stats`` are exported.
    source_lag
        ``{partition: events behind}``.
    """

    ll_bounds: np.ndarray[Any, Any]
    ll_counts: np.ndarray[Any, Any]
    arrays: dict[str, np.ndarray[Any, Any]]
    checkpoint_age: float
    sinks_blocked_seconds: float
    sinks: list[HasSinkStats]
    source_lag: dict[int, int]


class ScrapeInputs:
    """The sinks and the source lag that ``Metrics`` exports at scrape time.

    Examples
    --------
    >>> s = ScrapeInputs(); s.set_source_lag({1: 2, 0: 40})
    >>> s.source_lag()
    {1: 2, 0: 40}
    """

    def __init__(self) -> None:
        self._sinks: list[HasSinkStats] = []
        self._lag: dict[int, int] = {}

    @property
    def sinks(self) -> list[HasSinkStats]:
        """The sinks attached by :meth:`attach_sinks`."""
        return self._sinks

    def attach_sinks(self, sinks: Iterable[HasSinkStats]) -> None:
        """Export the ``stats`` of these sinks at scrape time, labelled ``sink=<name>``.

        ``stats.delivered`` feeds ``streamem_sink_deliveries_total``, ``stats.failed``
        ``streamem_sink_failures_total`` and ``stats.spool_size`` ``streamem_sink_spool_size``.

        Parameters
        ----------
        sinks
            Objects with a configured ``name`` and a live :class:`SinkStats` ``stats``.

        Examples
        --------
        >>> class Stub:
        ...     name, stats = "file", SinkStats(delivered=3)
        >>> s = ScrapeInputs(); s.attach_sinks([Stub()])
        >>> [(x.name, x.stats.delivered) for x in s.sinks]
        [('file', 3)]
        """
        self._sinks = list(sinks)

    def set_source_lag(self, lag: Mapping[int, int]) -> None:
        """Store ``{partition: lag}`` measured by the daemon loop, exported at scrape time.

        ``KafkaSource.lag()`` queries the consumer, which is not thread-safe: call it on the
        loop thread (say, every status interval) and pass the result here; the HTTP thread
        only reads the stored copy. Beyond :data:`MAX_LAG_PARTITIONS` partitions, only the
        first ones are kept (logged).

        Parameters
        ----------
        lag
            Events behind per partition; partitions absent from it are no longer exported.

        Examples
        --------
        >>> s = ScrapeInputs(); s.set_source_lag({0: 40, 1: 2})
        >>> s.source_lag()[1]
        2
        """
        stored = {int(p): int(v) for p, v in lag.items()}
        if len(stored) > MAX_LAG_PARTITIONS:
            logger.warning("source lag: %d partitions, exporting the first %d",
                           len(stored), MAX_LAG_PARTITIONS)  # fmt: skip
            stored = dict(sorted(stored.items())[:MAX_LAG_PARTITIONS])
        self._lag = stored

    def source_lag(self) -> dict[int, int]:
        """``{partition: lag}`` to export now, as last stored by :meth:`set_source_lag`."""
        return self._lag
