"""Build a sink from one ``sinks[i]`` entry of the config (see ``config.example.yaml``).

Types: ``stdout``, ``file``, ``webhook``, ``alertmanager``. Kafka sinks are built by the
daemon with the Kafka connection settings (:mod:`streamem.sinks.kafka`), not here. Network
sinks spool to ``<state_dir>/spool/<name>``, so the spool survives restarts next to the
checkpoints. Every bad value raises :class:`~streamem.errors.ConfigError` with its path, as
in ``sinks[1].url``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamem.errors import ConfigError, SinkError
from streamem.sinks.alertmanager import AlertmanagerSink
from streamem.sinks.base import Sink
from streamem.sinks.jsonl import FileSink, StdoutSink
from streamem.sinks.webhook import WebhookSink

__all__ = ["build_sink"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NETWORK = {"timeout_seconds": float, "max_retries": int, "backoff_base_seconds": float,
            "backoff_max_seconds": float, "queue_size": int}
_KEYS: dict[str, dict[str, type]] = {
    "stdout": {},
    "file": {"path": str},
    "webhook": {"url": str, "secret": str, "cooldown_seconds": float, **_NETWORK},
    "alertmanager": {"url": str, "labels": dict, "generator_url": str,
                     "critical_severity": float, "alert_ttl_seconds": float,
                     "refresh_seconds": float, "update_seconds": float, **_NETWORK},
}
_REQUIRED = {"file": ("path",), "webhook": ("url",), "alertmanager": ("url",)}


def _typed(where: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(where, f"{value!r} is negative; use a value of 0 or more")
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(where, f"{value!r} is negative; use a value of 0 or more")
        return value
    if kind in (str, dict) and isinstance(value, kind) and value:
        return value
    names = {float: "a number", int: "an integer", str: "a non-empty string",
             dict: "a mapping of label names to strings"}
    raise ConfigError(where, f"{value!r} is not valid here; it must be {names[kind]}")


def build_sink(spec: Mapping[str, Any], state_dir: Path, *, index: int = 0) -> Sink:
    """Build the sink described by one ``sinks[index]`` config entry.

    Parameters
    ----------
    spec
        The entry: ``type``, ``name`` and the type's keys (``path``, ``url``, ``secret``,
        ``timeout_seconds``, ``max_retries``, ``cooldown_seconds``, ``queue_size``,
        ``labels``, ...).
    state_dir
        The state directory; network sinks spool under ``state_dir/spool/<name>``.
    index
        Position of the entry in ``sinks`` (for error paths).

    Returns
    -------
    Sink
        A started sink; the caller closes it.

    Raises
    ------
    ConfigError
        For a missing, unknown or invalid key, with the path (``sinks[1].url``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> with build_sink({"type": "file", "path": str(d / "a.jsonl")}, d) as sink:
    ...     sink.name
    'file'
    >>> build_sink({"type": "webhook", "url": "ftp://x"}, d, index=2)
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[2].url: 'ftp://x' must start with http:// or https://
    """
    where = f"sinks[{index}]"
    kind = spec.get("type")
    if kind == "kafka":
        raise ConfigError(f"{where}.type", "kafka sinks are built by the daemon with the "
                          "Kafka settings (streamem.sinks.kafka), not by build_sink")
    if kind not in _KEYS:
        raise ConfigError(f"{where}.type", f"unknown sink type {kind!r}; use one of "
                          f"{', '.join([*_KEYS, 'kafka'])}")
    allowed = _KEYS[kind]
    unknown = sorted(set(spec) - set(allowed) - {"type", "name"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key for a {kind} sink; allowed "
                          f"keys: {', '.join(['type', 'name', *allowed])}")
    for key in _REQUIRED.get(kind, ()):
        if spec.get(key) is None:
            raise ConfigError(f"{where}.{key}", f"a {kind} sink needs {key}; add it")
    name = spec.get("name", kind)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name", f"{name!r} is not a valid sink name; use 1-64 "
                          "letters, digits, '_', '.' or '-' (it names the spool directory)")
    kwargs = {key: _typed(f"{where}.{key}", spec[key], allowed[key])
              for key in allowed if spec.get(key) is not None}
    try:
        if kind == "stdout":
            return StdoutSink(name)
        if kind == "file":
            try:
                return FileSink(name, kwargs.pop("path"))
            except SinkError as exc:
                raise ConfigError("path", str(exc)) from exc
        spool_dir = Path(state_dir) / "spool" / name
        if kind == "webhook":
            return WebhookSink(name, kwargs.pop("url"), spool_dir=spool_dir, **kwargs)
        return AlertmanagerSink(name, kwargs.pop("url"), spool_dir=spool_dir, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}.{exc.path}", exc.message) from exc
