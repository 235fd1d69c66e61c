"""model.half_life / temporal / seasonality and calendars: parsed, validated with paths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streamem.config import parse_config
from streamem.config.timing import calendars
from streamem.errors import ConfigError
from streamem.runtime.build import new_detector


def _cfg(**extra: Any) -> dict[str, Any]:
    return {"source": {"type": "stdin"}, "fields": {"features": ["a"], "timestamp": "ts"},
            **extra}


def test_duration_half_life_builds_an_event_time_detector() -> None:
    det = new_detector(parse_config(_cfg(model={"half_life": "90m"})))
    assert det.params["half_life"] == "90m" and det.model_._forget.half == 5400.0
    assert new_detector(parse_config(_cfg(model={"half_life": 2000}))).params["half_life"] == 2000


@pytest.mark.parametrize(("doc", "path", "fix"), [
    ({"model": {"half_life": "soon"}}, "model.half_life", "duration"),
    ({"model": {"seasonality": ["1d"]}}, "model.seasonality", "temporal: hmm"),
    ({"model": {"temporal": "lstm"}}, "model.temporal", "hmm"),
    ({"model": {"temporal": "hmm"}}, "model.temporal", "not in the daemon yet"),
    ({"calendars": [{"name": "b", "cron": "0 2 * * sun"}]}, "calendars[0].duration", "duration"),
    ({"calendars": [{"name": "b", "cron": "0 2 * * sun", "duration": "2h", "actoin": "mute"}]},
     "calendars[0].actoin", "action"),
])
def test_bad_time_settings_name_the_path_and_the_fix(doc: dict[str, Any], path: str,
                                                     fix: str) -> None:
    with pytest.raises(ConfigError) as exc:
        cfg = parse_config(_cfg(**doc))
        new_detector(cfg)
    assert str(exc.value).startswith(path) and fix in str(exc.value)


def test_event_time_without_fields_timestamp_is_refused() -> None:
    for doc in ({"model": {"half_life": "7d"}},
                {"calendars": [{"name": "x", "start": "2026-12-24T18:00:00+01:00",
                                "end": "2026-12-25T00:00:00+01:00"}]}):
        with pytest.raises(ConfigError, match=r"fields\.timestamp"):
            parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}, **doc})


def test_calendars_from_yaml_times_mute_and_freeze() -> None:
    import datetime as dt

    start = dt.datetime(2026, 12, 24, 18, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    cfg = parse_config(_cfg(calendars=[
        {"name": "xmas", "start": start, "end": "2026-12-25T00:00:00+01:00",
         "action": "mute_and_freeze"},
        {"name": "backup", "cron": "0 2 * * sun", "duration": "2h", "timezone": "Europe/Berlin"},
    ]))
    cal = calendars(cfg)
    assert cal is not None
    t = np.array([start.timestamp() - 1, start.timestamp() + 60])
    assert cal.mute(t).tolist() == [False, True] and cal.freeze(t).tolist() == [False, True]
    assert [e.name for e in cal.active(float(t[1]))] == ["xmas"]
