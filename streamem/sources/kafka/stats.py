"""What the Kafka source counts, and how it rides out a broker outage.

:class:`SourceStats` holds the source's plain counters (the metrics collector reads them).
:class:`Outages` tracks broker reachability: it counts disconnects and reconnects, logs
(rate-limited) while no broker answers, and raises :class:`~streamem.errors.SourceError` once
the outage has lasted ``unavailable_timeout`` seconds. Pure: it never touches kafka-python;
the source feeds it the consumer's connection count or the error it got.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from streamem.errors import SourceError
from streamem.logs import RateLimitedLog

__all__ = ["Outages", "SourceStats"]

# the Kafka source's logger (operators filter on "streamem.sources.kafka")
logger = logging.getLogger("streamem.sources.kafka")


@dataclass
class SourceStats:
    """Counters of one Kafka source (mutable, read by the metrics collector).

    ``events``: records returned; ``rebalances``: assignments received; ``disconnects`` and
    ``reconnects``: lost and regained broker connections; ``missing_topic``: polls that found
    the topic absent; ``commits``/``commit_failures``: offset commits; ``errors``: every error
    handled without raising (each is logged).

    Examples
    --------
    >>> s = SourceStats(); s.reconnects += 1; s.reconnects
    1
    """

    events: int = 0
    rebalances: int = 0
    disconnects: int = 0
    reconnects: int = 0
    missing_topic: int = 0
    commits: int = 0
    commit_failures: int = 0
    errors: int = 0


class Outages:
    """Broker reachability of one source: counts, rate-limited warnings, the give-up timeout.

    Parameters
    ----------
    name
        The source's name, used in messages.
    servers
        Bootstrap servers, named in messages.
    unavailable_timeout
        Seconds without a reachable broker after which :meth:`unreachable` raises.
    stats
        The source's counters (``disconnects``, ``reconnects``, ``errors`` are updated).
    warn
        The source's rate-limited log (key ``outage``).

    Examples
    --------
    >>> stats = SourceStats()
    >>> o = Outages("kafka", ["b:9092"], 300.0, stats, RateLimitedLog(logger))
    >>> o.unreachable(None); o.down_since is not None, stats.disconnects
    (True, 1)
    >>> o.reachable(); o.down_since, stats.reconnects
    (None, 1)
    >>> Outages("kafka", ["b:9092"], -1.0, SourceStats(), RateLimitedLog(logger)).unreachable(None)
    Traceback (most recent call last):
    ...
    streamem.errors.SourceError: kafka: no Kafka broker reachable at b:9092 for 0 s; check ...
    """

    def __init__(self, name: str, servers: list[str], unavailable_timeout: float,
                 stats: SourceStats, warn: RateLimitedLog) -> None:
        self.name = name
        self.servers = servers
        self.unavailable_timeout = unavailable_timeout
        self.stats = stats
        self.down_since: float | None = None
        self._warn = warn

    def observe(self, connection_count: int | None, may_raise: bool) -> None:
        """Account for the consumer's ``connection-count`` metric (None: not reported)."""
        if connection_count is None:
            return
        if connection_count > 0:
            self.reachable()
        else:
            self.unreachable(None, may_raise)

    def reachable(self) -> None:
        """A broker answers: end the outage, if any (counted as a reconnect and logged)."""
        if self.down_since is not None:
            self.stats.reconnects += 1
            logger.warning("%s: broker reachable again after %.1f s", self.name,
                           time.monotonic() - self.down_since)
        self.down_since = None

    def unreachable(self, exc: BaseException | None, may_raise: bool = True) -> None:
        """No broker answers (``exc``: why, when known): start or extend the outage.

        Raises
        ------
        SourceError
            When ``may_raise`` and the outage has lasted over ``unavailable_timeout`` seconds.
        """
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self.stats.disconnects += 1
        if exc is not None:
            self.stats.errors += 1
        down = now - self.down_since
        self._warn.warning("outage", "%s: no Kafka broker reachable at %s for %.1f s (%s); "
                           "retrying", self.name, ",".join(self.servers),
                           down, exc or "all connections closed")
        if may_raise and down > self.unavailable_timeout:
            raise SourceError(
                f"{self.name}: no Kafka broker reachable at "
                f"{','.join(self.servers)} for {down:.0f} s; check "
                "source.bootstrap_servers, the credentials (a rejected SASL login looks like an "
                "unreachable broker to kafka-python) and that the brokers are up") from exc
