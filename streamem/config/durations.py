"""Durations in config: ``90s``, ``15m``, ``1h30m``, ``7d``, ``2w``, or a plain number of seconds.

One parser for every duration-valued key (bucket spans, lateness, time-based half-lives,
idle TTLs, calendar windows), so they all read the same way and fail with the same message.
"""

from __future__ import annotations

import math
import re

from streamem.errors import ConfigError

__all__ = ["UNITS", "parse_duration"]

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
"""Seconds per unit."""

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d|w)")
_MAX_SECONDS = 100 * 365.25 * 86400.0


def parse_duration(value: object, path: str, *, allow_zero: bool = False) -> float:
    """Seconds in ``value``: a number (seconds) or a string of number-unit parts.

    Parameters
    ----------
    value
        ``30``, ``"30s"``, ``"1h30m"``, ``"7d"``, ``"250ms"``.
    path
        The YAML path, for the error message.
    allow_zero
        Whether 0 is a valid duration for this key.

    Raises
    ------
    ConfigError
        Not a duration, negative, zero (unless allowed), not finite, or over 100 years.

    Examples
    --------
    >>> parse_duration("1h30m", "aggregate.bucket_span"), parse_duration(90, "x")
    (5400.0, 90.0)
    >>> parse_duration("5 minutes", "aggregate.bucket_span")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: aggregate.bucket_span: '5 minutes' is not a duration; ...
    """
    if isinstance(value, bool):
        seconds = math.nan
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower()
        parts = _PART.findall(text)
        seconds = math.nan
        if parts and "".join(n + u for n, u in parts) == text.replace(" ", ""):
            seconds = sum(float(n) * UNITS[u] for n, u in parts)
        elif re.fullmatch(r"\d+(?:\.\d*)?", text):
            seconds = float(text)
    else:
        seconds = math.nan
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if not math.isfinite(seconds):
        raise ConfigError(path, f"{shown} is not a duration; write a number of seconds or "
                          "number-unit parts such as 30s, 15m, 1h30m, 7d (units: "
                          f"{', '.join(UNITS)})")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(path, f"{shown} must be {'at least 0' if allow_zero else 'positive'}"
                          ", e.g. 1m")
    if seconds > _MAX_SECONDS:
        raise ConfigError(path, f"{shown} is over 100 years; use a shorter duration")
    return seconds
