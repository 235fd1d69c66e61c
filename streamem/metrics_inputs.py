"""Values exported at scrape time from where they already live: sink stats and source lag.

:class:`ScrapeInputs` is what :class:`~streamem.metrics.Metrics` inherits to be told where
those values are (:meth:`ScrapeInputs.attach_sinks`, :meth:`ScrapeInputs.set_source_lag`);
its scrape-time collector reads them back (:attr:`ScrapeInputs.sinks`,
:meth:`ScrapeInputs.source_lag`), so keeping them current costs the daemon loop nothing.
Pure: no prometheus_client here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from streamem.metrics_catalog import MAX_LAG_PARTITIONS
from streamem.sinks.base import SinkStats

__all__ = ["HasSinkStats", "ScrapeInputs"]

# the metrics logger: messages keep the name they had before the module was split
logger = logging.getLogger("streamem.metrics")


class HasSinkStats(Protocol):
    """What the sink collector reads: a configured ``name`` and live ``stats``."""

    name: str
    stats: SinkStats


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
        >>> from streamem.metrics import Metrics
        >>> m = Metrics(); m.attach_sinks([Stub()])
        >>> m.value("streamem_sink_deliveries_total", sink="file")
        3.0
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
        >>> from streamem.metrics import Metrics
        >>> m = Metrics(); m.set_source_lag({0: 40, 1: 2})
        >>> m.value("streamem_source_lag_events", partition="1")
        2.0
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
