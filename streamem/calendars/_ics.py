"""Adapter: iCalendar files through ``icalendar`` (the only module that imports it), with
recurrence rules expanded by ``dateutil.rrule`` (a dependency of icalendar and croniter)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import icalendar
import numpy as np
from dateutil.rrule import rrulestr
from numpy.typing import NDArray

from streamem.errors import ConfigError

__all__ = ["IcsEvents", "read_ics"]

Array = NDArray[np.float64]


def _aware(value: Any, tz: tzinfo) -> datetime:
    """A DTSTART/DTEND value as an aware datetime (dates at local midnight, naive in ``tz``)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    raise TypeError(f"not a date or datetime: {value!r}")


@dataclass(frozen=True)
class IcsEvents:
    """The events of one file: single intervals and recurring ones, as epoch seconds."""

    starts: Array
    ends: Array
    rules: tuple[tuple[str, datetime, float], ...]  # (RRULE text, first start, duration s)

    def intervals(self, lo: float, hi: float) -> tuple[Array, Array]:
        """Start and end of every occurrence overlapping ``[lo, hi]``.

        Examples
        --------
        >>> ev = IcsEvents(np.array([0.0, 100.0]), np.array([10.0, 110.0]), ())
        >>> ev.intervals(5.0, 50.0)
        (array([0.]), array([10.]))
        """
        keep = (self.starts <= hi) & (self.ends > lo)
        s, e = [self.starts[keep]], [self.ends[keep]]
        for text, first, dur in self.rules:
            rule = rrulestr(text, dtstart=first)
            a = datetime.fromtimestamp(lo - dur, tz=timezone.utc).astimezone(first.tzinfo)
            b = datetime.fromtimestamp(hi, tz=timezone.utc).astimezone(first.tzinfo)
            occ = np.array([o.timestamp() for o in rule.between(a, b, inc=True)], dtype=float)
            occ = occ[occ + dur > lo]
            s.append(occ)
            e.append(occ + dur)
        return np.concatenate(s), np.concatenate(e)


def read_ics(path: Path, tz: tzinfo, where: str) -> IcsEvents:
    """Every VEVENT of an iCalendar file (DTSTART with DTEND or DURATION, optional RRULE).

    Raises
    ------
    ConfigError
        The file cannot be read or parsed, or an event has no start.
    """
    try:
        cal = icalendar.Calendar.from_ical(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(where, f"cannot read iCalendar file {str(path)!r} ({exc}); give "
                          "the path of a readable .ics file") from None
    starts, ends, rules = [], [], []
    for i, ev in enumerate(cal.walk("VEVENT")):
        try:
            start = _aware(ev.get("dtstart").dt, tz)
            if ev.get("dtend") is not None:
                end = _aware(ev.get("dtend").dt, tz)
            elif ev.get("duration") is not None:
                end = start + ev.get("duration").dt
            else:  # RFC 5545: a date lasts one day, a date-time no time at all
                end = start + (timedelta(days=1) if not isinstance(ev.get("dtstart").dt,
                                                                   datetime) else timedelta())
        except (AttributeError, TypeError) as exc:
            raise ConfigError(where, f"event {i} of {str(path)!r} has no usable DTSTART "
                              f"({exc}); every VEVENT needs one") from None
        dur = (end - start).total_seconds()
        if ev.get("rrule") is not None:
            rules.append((ev.get("rrule").to_ical().decode(), start, dur))
        else:
            starts.append(start.timestamp())
            ends.append(start.timestamp() + dur)
    return IcsEvents(np.array(starts, dtype=float), np.array(ends, dtype=float), tuple(rules))
