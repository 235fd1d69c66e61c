"""Reading a config: YAML text to a validated :class:`~streamem.config.Config`, and back.

This is the only module that imports yaml (the YAML adapter). It reads YAML defensively: a
file over :data:`MAX_CONFIG_BYTES`, an alias (``*name``, the "billion laughs" expansion) and
nesting deeper than :data:`MAX_DEPTH` are refused with a :class:`~streamem.errors.ConfigError`
before any value is built. :func:`parse_config` runs the
whole pipeline on parsed YAML: ``STREAMEM_<SECTION>__<KEY>`` environment overrides (each value
parsed as YAML, so ``STREAMEM_DETECTOR__ALERT_RATE=1e-4`` is a float), the typed builder
(:mod:`streamem.config.build`), then cross-field validation (:mod:`streamem.config.validate`).
:func:`load_config` reads the file first; :func:`dump_config` gives the effective config back
as plain data with secrets masked.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from streamem.config.aggregate import with_bucket_features
from streamem.config.build import build, secret_key
from streamem.config.env import Secret
from streamem.config.sections import Config
from streamem.config.validate import validate
from streamem.errors import ConfigError
from streamem.logs import redact_url

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "dump_config", "load_config", "parse_config"]

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few KiB; YAML parses at about 1 MiB/s
MAX_DEPTH = 32  # the schema nests 4 deep (sinks[0].labels.team)

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _read_yaml(text: str, source: str) -> Any:
    """Parse ``text`` (from ``source``: a file, or an environment variable) as safe YAML.

    The events are scanned first, without building anything and without recursion, so an
    alias or a deep nesting is refused before it can expand or overflow the stack.
    """
    def refuse(event: Any, what: str) -> ConfigError:
        mark = event.start_mark
        return ConfigError("", f"{source}: {what} at line {mark.line + 1}, column "
                           f"{mark.column + 1}")

    try:
        depth = 0
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise refuse(event, "YAML aliases (*name) are not supported, they can expand "
                             "without bound; write the value out in full")
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    raise refuse(event, f"values are nested more than {MAX_DEPTH} levels "
                                 "deep; a streamem config nests at most 4 (check the "
                                 "brackets)")
            elif isinstance(event, _CLOSE):
                depth -= 1
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{source} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', None) or type(exc).__name__}") from exc
    except RecursionError as exc:  # a safety net: the scan above bounds the depth
        raise ConfigError("", f"{source}: values are nested too deeply to read; a streamem "
                          "config nests at most 4 levels (check the brackets)") from exc


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str],
                         origin: dict[str, str]) -> dict[str, Any]:
    """Apply the ``STREAMEM_...`` overrides to a copy of ``data``.

    ``STREAMEM_SINKS__0__URL`` reaches into a list (``sinks[0].url``). A secret-typed key
    takes the variable's text as it is (a password ``12345`` stays a string). ``origin`` gets
    the YAML path of each override and the variable that set it.
    """
    names = sorted(n for n in env if n.startswith("STREAMEM_") and "__" in n)
    if not names:
        return data
    data = copy.deepcopy(data)  # the caller's document stays as it was
    for name in names:
        parts = [p.lower() for p in name[len("STREAMEM_"):].split("__")]
        node: Any = data
        path = ""
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(path, f"the environment override {name}: {p!r} is not "
                                      f"an index of this list of {len(node)} entries; use "
                                      f"0..{len(node) - 1}")
                key: Any = int(p)
                path += f"[{p}]"
            else:
                key = p
                path += f".{p}" if path else p
            if last:
                raw = env[name]
                try:
                    node[key] = (raw if secret_key(parts) else
                                 _read_yaml(raw, f"the environment override {name}")
                                 if raw != "" else None)
                except ConfigError as exc:
                    raise ConfigError(path, f"{exc.message} (the value is not shown, it may "
                                      "be a secret); quote it or fix it") from exc
            else:
                child = node[key] if isinstance(node, list) else node.get(key)
                if not isinstance(child, (dict, list)):
                    child = {}
                    node[key] = child
                node = child
        origin[path] = name
    return data


def _from_env(exc: ConfigError, origin: Mapping[str, str]) -> ConfigError:
    """``exc``, naming the environment variable that set the bad key (if one did)."""
    hits = [p for p in origin if exc.path == p or exc.path.startswith((p + ".", p + "["))]
    if not hits:
        return exc
    return ConfigError(exc.path, f"{exc.message} (the value comes from the environment "
                       f"variable {origin[max(hits, key=len)]})")


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
    origin: dict[str, str] = {}
    data = _apply_env_overrides(dict(data), env, origin)
    try:
        cfg = build(Config, data, "", env)
        assert isinstance(cfg, Config)
        cfg = with_bucket_features(cfg)  # aggregate: the model's features are the buckets'
        validate(cfg)
    except ConfigError as exc:
        named = _from_env(exc, origin)
        if named is exc:
            raise
        raise named from exc
    return cfg


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file.

    Relative ``source.path``, ``checkpoint.dir`` and sink paths stay relative to the
    working directory (as for any command-line tool).

    Raises
    ------
    ConfigError
        The file cannot be read, is larger than :data:`MAX_CONFIG_BYTES`, is not YAML (or
        uses aliases or deep nesting), or has a bad key (the message has its path).

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
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError("", f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB, the limit "
                          "for a config file (a real one is a few KiB); is this the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path} is not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from exc
    return parse_config(_read_yaml(text, str(path)), env)


def dump_config(cfg: Config) -> dict[str, Any]:
    """The effective config as plain data, safe to show (for ``check-config --print``).

    Secrets are ``***``; URLs (``url``, ``generator_url``) follow
    :func:`~streamem.logs.redact_url`: credentials, query values and token-like path segments
    become ``***``. Keys whose value is ``None`` are left out.

    Examples
    --------
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]},
    ...                     "sinks": [{"type": "webhook", "url": "http://h", "secret": "k"}]})
    >>> dump_config(cfg)["sinks"]
    [{'type': 'webhook', 'url': 'http://h', 'secret': '***'}]
    """

    def plain(v: Any, key: str = "") -> Any:
        if isinstance(v, Secret):
            return "***"
        if key.endswith("url") and isinstance(v, str):
            return redact_url(v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name), f.name) for f in dataclasses.fields(v)
                    if getattr(v, f.name) is not None}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    out = plain(cfg)
    assert isinstance(out, dict)
    return out
