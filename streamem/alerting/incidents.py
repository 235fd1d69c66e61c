"""Incidents from anomalies, with hysteresis (pure: stdlib only).

Per key, an incident **opens** when an event's severity reaches ``open_severity``. While it
is open, every event at or above ``resolve_severity`` keeps it alive (and raises its
``max_severity`` and ``count``); events below that level do not. It **resolves** once no
event reached ``resolve_severity`` for ``cooldown_seconds``, either when a later event
shows it (:meth:`IncidentTracker.observe`) or on a clock tick
(:meth:`IncidentTracker.tick`, for keys that went quiet). The resolution time is the moment
the cool-down ran out, so it does not depend on how often the caller ticks.

The two levels keep an entity hovering around one threshold from flapping: it must exceed
the upper level to open and stay below the lower one to resolve.

Memory and cost are bounded whatever the keys: at most ``max_open`` incidents are open. When
an incident opens while ``max_open`` are, the least recently updated one (the longest without
an event at or above ``resolve_severity``) is **evicted**: it is returned as ``resolved``,
with ``ended_at`` at the time of the event that evicted it, so webhooks and Alertmanager get
a proper end, and it is counted (:attr:`IncidentTracker.evicted`, the metric
``streamem_incidents_evicted_total``) and logged, rate limited. A later event of that key
opens a new incident. Deadlines sit in a heap, so :meth:`IncidentTracker.tick` costs
``O(k log n)`` for ``k`` resolutions and nothing for the open incidents that are not due;
:meth:`IncidentTracker.observe` costs ``O(log n)`` at most.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.errors import ConfigError
from streamem.logs import RateLimitedLog

__all__ = ["DEFAULT_MAX_OPEN", "IncidentTracker"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_OPEN = 10_000
"""Default bound on open incidents (``alerting.max_open_incidents``)."""


@dataclass(eq=False)
class _Open:
    incident: Incident
    last_active: float


class IncidentTracker:
    """Turn per-key severities into incident transitions (firing, resolved).

    Parameters
    ----------
    open_severity
        Severity (0-100) at which an incident opens.
    resolve_severity
        Severity below which an event no longer keeps an incident open (at most
        ``open_severity``).
    cooldown_seconds
        How long severity must stay below ``resolve_severity`` before the incident resolves.
    max_open
        Most incidents open at once; opening one more evicts (resolves) the least recently
        updated (see the module docstring).

    Raises
    ------
    ConfigError
        If the levels are out of order, the cool-down is negative or ``max_open`` < 1.

    Examples
    --------
    >>> t = IncidentTracker(open_severity=75, resolve_severity=50, cooldown_seconds=10)
    >>> [i.status for i in t.observe("pump-1", 80.0, now=0.0)]
    ['firing']
    >>> t.observe("pump-1", 60.0, now=5.0)       # above the lower level: stays open
    []
    >>> t.observe("pump-1", 10.0, now=14.0)      # below, but only 9 s since the last 60
    []
    >>> [(i.status, i.ended_at, i.count, i.max_severity) for i in t.tick(now=15.0)]
    [('resolved', 15.0, 2, 80.0)]

    With room for one open incident, a second key evicts the first:

    >>> t = IncidentTracker(75, 50, cooldown_seconds=300, max_open=1)
    >>> _ = t.observe("a", 90.0, now=0.0)
    >>> [(i.key, i.status, i.ended_at) for i in t.observe("b", 90.0, now=7.0)]
    [('a', 'resolved', 7.0), ('b', 'firing', None)]
    >>> t.evicted
    1
    """

    def __init__(self, open_severity: float = 75.0, resolve_severity: float = 50.0,
                 cooldown_seconds: float = 300.0, max_open: int = DEFAULT_MAX_OPEN) -> None:
        if not 0.0 <= resolve_severity <= open_severity <= 100.0:
            raise ConfigError("alerting", f"need 0 <= resolve_severity ({resolve_severity}) "
                              f"<= open_severity ({open_severity}) <= 100; lower "
                              "resolve_severity or raise open_severity")
        if cooldown_seconds < 0:
            raise ConfigError("alerting.cooldown_seconds", f"{cooldown_seconds} is negative; "
                              "use 0 or more seconds, e.g. 300")
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise ConfigError("alerting.max_open_incidents", f"{max_open!r} is not an integer "
                              f">= 1; use e.g. {DEFAULT_MAX_OPEN}")
        self.open_severity = float(open_severity)
        self.resolve_severity = float(resolve_severity)
        self.cooldown_seconds = float(cooldown_seconds)
        self.max_open = max_open
        self.evicted = 0
        """Incidents resolved because ``max_open`` were open (cumulative)."""
        # least recently updated first: an update moves its key to the end
        self._open: OrderedDict[str | None, _Open] = OrderedDict()
        # (deadline when pushed, tie-breaker, key, state); a deadline only moves later, so an
        # entry is re-pushed when it comes due but its state was refreshed meanwhile, and
        # dropped when its state is no longer the key's open one
        self._due: list[tuple[float, int, str | None, _Open]] = []
        self._seq = itertools.count()
        self._warn = RateLimitedLog(logger, interval=60.0)

    def open_incidents(self) -> list[Incident]:
        """The incidents firing now, in the order they opened (``O(n log n)``: for reports).

        Returns
        -------
        list of Incident
            Current state (``count`` and ``max_severity`` up to date).

        Examples
        --------
        >>> t = IncidentTracker()
        >>> _ = t.observe("a", 99.0, now=1.0)
        >>> [i.key for i in t.open_incidents()]
        ['a']
        """
        return sorted((state.incident for state in self._open.values()),
                      key=lambda i: i.started_at)

    def _expired(self, state: _Open, now: float) -> bool:
        return now - state.last_active >= self.cooldown_seconds

    def _resolve(self, key: str | None) -> Incident:
        state = self._open.pop(key)
        return replace(state.incident, status="resolved",
                       ended_at=state.last_active + self.cooldown_seconds)

    def _push(self, key: str | None, state: _Open) -> None:
        heapq.heappush(self._due, (state.last_active + self.cooldown_seconds, next(self._seq),
                                   key, state))
        if len(self._due) > 2 * len(self._open) + 1024:  # drop the stale entries: O(1) amortised
            self._due = [(s.last_active + self.cooldown_seconds, next(self._seq), k, s)
                         for k, s in self._open.items()]
            heapq.heapify(self._due)

    def _evict(self, now: float) -> Incident:
        _, state = self._open.popitem(last=False)
        self.evicted += 1
        self._warn.warning("evicted", "%d incidents open (alerting.max_open_incidents): "
                           "resolved the least recently updated one, %s, early; %d evicted "
                           "so far", self.max_open, state.incident.id, self.evicted)
        ended = min(max(now, state.incident.started_at),
                    state.last_active + self.cooldown_seconds)
        return replace(state.incident, status="resolved", ended_at=ended)

    def observe(self, key: str | None, severity: float, now: float,
                record: AnomalyRecord | None = None) -> list[Incident]:
        """Account one event of ``key``; return the transitions it causes.

        Parameters
        ----------
        key
            Entity key (``None`` for a stream without keys).
        severity
            The event's severity, 0-100.
        now
            Event time or wall time in seconds (the same clock for every call).
        record
            The anomaly, kept as the incident's ``last`` when it keeps the incident alive.

        Returns
        -------
        list of Incident
            Empty, ``[firing]``, ``[resolved]``, or ``[resolved, firing]`` when the old
            incident's cool-down ran out before this event opened a new one.

        Examples
        --------
        >>> t = IncidentTracker(75, 50, cooldown_seconds=10)
        >>> [i.status for i in t.observe("k", 90.0, now=0.0)]
        ['firing']
        >>> [(i.status, i.ended_at) for i in t.observe("k", 95.0, now=30.0)]
        [('resolved', 10.0), ('firing', None)]
        """
        transitions: list[Incident] = []
        state = self._open.get(key)
        active = severity >= self.resolve_severity
        # an event that keeps the incident alive, arriving just as the cool-down runs out,
        # still counts (so a zero cool-down resolves only on a quiet event)
        if state is not None and (now - state.last_active > self.cooldown_seconds
                                  or (not active and self._expired(state, now))):
            transitions.append(self._resolve(key))
            state = None
        if state is None:
            if severity >= self.open_severity:
                if len(self._open) >= self.max_open:
                    transitions.append(self._evict(now))
                ident = f"{key if key is not None else '*'}:{round(now * 1000)}"
                incident = Incident(id=ident, key=key, status="firing", started_at=now,
                                    ended_at=None, max_severity=float(severity), last=record)
                state = self._open[key] = _Open(incident, now)
                self._push(key, state)
                transitions.append(incident)
        elif active:
            old = state.incident
            state.incident = replace(old, max_severity=max(old.max_severity, float(severity)),
                                     count=old.count + 1,
                                     last=record if record is not None else old.last)
            state.last_active = max(state.last_active, now)
            self._open.move_to_end(key)
        return transitions

    def tick(self, now: float) -> list[Incident]:
        """Resolve every incident whose cool-down ran out by ``now``.

        Parameters
        ----------
        now
            Current time on the clock of :meth:`observe`.

        Returns
        -------
        list of Incident
            The resolutions, oldest incident first. Costs nothing for the open incidents that
            are not due.

        Examples
        --------
        >>> t = IncidentTracker(75, 50, cooldown_seconds=10)
        >>> _ = t.observe("k", 80.0, now=0.0)
        >>> t.tick(now=9.0)
        []
        >>> [i.status for i in t.tick(now=10.0)]
        ['resolved']
        """
        due = self._due
        out: list[Incident] = []
        while due and due[0][0] <= now:
            _, _, key, state = heapq.heappop(due)
            if self._open.get(key) is not state:
                continue  # resolved or evicted meanwhile
            if self._expired(state, now):
                out.append(self._resolve(key))
            else:  # refreshed since it was pushed: wait for its new deadline
                self._push(key, state)
        out.sort(key=lambda i: i.started_at)
        return out
