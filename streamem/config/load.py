"""Reading a config: YAML text to a validated :class:`~streamem.config.Config`, and back.

This is the only module that imports yaml (the YAML adapter). :func:`parse_config` runs the
whole pipeline on parsed YAML: ``STREAMEM_<SECTION>__<KEY>`` environment overrides (each value
parsed as YAML, so ``STREAMEM_DETECTOR__ALERT_RATE=1e-4`` is a float), the typed builder
(:mod:`streamem.config.build`), then cross-field validation (:mod:`streamem.config.validate`).
:func:`load_config` reads the file first; :func:`dump_config` gives the effective config back
as plain data with secrets masked.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from streamem.config.build import build
from streamem.config.env import Secret
from streamem.config.sections import Config
from streamem.config.validate import validate
from streamem.errors import ConfigError

__all__ = ["dump_config", "load_config", "parse_config"]


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for name, raw in env.items():
        if not name.startswith("STREAMEM_") or "__" not in name:
            continue
        parts = [p.lower() for p in name[len("STREAMEM_"):].split("__")]
        node = data
        for p in parts[:-1]:
            child = node.get(p)
            if not isinstance(child, dict):
                child = {}
                node[p] = child
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(".".join(parts), f"the environment override {name} is not a "
                              f"valid YAML value ({getattr(exc, 'problem', exc)}; the value is "
                              "not shown, it may be a secret); quote it or fix it") from exc
    return data


def parse_config(data: Any, env: Mapping[str, str] | None = None) -> Config:
    """Build a validated :class:`Config` from parsed YAML.

    Parameters
    ----------
    data
        The parsed YAML document (a mapping).
    env
        Environment for ``${VAR}`` and ``STREAMEM_...`` overrides (default ``os.environ``).

    Raises
    ------
    ConfigError
        With the YAML path of the first bad key and the fix.

    Examples
    --------
    >>> env = {"STREAMEM_DETECTOR__ALERT_RATE": "1e-4"}
    >>> parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}}, env).detector
    DetectorConfig(alert_rate=0.0001, ...)
    """
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("<root>", "the config must be a YAML mapping of sections")
    data = _apply_env_overrides(dict(data), env)
    cfg = build(Config, data, "", env)
    assert isinstance(cfg, Config)
    validate(cfg)
    return cfg


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file.

    Relative ``source.path``, ``checkpoint.dir`` and sink paths stay relative to the
    working directory (as for any command-line tool).

    Raises
    ------
    ConfigError
        The file cannot be read, is not YAML, or has a bad key (the message has its path).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.yaml")
    >>> _ = open(p, "w").write("fields: {features: [a]}\\nbatch: {max_events: ten}\\n")
    >>> load_config(p)
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: batch.max_events: 'ten' is not valid; expected an integer
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path} is not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{path} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from exc
    return parse_config(data, env)


def dump_config(cfg: Config) -> dict[str, Any]:
    """The effective config as plain data with secrets masked (for ``check-config``).

    Keys whose value is ``None`` are left out.

    Examples
    --------
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
    ...                     "sinks": [{"type": "webhook", "url": "http://h", "secret": "k"}]})
    >>> dump_config(cfg)["sinks"]
    [{'type': 'webhook', 'url': 'http://h', 'secret': '***'}]
    """

    def plain(v: Any) -> Any:
        if isinstance(v, Secret):
            return "***"
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                    if getattr(v, f.name) is not None}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    out = plain(cfg)
    assert isinstance(out, dict)
    return out
