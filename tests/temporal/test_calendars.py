"""Calendars of all three kinds (fixed ISO 8601, cron + duration, iCalendar with RRULE),
vectorised over a batch, across a daylight-saving change; config errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import numpy as np
import pytest

from streamem.calendars import load_calendars
from streamem.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")


def epoch(*args: int, tz: object = timezone.utc) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc, arg-type]


def test_fixed_window_iso_8601_with_offset_and_with_a_local_zone() -> None:
    cal = load_calendars([
        {"name": "xmas", "start": "2026-12-24T18:00:00+01:00", "end": "2026-12-24T20:00+01:00"},
        {"name": "local", "start": "2026-12-25T08:00", "end": "2026-12-25T09:00",
         "timezone": "Europe/Berlin", "action": "mute_and_freeze"},
    ])
    ts = np.array([epoch(2026, 12, 24, 16, 59), epoch(2026, 12, 24, 17), epoch(2026, 12, 24, 19),
                   epoch(2026, 12, 25, 7, 30), epoch(2026, 12, 25, 8, 0), np.nan])
    m = cal.mask(ts)
    assert m[:, 0].tolist() == [False, True, False, False, False, False]  # end is exclusive
    assert m[:, 1].tolist() == [False, False, False, True, False, False]  # 08:00 CET = 07:00Z
    assert cal.mute(ts).tolist() == [False, True, False, True, False, False]
    assert cal.freeze(ts).tolist() == [False, False, False, True, False, False]


def test_cron_window_follows_local_time_across_the_spring_dst_change() -> None:
    # Berlin leaves CET for CEST on Sunday 29 March 2026 at 02:00 local
    cal = load_calendars([{"name": "morning", "cron": "0 9 * * *", "duration": "1h",
                           "timezone": "Europe/Berlin"}])
    ts = np.arange(epoch(2026, 3, 27), epoch(2026, 3, 31), 60.0)  # every minute, 4 days
    on = ts[cal.mute(ts)]
    local = [datetime.fromtimestamp(t, BERLIN) for t in on]
    assert {(d.hour, d.minute // 60) for d in local} == {(9, 0)}  # always 09:xx local
    assert len(on) == 4 * 60
    utc_hours = sorted({datetime.fromtimestamp(t, timezone.utc).hour for t in on})
    assert utc_hours == [7, 8]  # 08:00Z before the change, 07:00Z after
    # the nonexistent 02:30 of 29 March fires at 03:00 CEST (croniter's rule), once a day
    gap = load_calendars([{"name": "n", "cron": "30 2 * * *", "duration": "10m",
                           "timezone": "Europe/Berlin"}])
    hits = ts[gap.mute(ts)]
    starts = hits[np.diff(np.concatenate([[-np.inf], hits])) > 60]
    assert [datetime.fromtimestamp(t, BERLIN).strftime("%d %H:%M") for t in starts] == [
        "27 02:30", "28 02:30", "29 03:00", "30 02:30"]


def test_cron_batch_mask_equals_a_per_event_reference() -> None:
    cal = load_calendars([{"name": "w", "cron": "*/7 * * * *", "duration": "150s"}])
    rng = np.random.default_rng(0)
    ts = np.sort(rng.uniform(0, 86400.0, 3000))
    got = cal.mask(ts)[:, 0]
    # reference: last firing at or before t (minutes divisible by 7 of each hour)
    minute = np.floor(ts / 60.0)
    mins = minute % 60
    last = (minute - mins % 7) * 60.0
    ref = ts - last < 150.0
    np.testing.assert_array_equal(got, ref)


def write_ics(path: Path) -> None:
    cal = icalendar.Calendar()
    single = icalendar.Event()
    single.add("summary", "migration")
    single.add("dtstart", datetime(2026, 3, 20, 22, 0, tzinfo=timezone.utc))
    single.add("dtend", datetime(2026, 3, 21, 1, 0, tzinfo=timezone.utc))
    weekly = icalendar.Event()
    weekly.add("summary", "patch window")
    weekly.add("dtstart", datetime(2026, 3, 22, 1, 0, tzinfo=BERLIN))  # Sundays 01:00 local
    weekly.add("duration", timedelta(hours=1))
    weekly.add("rrule", {"freq": "weekly", "count": 3})
    cal.add_component(single)
    cal.add_component(weekly)
    path.write_bytes(cal.to_ical())


def test_ics_file_single_and_weekly_recurring_events_across_dst(tmp_path: Path) -> None:
    write_ics(tmp_path / "maint.ics")
    cal = load_calendars([{"name": "ops", "ics": "maint.ics", "action": "mute_and_freeze"}],
                         base_dir=tmp_path)
    ts = np.array([epoch(2026, 3, 20, 23), epoch(2026, 3, 21, 1),   # the single event
                   epoch(2026, 3, 22, 0, 30),    # 01:30 CET
                   epoch(2026, 3, 29, 0, 30),    # 01:30 CET, before the 02:00 switch
                   epoch(2026, 4, 4, 23, 30),    # 01:30 CEST on 5 April: local time kept
                   epoch(2026, 4, 5, 0, 30),     # 02:30 CEST: out (in if UTC were kept)
                   epoch(2026, 4, 11, 23, 30)])  # a 4th Sunday: COUNT=3 is over
    assert cal.freeze(ts).tolist() == [True, False, True, True, True, False, False]
    assert [e.name for e in cal.active(float(ts[0]))] == ["ops"]


@pytest.mark.parametrize(("entry", "match"), [
    ({"name": "a", "start": "2026-01-01T00:00Z"}, r"calendars\[0\]\.end: .* no end"),
    ({"name": "a", "start": "yesterday", "end": "2026-01-01"}, r"\.start: 'yesterday' is not"),
    ({"name": "a", "start": "2026-01-02", "end": "2026-01-01"}, "is not after the start"),
    ({"name": "a", "cron": "61 * * * *", "duration": "1h"}, r"\.cron: '61 \* \* \* \*'"),
    ({"name": "a", "cron": "0 2 * * *", "duration": "soon"}, r"\.duration: 'soon'"),
    ({"name": "a", "ics": "missing.ics"}, r"\.ics: cannot read iCalendar file"),
    ({"name": "a", "start": "2026-01-01", "end": "2026-01-02", "action": "silence"},
     r"\.action: 'silence' is not one of"),
    ({"name": "a", "cron": "0 2 * * *", "duration": "1h", "ics": "x.ics"}, "exactly one"),
    ({"name": "a", "cron": "0 2 * * *", "duration": "1h", "timezone": "Mars/Olympus"},
     "not an IANA time zone"),
    ({"cron": "0 2 * * *", "duration": "1h"}, r"\.name: every calendar entry needs"),
])
def test_config_errors_name_the_key_and_the_fix(entry: dict[str, str], match: str,
                                                tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        load_calendars([entry], base_dir=tmp_path)
