"""Build a sink from one ``sinks[i]`` entry of the config (see ``config.example.yaml``).

Types: ``stdout``, ``file``, ``webhook``, ``alertmanager``. Kafka sinks are built by the
daemon with the Kafka connection settings (:mod:`streamem.sinks.kafka`), not here. Network
sinks spool to ``<state_dir>/spool/<name>``, so the spool survives restarts next to the
checkpoints.

The factory checks nothing itself: every rule of a sink entry lives in
:func:`streamem.config.validate.validate_sink`, which ``check-config`` and ``run`` both
apply. A plain mapping is built and validated by that same code first, so every bad value
raises :class:`~streamem.errors.ConfigError` with its path, as in ``sinks[1].url``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamem.config.build import build
from streamem.config.env import Secret
from streamem.config.sections import SinkConfig
from streamem.config.validate import validate_sink
from streamem.errors import ConfigError, SinkError
from streamem.sinks.alertmanager import AlertmanagerSink
from streamem.sinks.base import Sink
from streamem.sinks.jsonl import FileSink, StdoutSink
from streamem.sinks.webhook import WebhookSink

__all__ = ["build_sink"]


def _entry(spec: SinkConfig | Mapping[str, Any], where: str) -> SinkConfig:
    if isinstance(spec, SinkConfig):
        return spec
    sink = build(SinkConfig, dict(spec), where, os.environ)
    assert isinstance(sink, SinkConfig)
    validate_sink(sink, where)
    return sink


def build_sink(spec: SinkConfig | Mapping[str, Any], state_dir: Path, *, index: int = 0) -> Sink:
    """Build the sink described by one ``sinks[index]`` config entry.

    Parameters
    ----------
    spec
        The entry: a validated :class:`~streamem.config.SinkConfig` (from
        :func:`~streamem.config.load_config`), or its plain mapping (``type``, ``name``,
        ``path``, ``url``, ``secret``, ``timeout_seconds``, ``labels``, ...), which is
        built and validated here by the config's own rules.
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
    sink = _entry(spec, where)
    if sink.type == "kafka":
        raise ConfigError(f"{where}.type", "kafka sinks are built by the daemon with the "
                          "Kafka settings (streamem.sinks.kafka), not by build_sink")
    name = sink.name or sink.type
    kwargs = {f.name: getattr(sink, f.name) for f in dataclasses.fields(sink)
              if f.name not in ("type", "name") and getattr(sink, f.name) is not None}
    kwargs = {k: v.get() if isinstance(v, Secret) else v for k, v in kwargs.items()}
    if sink.type == "stdout":
        return StdoutSink(name)
    if sink.type == "file":
        try:
            return FileSink(name, kwargs.pop("path"))
        except SinkError as exc:
            raise ConfigError(f"{where}.path", str(exc)) from exc
    spool_dir = Path(state_dir) / "spool" / name
    if sink.type == "webhook":
        return WebhookSink(name, kwargs.pop("url"), spool_dir=spool_dir, **kwargs)
    return AlertmanagerSink(name, kwargs.pop("url"), spool_dir=spool_dir, **kwargs)
