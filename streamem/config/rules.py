"""The value rules of sink settings, and how a config value is shown in an error.

Each rule is written once, here. The config validator (:mod:`streamem.config.validate`)
applies them to every ``sinks[i]`` entry, so ``check-config`` and ``run`` reject the same
configs with the same message; a sink constructor that must also guard its library API calls
the same function (:func:`check_sink_value`), never a copy.

:func:`shown` is how a value appears in any error message: a bounded ``repr`` (an expanded
YAML bomb or a megabyte string is cut), and for URLs the :func:`~streamem.logs.redact_url`
form. Secret-typed values are never shown at all.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

from streamem.errors import ConfigError
from streamem.logs import redact_url

__all__ = ["LABEL_NAME", "RESERVED_LABELS", "SINK_NAME", "check_backoff", "check_labels",
           "check_sink_value", "shown"]

# the sink name is a directory name under <state>/spool: no separators, no '.', '..' or hidden
SINK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = ("key", "severity")  # set by the Alertmanager sink from each incident

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 3


def shown(value: Any) -> str:
    """A ``repr`` of ``value`` for an error message, at most about 100 characters.

    Examples
    --------
    >>> len(shown("x" * 1000)), shown("x" * 1000)[35:45]
    (80, 'xxx...xxxx')
    >>> shown([[["lol"] * 9] * 9] * 9)
    "[[['lol', 'lol', 'lol', 'lol', ...], [...], [...], [...], ...], [[...], ...], ...]"
    """
    return _REPR.repr(value)


def _http(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(("http://", "https://"))


def _number(test: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                      and not math.isnan(v) and test(v))


_SINK_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (lambda v: isinstance(v, str) and SINK_NAME.match(v) is not None,
             "is not a valid sink name; use 1-64 letters, digits, '_', '.' or '-', starting "
             "with a letter, digit or '_' (it names the spool directory)"),
    "path": (lambda v: isinstance(v, str) and v != "",
             "is empty; give the JSON-lines file to write"),
    "url": (_http, "must start with http:// or https://"),
    "generator_url": (_http, "must be an http:// or https:// link (Alertmanager requires a "
                             "URI)"),
    "topic": (lambda v: isinstance(v, str) and v != "", "is empty; name the topic"),
    "timeout_seconds": (_number(lambda v: 0 < v < math.inf), "must be positive, e.g. 5"),
    "max_retries": (_number(lambda v: v >= 0), "is negative; use 0 for no retries before "
                                                "spooling, or a small count such as 5"),
    "backoff_base_seconds": (_number(lambda v: 0 < v < math.inf), "must be positive, e.g. 0.5"),
    "backoff_max_seconds": (_number(lambda v: 0 < v < math.inf), "must be positive, e.g. 30"),
    "cooldown_seconds": (_number(lambda v: 0 <= v < math.inf),
                         "must be 0 or more seconds (0 sends every anomaly), e.g. 60"),
    "queue_size": (_number(lambda v: v >= 1), "must be at least 1, e.g. 10000"),
}


def check_sink_value(key: str, value: Any, path: str | None = None) -> None:
    """Raise if ``value`` breaks the rule of the sink setting ``key`` (no rule: accept).

    Parameters
    ----------
    key
        The setting (``timeout_seconds``, ``queue_size``, ``url``, ...).
    value
        Its value (a secret is passed as its plain string and never shown).
    path
        The YAML path for the message (``sinks[0].queue_size``); ``key`` by default.

    Raises
    ------
    ConfigError
        The rule is broken; the message names the value (bounded, URLs redacted) and the fix.

    Examples
    --------
    >>> check_sink_value("queue_size", 0, "sinks[0].queue_size")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[0].queue_size: 0 must be at least 1, e.g. 10000
    >>> check_sink_value("url", "ftp://x/S3cretToken0123456789")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: url: 'ftp://x/***' must start with http:// or https://
    """
    where = path or key
    if key == "secret":
        if not value:
            raise ConfigError(where, "is empty; remove the key to send unsigned, or set it "
                              "from the environment as ${ENV_VAR}")
        return
    rule = _SINK_RULES.get(key)
    if rule is None or rule[0](value):
        return
    show = (repr(redact_url(value)) if key.endswith("url") and isinstance(value, str)
            else shown(value))
    raise ConfigError(where, f"{show} {rule[1]}")


def check_backoff(base: float, ceiling: float, path: str | None = None) -> None:
    """Raise unless ``0 < base <= ceiling`` (the backoff doubles from base up to the ceiling).

    Examples
    --------
    >>> check_backoff(0.5, 0.1, "sinks[0]")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[0].backoff_max_seconds: 0.1 must be at least ...
    """
    prefix = f"{path}." if path else ""
    check_sink_value("backoff_base_seconds", base, prefix + "backoff_base_seconds")
    check_sink_value("backoff_max_seconds", ceiling, prefix + "backoff_max_seconds")
    if not ceiling >= base:
        raise ConfigError(prefix + "backoff_max_seconds", f"{shown(ceiling)} must be at least "
                          f"backoff_base_seconds={shown(base)}")


def check_labels(labels: Mapping[Any, Any], path: str | None = None) -> None:
    """Raise unless every extra Alertmanager label has a valid, free name and a string value.

    Examples
    --------
    >>> check_labels({"team": "ops", "severity": "x"}, "sinks[1].labels")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[1].labels.severity: 'severity' is set by streamem ...
    """
    prefix = path or "labels"
    for label, value in labels.items():
        where = f"{prefix}.{label}"
        if not isinstance(label, str) or not LABEL_NAME.match(label):
            raise ConfigError(where, "label names must match [a-zA-Z_][a-zA-Z0-9_]*; rename "
                              "the label")
        if label in RESERVED_LABELS:
            raise ConfigError(where, f"{label!r} is set by streamem from the incident; remove "
                              "it from labels")
        if not isinstance(value, str):
            raise ConfigError(where, f"value {shown(value)} must be a string; quote it in the "
                              "YAML")
