"""Maintenance calendars: named windows during which alerts are muted (``mute``) or alerts
are muted and the model does not learn (``mute_and_freeze``).

An entry is one of three kinds:

* ``start`` / ``end``: ISO 8601 times (``2026-12-24T18:00:00+01:00``; a time without an
  offset is read in the entry's ``timezone``, default UTC);
* ``cron`` + ``duration``: a window of ``duration`` from every firing of a cron expression in
  local time of ``timezone`` (``"0 2 * * sun"`` + ``"2h"``), daylight-saving aware;
* ``ics``: every event of an iCalendar file, recurrence rules included.

Windows are half-open ``[start, end)`` in epoch seconds. :meth:`Calendars.mask` answers for a
whole batch of timestamps at once: each entry lists the windows overlapping the batch's span
and a sorted search places every timestamp.

Entry point for the ``calendars:`` config key: :func:`load_calendars`; the daemon reads
:meth:`Calendars.mute` (no alerts sent), :meth:`Calendars.freeze` (learn mask) and
:meth:`Calendars.active` (the active-entries metric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import ConfigError

__all__ = ["ACTIONS", "CalendarEntry", "Calendars", "load_calendars"]

Array = NDArray[np.float64]
ACTIONS = ("mute", "mute_and_freeze")


class _Windows(Protocol):
    def intervals(self, lo: float, hi: float) -> tuple[Array, Array]: ...


@dataclass(frozen=True)
class _Fixed:
    start: float
    end: float

    def intervals(self, lo: float, hi: float) -> tuple[Array, Array]:
        hit = self.start <= hi and self.end > lo
        return (np.array([self.start]), np.array([self.end])) if hit else (np.empty(0),) * 2


@dataclass(frozen=True)
class _Cron:
    expr: str
    duration: float
    tz: tzinfo

    def intervals(self, lo: float, hi: float) -> tuple[Array, Array]:
        from streamem.calendars._cron import cron_fires

        starts = cron_fires(self.expr, self.tz, lo - self.duration - 60.0, hi)
        starts = starts[starts + self.duration > lo]
        return starts, starts + self.duration


@dataclass(frozen=True)
class CalendarEntry:
    """One named calendar entry.

    Attributes
    ----------
    name
        Shown in metrics and logs.
    action
        ``"mute"`` or ``"mute_and_freeze"``.
    windows
        Its windows (fixed, cron or iCalendar).
    """

    name: str
    action: str
    windows: _Windows = field(repr=False)

    def mask(self, ts: Array) -> NDArray[np.bool_]:
        """Which timestamps fall in one of the entry's windows, shape (n_samples,).

        Examples
        --------
        >>> e = CalendarEntry("x", "mute", _Fixed(10.0, 20.0))
        >>> e.mask(np.array([5.0, 10.0, 19.9, 20.0])).tolist()
        [False, True, True, False]
        """
        finite = ts[np.isfinite(ts)]
        if finite.size == 0:
            return np.zeros(ts.shape, dtype=bool)
        starts, ends = self.windows.intervals(float(finite.min()), float(finite.max()))
        # inside = #windows started at or before t  -  #windows ended at or before t
        inside = (np.searchsorted(np.sort(starts), ts, side="right")
                  - np.searchsorted(np.sort(ends), ts, side="right"))
        return np.asarray((inside > 0) & np.isfinite(ts))


class Calendars:
    """A set of calendar entries, asked per batch of timestamps.

    Parameters
    ----------
    entries
        The entries (see :func:`load_calendars` for the config form).

    Examples
    --------
    >>> cal = load_calendars([{"name": "backup", "cron": "0 2 * * *", "duration": "1h",
    ...                        "action": "mute_and_freeze"}])
    >>> ts = np.array([1.5 * 3600, 3.5 * 3600])          # 01:30 and 03:30 UTC, 1 Jan 1970
    >>> cal.mute(ts).tolist(), cal.freeze(ts).tolist()
    ([False, False], [False, False])
    >>> cal.mute(ts + 3600).tolist(), [e.name for e in cal.active(2.5 * 3600)]
    ([True, False], ['backup'])
    """

    def __init__(self, entries: Sequence[CalendarEntry]) -> None:
        self.entries = list(entries)

    def mask(self, timestamps: ArrayLike) -> NDArray[np.bool_]:
        """Entry membership of every timestamp, shape (n_samples, n_entries).

        Timestamps are epoch seconds; NaN (unknown time) is in no window.
        """
        ts = np.asarray(timestamps, dtype=float).reshape(-1)
        out = np.zeros((ts.size, len(self.entries)), dtype=bool)
        for j, e in enumerate(self.entries):  # per entry, vectorised over the batch
            out[:, j] = e.mask(ts)
        return out

    def _by_action(self, timestamps: ArrayLike, actions: tuple[str, ...]) -> NDArray[np.bool_]:
        cols = [j for j, e in enumerate(self.entries) if e.action in actions]
        if not cols:
            return np.zeros(np.asarray(timestamps).reshape(-1).size, dtype=bool)
        sub = Calendars([self.entries[j] for j in cols])
        return np.asarray(sub.mask(timestamps).any(axis=1))

    def mute(self, timestamps: ArrayLike) -> NDArray[np.bool_]:
        """Events whose anomaly records are not sent (any active entry), shape (n,)."""
        return self._by_action(timestamps, ACTIONS)

    def freeze(self, timestamps: ArrayLike) -> NDArray[np.bool_]:
        """Events the model must not learn (an active ``mute_and_freeze``), shape (n,)."""
        return self._by_action(timestamps, ("mute_and_freeze",))

    def active(self, timestamp: float) -> list[CalendarEntry]:
        """The entries active at one time (for the metric of active entries)."""
        row = self.mask(np.array([timestamp]))[0]
        return [e for e, on in zip(self.entries, row, strict=True) if on]


def _zone(raw: Mapping[str, Any], where: str) -> tzinfo:
    name = raw.get("timezone", "UTC")
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}.timezone", f"{name!r} is not an IANA time zone; write "
                          "e.g. Europe/Berlin or UTC") from None


def _instant(value: Any, tz: tzinfo, where: str) -> float:
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(where, f"{value!r} is not an ISO 8601 time; write e.g. "
                          "2026-12-24T18:00:00+01:00") from None
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)).timestamp()


def _entry(raw: Any, where: str, base: Path) -> CalendarEntry:
    from streamem.config.durations import parse_duration  # config pulls in yaml: lazy

    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"{raw!r} is not a mapping; give name, action and one of "
                          "start/end, cron/duration or ics")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name", "every calendar entry needs a non-empty name")
    action = raw.get("action", "mute")
    if action not in ACTIONS:
        raise ConfigError(f"{where}.action", f"{action!r} is not one of {ACTIONS}")
    kinds = [k for k in ("start", "cron", "ics") if k in raw]
    if len(kinds) != 1:
        raise ConfigError(where, f"entry {name!r} has {kinds or 'none'} of start/cron/ics; "
                          "give exactly one (start with end, cron with duration, or ics)")
    tz = _zone(raw, where)
    windows: _Windows
    if kinds == ["start"]:
        if "end" not in raw:
            raise ConfigError(f"{where}.end", f"entry {name!r} has a start but no end")
        start = _instant(raw["start"], tz, f"{where}.start")
        end = _instant(raw["end"], tz, f"{where}.end")
        if not end > start:
            raise ConfigError(f"{where}.end", f"{raw['end']!r} is not after the start "
                              f"{raw['start']!r}")
        windows = _Fixed(start, end)
    elif kinds == ["cron"]:
        from streamem.calendars._cron import cron_is_valid

        if not cron_is_valid(str(raw["cron"])):
            raise ConfigError(f"{where}.cron", f"{raw['cron']!r} is not a cron expression; "
                              "write five fields, e.g. '0 2 * * sun'")
        if "duration" not in raw:
            raise ConfigError(f"{where}.duration", f"cron entry {name!r} needs a duration, "
                              "e.g. 2h")
        windows = _Cron(str(raw["cron"]), parse_duration(raw["duration"], f"{where}.duration"),
                        tz)
    else:
        from streamem.calendars._ics import read_ics

        path = Path(str(raw["ics"]))
        windows = read_ics(path if path.is_absolute() else base / path, tz, f"{where}.ics")
    return CalendarEntry(name, str(action), windows)


def load_calendars(config: Sequence[Any] | None, base_dir: str | Path = ".") -> Calendars:
    """The ``calendars:`` config list as :class:`Calendars`.

    Parameters
    ----------
    config
        A list of mappings (None: no entries).
    base_dir
        Directory that relative ``ics`` paths are read from (the config file's).

    Raises
    ------
    ConfigError
        A malformed entry; the message names ``calendars[i].key`` and the fix.

    Examples
    --------
    >>> load_calendars([{"name": "x", "cron": "0 2 * * *"}])
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: calendars[0].duration: cron entry 'x' needs a duration, e.g. 2h
    """
    if config is None:
        return Calendars([])
    if isinstance(config, (str, bytes, Mapping)) or not isinstance(config, Sequence):
        raise ConfigError("calendars", f"{config!r} is not a list of entries")
    return Calendars([_entry(raw, f"calendars[{i}]", Path(base_dir))
                      for i, raw in enumerate(config)])
