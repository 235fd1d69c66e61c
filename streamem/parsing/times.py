"""Timestamps of text logs to seconds since the epoch (pure stdlib).

One converter per time format that the log presets meet: nginx/Apache access logs
(``02/Jan/2026:10:00:00 +0000``), BSD syslog (``Jan  2 10:00:00``, no year, no zone), the
Apache error log (``Fri Jan 02 10:00:00.123456 2026``) and ISO 8601 / RFC 3339 (RFC 5424
syslog, logfmt). Logs repeat the same second on many lines, so each converter keeps a small
bounded cache of the strings it has seen; a miss costs one ``calendar.timegm``.

Times without a zone are read as UTC. A BSD syslog time has no year: it gets the current
year, or the previous one when that would put it more than a month in the future (as rsyslog
does).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["TIME_TYPES", "bsd_time", "clf_time", "ctime_time", "iso_time"]

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_CACHE_MAX = 4096


def _cached(parse: Callable[[str], float]) -> Callable[[str], float]:
    cache: dict[str, float] = {}

    def convert(s: str) -> float:
        t = cache.get(s)
        if t is None:
            t = parse(s)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[s] = t
        return t

    convert.__name__ = parse.__name__.lstrip("_")
    convert.__doc__ = parse.__doc__
    return convert


def _clf_time(s: str) -> float:
    """``02/Jan/2026:10:00:00 +0000`` (nginx ``$time_local``, Apache ``%t``) to epoch seconds.

    Examples
    --------
    >>> clf_time("02/Jan/2026:10:00:00 +0100")
    1767344400.0
    """
    if len(s) != 26 or s[2] != "/" or s[6] != "/" or s[11] != ":" or s[20] != " ":
        raise ValueError(f"{s[:40]!r} is not a dd/Mon/yyyy:hh:mm:ss +zzzz time")
    off = (int(s[22:24]) * 60 + int(s[24:26])) * 60
    sign = -1 if s[21] == "-" else 1
    t = calendar.timegm((int(s[7:11]), _MONTHS[s[3:6]], int(s[0:2]),
                         int(s[12:14]), int(s[15:17]), int(s[18:20])))
    return float(t - sign * off)


def _bsd_time(s: str) -> float:
    """``Jan  2 10:00:00`` (RFC 3164 syslog) to epoch seconds, or an ISO time (rsyslog's
    high-precision format) via :func:`iso_time`.

    Examples
    --------
    >>> import time
    >>> t = bsd_time("Jan  2 10:00:00")
    >>> time.gmtime(t)[1:6]
    (1, 2, 10, 0, 0)
    """
    if s[:1].isdigit():
        return iso_time(s)
    parts = s.split()
    if len(parts) != 3:
        raise ValueError(f"{s[:40]!r} is not a Mon dd hh:mm:ss time")
    hh, mm, ss = parts[2].split(":")
    now = time.time()
    year = time.gmtime(now).tm_year
    fields = (_MONTHS[parts[0]], int(parts[1]), int(hh), int(mm), int(ss))
    t = calendar.timegm((year, *fields))
    if t > now + 31 * 86400:  # December's lines read in January
        t = calendar.timegm((year - 1, *fields))
    return float(t)


def _ctime_time(s: str) -> float:
    """``Fri Jan 02 10:00:00[.ffffff] 2026`` (the Apache error log) to epoch seconds.

    Examples
    --------
    >>> ctime_time("Sun Dec 04 04:47:44 2005"), ctime_time("Fri Sep 09 10:42:29.902022 2011")
    (1133671664.0, 1315564949.902022)
    """
    parts = s.split()
    if len(parts) != 5:
        raise ValueError(f"{s[:40]!r} is not a Www Mon dd hh:mm:ss yyyy time")
    hms, _, frac = parts[3].partition(".")
    hh, mm, ss = hms.split(":")
    t = calendar.timegm((int(parts[4]), _MONTHS[parts[1]], int(parts[2]),
                         int(hh), int(mm), int(ss)))
    return t + (float("0." + frac) if frac else 0.0)


def _iso_time(s: str) -> float:
    """ISO 8601 / RFC 3339 (``2026-01-02T10:00:00.5Z``) to epoch seconds (no zone: UTC).

    Examples
    --------
    >>> iso_time("2026-01-02T10:00:00.5Z"), iso_time("2026-01-02T11:00:00+01:00")
    (1767348000.5, 1767348000.0)
    """
    dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


clf_time = _cached(_clf_time)
bsd_time = _cached(_bsd_time)
ctime_time = _cached(_ctime_time)
iso_time = _cached(_iso_time)

#: ``source.types`` names of the time converters
TIME_TYPES: dict[str, Callable[[str], float]] = {
    "clf_time": clf_time, "syslog_time": bsd_time, "ctime": ctime_time, "iso_time": iso_time,
}
