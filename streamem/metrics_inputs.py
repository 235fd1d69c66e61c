"""Values exported at scrape time from where they already live: sink stats and source lag.

:class:`ScrapeInputs` is what :class:`~streamem.metrics.Metrics` inherits to be told where
those values are (:meth:`ScrapeInputs.attach_sinks`, :meth:`ScrapeInputs.set_source_lag`,
:meth:`ScrapeInputs.set_lag_provider`); its scrape-time collector reads them back
(:attr:`ScrapeInputs.sinks`, :meth:`ScrapeInputs.source_lag`), so keeping them current costs
the daemon loop nothing. Pure: no prometheus_client here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
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
        self._lag_provider: Callable[[], Mapping[int, int]] | None = None
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

        The safe choice for sources that are not thread-safe: ``KafkaSource.lag()`` queries
        the consumer, so call it on the loop thread (say, every status interval) and pass
        the result here rather than handing it to :meth:`set_lag_provider`.

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
        self._lag = {int(p): int(v) for p, v in lag.items()}

    def set_lag_provider(self, provider: Callable[[], Mapping[int, int]] | None) -> None:
        """Call ``provider()`` at each scrape for ``{partition: lag}``.

        It runs on the HTTP thread: it must be thread-safe and must not block (read cached
        values; a Kafka consumer is not thread-safe, see :meth:`set_source_lag`). Errors it
        raises are logged and the scrape goes on without lag samples. While a provider is
        set, values from :meth:`set_source_lag` are not used.

        Parameters
        ----------
        provider
            Returns events behind per partition; None stops exporting lag.

        Examples
        --------
        >>> from streamem.metrics import Metrics
        >>> m = Metrics(); m.set_lag_provider(lambda: {0: 12})
        >>> m.value("streamem_source_lag_events", partition="0")
        12.0
        """
        self._lag_provider = provider

    def source_lag(self) -> dict[int, int]:
        """``{partition: lag}`` to export now: the provider's (when set), else the stored one.

        A failing provider is logged and gives ``{}``; beyond :data:`MAX_LAG_PARTITIONS`
        partitions, only the first ones are kept (logged).
        """
        provider = self._lag_provider
        if provider is None:
            return self._lag
        try:
            lag = {int(p): int(v) for p, v in provider().items()}
        except Exception as exc:  # a scrape must never fail because the source is unhappy
            logger.warning("source lag unavailable for /metrics: %r", exc)
            return {}
        if len(lag) > MAX_LAG_PARTITIONS:
            logger.warning("source lag: %d partitions, exporting the first %d",
                           len(lag), MAX_LAG_PARTITIONS)  # fmt: skip
            lag = dict(sorted(lag.items())[:MAX_LAG_PARTITIONS])
        return lag
