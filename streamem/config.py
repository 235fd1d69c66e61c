"""Typed, frozen configuration loaded from YAML (the only module that imports yaml).

* Unknown keys are rejected with the closest valid key; every error names the YAML path
  (``sinks[1].url``) and the fix.
* ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) in a string value is read from the environment;
  use it for secrets, which are then masked in ``repr`` and logs.
* ``STREAMEM_<SECTION>__<KEY>=value`` environment variables override the file
  (the value is parsed as YAML, so ``STREAMEM_DETECTOR__ALERT_RATE=1e-4`` is a float).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from streamem.errors import ConfigError

__all__ = [
    "Config",
    "Secret",
    "dump_config",
    "load_config",
    "parse_config",
]


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs.

    Examples
    --------
    >>> s = Secret("hunter2")
    >>> s, str(s), s.get()
    (Secret('***'), '***', 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SourceConfig:
    """``source``: where events come from (``file``, ``stdin`` or ``kafka``)."""

    type: Literal["file", "stdin", "kafka"] = "file"
    path: str | None = None
    format: Literal["jsonl", "csv"] = "jsonl"
    follow: bool = False
    max_event_bytes: int = 1_048_576
    poll_interval_ms: int = 200
    bootstrap_servers: tuple[str, ...] = ("127.0.0.1:9092",)
    topic: str | None = None
    group_id: str = "streamem"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


@dataclass(frozen=True)
class FieldsConfig:
    """``fields``: how an event becomes a feature vector."""

    features: tuple[str, ...] = ()
    timestamp: str | None = None
    key: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class BatchConfig:
    """``batch``: micro-batching."""

    max_events: int = 512
    max_wait_ms: int = 100


@dataclass(frozen=True)
class ModelConfig:
    """``model``: the online Gaussian mixture."""

    n_components: int | Literal["auto"] = "auto"
    max_components: int = 8
    covariance_type: Literal["full", "diag"] = "full"
    half_life: float = 50_000.0
    reg_covar: float = 1e-6
    warmup: int = 1000
    scope: Literal["global", "partition"] = "global"
    random_state: int | None = 0


@dataclass(frozen=True)
class DetectorConfig:
    """``detector``: thresholding and model protection."""

    alert_rate: float = 1e-3
    protect_model: bool = True
    regime_patience: int = 2000
    regime_min_events: int | None = None
    detrend_half_life: float | Literal["auto"] | None = None
    detrend_min_autocorr: float = 0.75
    smooth_window: int = 1


@dataclass(frozen=True)
class AlertingConfig:
    """``alerting``: incident hysteresis."""

    open_severity: float = 75.0
    resolve_severity: float = 50.0
    cooldown_seconds: float = 300.0


@dataclass(frozen=True)
class SinkConfig:
    """One entry of ``sinks``; which keys apply depends on ``type``."""

    type: Literal["stdout", "file", "webhook", "alertmanager", "kafka"]
    name: str | None = None
    path: str | None = None
    url: str | None = None
    secret: Secret | None = None
    timeout_seconds: float | None = None
    max_retries: int | None = None
    backoff_base_seconds: float | None = None
    backoff_max_seconds: float | None = None
    cooldown_seconds: float | None = None
    queue_size: int | None = None
    labels: dict[str, str] | None = None
    generator_url: str | None = None
    topic: str | None = None

    def spec(self) -> dict[str, Any]:
        """The keys that were set, as plain values (secrets revealed) for the sink factory."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = v.get() if isinstance(v, Secret) else v
        return out


_SINK_KEYS = {
    "stdout": {"name"},
    "file": {"name", "path"},
    "webhook": {"name", "url", "secret", "timeout_seconds", "max_retries",
                "backoff_base_seconds", "backoff_max_seconds", "cooldown_seconds", "queue_size"},
    "alertmanager": {"name", "url", "labels", "generator_url", "timeout_seconds",
                     "max_retries", "backoff_base_seconds", "backoff_max_seconds", "queue_size"},
    "kafka": {"name", "topic"},
}
_SINK_REQUIRED = {"file": "path", "webhook": "url", "alertmanager": "url", "kafka": "topic"}


@dataclass(frozen=True)
class DeadLetterConfig:
    """``dead_letter``: where bad events go, with the reason."""

    type: Literal["file", "kafka"] = "file"
    path: str = "dead-letter.jsonl"
    topic: str | None = None


@dataclass(frozen=True)
class CheckpointConfig:
    """``checkpoint``: durable state."""

    dir: str = "state"
    store: Literal["directory", "kafka"] = "directory"
    topic: str | None = None
    every_seconds: float = 30.0
    every_events: int = 100_000
    keep: int = 5


@dataclass(frozen=True)
class MetricsConfig:
    """``metrics``: the Prometheus endpoint."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class LoggingConfig:
    """``logging``."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    status_interval_seconds: float = 10.0


@dataclass(frozen=True)
class Config:
    """The whole configuration (frozen). Build it with :func:`load_config`.

    Examples
    --------
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a", "b"]}})
    >>> cfg.model.warmup, cfg.fields.features
    (1000, ('a', 'b'))
    >>> parse_config({"modle": {}})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: modle: unknown key; did you mean 'model'? ...
    """

    source: SourceConfig = field(default_factory=SourceConfig)
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    sinks: tuple[SinkConfig, ...] = ()
    dead_letter: DeadLetterConfig = field(default_factory=DeadLetterConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def secrets(self) -> list[str]:
        """Every secret value in the config (for log masking)."""
        found = [self.source.sasl_password] + [s.secret for s in self.sinks]
        return [s.get() for s in found if s is not None and s.get()]


# ---------------------------------------------------------------------------- loading
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: str, path: str, env: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(path, f"environment variable {name} is not set; export {name}=... "
                          "or give a default as ${" + name + ":-value}")

    return _ENV.sub(repl, value)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             Secret: "a string (use ${ENV_VAR} for secrets)"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, path: str, env: Mapping[str, str]) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(value, str) and tp is not Secret and "${" in value:
        value = _interpolate(value, path, env)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path, env)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(path, f"{value!r} is not valid; expected {_describe(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        else:
            hint = ""
        raise ConfigError(path, f"{value!r} is not valid{hint} Use {_describe(tp)}")
    if origin is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(path, f"{value!r} is not a list; write it as [a, b]")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, f"{path}[{i}]", env) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"{value!r} is not a mapping; write it as {{k: v}}")
        return {str(k): str(v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, env)
    if tp is Secret:
        if not isinstance(value, str):
            raise ConfigError(path, "must be a string; write ${ENV_VAR} to read it from the env")
        return Secret(_interpolate(value, path, env))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(path, f"{value!r} is not valid; expected {_describe(tp)}")


def _build(cls: Any, data: Any, path: str, env: Mapping[str, str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path or "<root>", f"expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(where, f"unknown key; {hint}(valid keys: {', '.join(names)})")
        kwargs[key] = _convert(hints[key], value, where, env)
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in kwargs]
    if missing:
        where = f"{path}.{missing[0]}" if path else missing[0]
        raise ConfigError(where, "required; add it")
    return cls(**kwargs)


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
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else None
    return data


def _validate(cfg: Config) -> None:
    def need(cond: bool, path: str, msg: str) -> None:
        if not cond:
            raise ConfigError(path, msg)

    s = cfg.source
    need(s.type != "file" or bool(s.path), "source.path",
         "required for source.type file; give the JSON-lines or CSV file to read")
    need(s.type != "kafka" or bool(s.topic), "source.topic", "required for source.type kafka")
    need(s.max_event_bytes > 0, "source.max_event_bytes", "must be positive, e.g. 1048576")
    need(s.sasl_mechanism is None or s.security_protocol.startswith("SASL"),
         "source.sasl_mechanism", "needs source.security_protocol SASL_PLAINTEXT or SASL_SSL")
    need(s.sasl_mechanism is None or (bool(s.sasl_username) and s.sasl_password is not None),
         "source.sasl_password", "sasl_username and sasl_password are required with "
         "sasl_mechanism; set sasl_password: ${KAFKA_PASSWORD}")
    need(len(cfg.fields.features) > 0, "fields.features",
         "list at least one feature name or dotted path, e.g. [temperature, pressure]")
    need(len(set(cfg.fields.features)) == len(cfg.fields.features), "fields.features",
         "contains a duplicate name; list each feature once")
    need(cfg.batch.max_events >= 1, "batch.max_events", "must be at least 1")
    need(cfg.batch.max_wait_ms >= 0, "batch.max_wait_ms", "must be 0 or more")
    m = cfg.model
    need(m.n_components == "auto" or int(m.n_components) >= 1, "model.n_components",
         "use a positive integer or auto")
    need(m.half_life > 0, "model.half_life", "must be a positive number of events")
    need(m.warmup >= 20, "model.warmup", "must be at least 20 events (1000 is typical)")
    need(m.reg_covar >= 0, "model.reg_covar", "must be 0 or more, e.g. 1e-6")
    need(m.scope == "global" or s.type == "kafka", "model.scope",
         "partition scope needs source.type kafka; use global for files and stdin")
    need(0 < cfg.detector.alert_rate < 0.5, "detector.alert_rate",
         "must be in (0, 0.5); 0.001 flags one normal event in a thousand")
    need(cfg.detector.regime_patience >= 10, "detector.regime_patience", "must be at least 10")
    rm = cfg.detector.regime_min_events
    need(rm is None or rm >= 10, "detector.regime_min_events",
         "must be null (off) or at least 10 (400 is a good start)")
    dh = cfg.detector.detrend_half_life
    need(dh is None or dh == "auto" or (not isinstance(dh, str) and dh > 0),
         "detector.detrend_half_life",
         "must be a positive number of events (10 is typical), auto (fitted per feature) "
         "or null to turn it off")
    need(-1 <= cfg.detector.detrend_min_autocorr <= 1, "detector.detrend_min_autocorr",
         "must be in [-1, 1]; 0.75 is typical")
    need(cfg.detector.smooth_window >= 1, "detector.smooth_window",
         "must be an integer >= 1 (1 = no smoothing)")
    a = cfg.alerting
    need(0 <= a.resolve_severity <= a.open_severity <= 100, "alerting.resolve_severity",
         "needs 0 <= resolve_severity <= open_severity <= 100")
    names = set()
    for i, sink in enumerate(cfg.sinks):
        where = f"sinks[{i}]"
        allowed = _SINK_KEYS[sink.type]
        for f in dataclasses.fields(sink):
            if f.name != "type" and getattr(sink, f.name) is not None and f.name not in allowed:
                raise ConfigError(f"{where}.{f.name}", f"not a key of a {sink.type} sink; "
                                  f"allowed: {', '.join(sorted(allowed))}")
        req = _SINK_REQUIRED.get(sink.type)
        if req and getattr(sink, req) is None:
            raise ConfigError(f"{where}.{req}", f"a {sink.type} sink needs {req}; add it")
        if sink.url is not None and not re.match(r"^https?://", sink.url):
            raise ConfigError(f"{where}.url", f"{sink.url!r} must start with http:// or https://")
        if sink.type == "kafka":
            need(s.type == "kafka", f"{where}.type",
                 "a kafka sink uses the source's Kafka settings; set source.type kafka")
        name = sink.name or sink.type
        need(name not in names, f"{where}.name",
             f"{name!r} is used by another sink; give each sink a distinct name")
        names.add(name)
    need(cfg.dead_letter.type != "kafka" or (s.type == "kafka" and bool(cfg.dead_letter.topic)),
         "dead_letter.topic", "a kafka dead-letter sink needs source.type kafka and a topic")
    c = cfg.checkpoint
    need(c.store != "kafka" or (s.type == "kafka" and bool(c.topic)), "checkpoint.topic",
         "the kafka state store needs source.type kafka and a compacted topic name")
    need(c.every_seconds > 0, "checkpoint.every_seconds", "must be positive")
    need(c.every_events >= 1, "checkpoint.every_events", "must be at least 1")
    need(c.keep >= 1, "checkpoint.keep", "keep at least 1 snapshot")
    need(0 <= cfg.metrics.port <= 65535, "metrics.port", "must be a TCP port (0-65535)")


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
    """
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("<root>", "the config must be a YAML mapping of sections")
    data = _apply_env_overrides(dict(data), env)
    cfg = _build(Config, data, "", env)
    assert isinstance(cfg, Config)
    _validate(cfg)
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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{path} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from exc
    return parse_config(data, env)


def dump_config(cfg: Config) -> dict[str, Any]:
    """The effective config as plain data with secrets masked (for ``check-config``)."""

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
