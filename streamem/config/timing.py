"""The time settings of a configuration: ``model.half_life`` as events or event time,
``model.temporal``, ``model.seasonality`` and the ``calendars:`` entries.

Rules that span sections live here: event time (a duration half-life, seasonality, any
calendar) needs ``fields.timestamp``. :func:`calendars` turns the typed entries into the
:class:`~streamem.calendars.Calendars` the runtime reads (built by
:mod:`streamem.runtime.build`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from streamem.calendars import Calendars, load_calendars
from streamem.config.sections import Config
from streamem.errors import ConfigError
from streamem.model._decay import parse_half_life
from streamem.model.seasonality import period_seconds

__all__ = ["calendar_entries", "calendars", "time_settings"]


def calendar_entries(cfg: Config) -> list[dict[str, Any]]:
    """The ``calendars:`` entries as plain mappings (unset keys left out).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin"},
    ...     "fields": {"features": ["a"], "timestamp": "ts"},
    ...     "calendars": [{"name": "backup", "cron": "0 2 * * sun", "duration": "2h"}]})
    >>> calendar_entries(cfg)
    [{'name': 'backup', 'action': 'mute', 'cron': '0 2 * * sun', 'duration': '2h'}]
    """
    return [{k: v for k, v in dataclasses.asdict(c).items() if v is not None}
            for c in cfg.calendars]


def calendars(cfg: Config) -> Calendars | None:
    """The configured calendars, or None when there are none.

    Raises
    ------
    ConfigError
        A bad entry, named by its path (``calendars[1].cron``).
    """
    if not cfg.calendars:
        return None
    return load_calendars(calendar_entries(cfg), ".")


def time_settings(cfg: Config) -> None:
    """Check the time settings (called by :func:`streamem.config.validate.validate`).

    Raises
    ------
    ConfigError
        A half-life that is neither events nor a duration; event time, seasonality or
        calendars without ``fields.timestamp``; seasonality without ``temporal: hmm``; a
        bad period or calendar entry.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
    ...               "model": {"half_life": "7d"}})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: model.half_life: '7d' is in event time and needs ...
    """
    m = cfg.model
    unit, _ = parse_half_life(m.half_life, "model.half_life")
    has_time = cfg.fields.timestamp is not None
    if unit == "seconds" and not has_time:
        raise ConfigError("model.half_life", f"{m.half_life!r} is in event time and needs "
                          "fields.timestamp; set fields.timestamp or give a number of events")
    for i, p in enumerate(m.seasonality):
        try:
            period_seconds(p)
        except Exception as exc:
            raise ConfigError(f"model.seasonality[{i}]", f"{p!r} is not a period; write e.g. "
                              f"1d or 7d ({exc})") from None
    if m.seasonality and not has_time:
        raise ConfigError("model.seasonality", "needs fields.timestamp (the phase is read "
                          "from each event's time); set fields.timestamp")
    if m.seasonality and m.temporal != "hmm":
        raise ConfigError("model.seasonality", "needs model.temporal: hmm (the i.i.d. "
                          "mixture does not condition on the phase); add it or drop seasonality")
    if m.temporal != "none":
        raise ConfigError("model.temporal", f"{m.temporal!r} runs from the library "
                          "(streamem.scoring.factory.make_detector) but not in the daemon yet; "
                          "use model.temporal: none here")
    if cfg.calendars and not has_time:
        raise ConfigError("calendars", "calendar windows are in event time and need "
                          "fields.timestamp; set fields.timestamp")
    calendars(cfg)
