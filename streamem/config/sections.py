"""The config tree: one frozen dataclass per YAML section, and :class:`Config`, the root.

The defaults here are the documented defaults (``config.example.yaml``). Building a tree from
YAML (types, unknown keys, YAML paths) is :mod:`streamem.config.build`; the rules that span
keys or sections are :mod:`streamem.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from streamem.config.aggregate import AggregateConfig
from streamem.config.env import Secret

__all__ = [
    "AlertingConfig",
    "BatchConfig",
    "CalendarConfig",
    "CheckpointConfig",
    "Config",
    "DeadLetterConfig",
    "DetectorConfig",
    "FieldsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "RuleConfig",
    "SinkConfig",
    "SourceConfig",
    "UIConfig",
]


@dataclass(frozen=True)
class SourceConfig:
    """``source``: where events come from (``file``, ``stdin`` or ``kafka``)."""

    type: Literal["file", "stdin", "kafka"] = "file"
    path: str | None = None
    format: Literal["jsonl", "csv", "regex", "nginx", "apache", "apache_error", "syslog",
                    "logfmt"] = "jsonl"
    pattern: str | None = None  # source.format regex: named groups become fields
    types: dict[str, str] | None = None  # text formats: {field: int|float|str|<time type>}
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
    #: one field, or a list of fields forming a composite key (see streamem.runtime.keying)
    key: str | tuple[str, ...] | None = None
    id: str | None = None
    template: str | None = None  # text formats: mine message templates of this field
    categorical: tuple[str, ...] = ()  # fields modelled as categories (parsing/categorical.py)
    max_clock_skew_seconds: float | None = 86_400.0


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
    covariance_type: Literal["full", "diag", "auto"] = "auto"
    #: events (a number) or event time (a duration, "7d": needs fields.timestamp)
    half_life: float | str = 50_000.0
    reg_covar: float = 1e-6
    warmup: int = 1000
    scope: Literal["global", "partition", "key"] = "global"
    random_state: int | None = 0
    #: none: the i.i.d. mixture; hmm: the online HMM (streamem.scoring.temporal)
    temporal: Literal["none", "hmm"] = "none"
    #: periods ("1d", "7d") the readings are scored against (needs temporal hmm)
    seasonality: tuple[str, ...] = ()
    #: scope key: strength of the population prior, in pseudo-events of a key's own
    key_prior_events: float = 10.0
    #: scope key: keys held in memory; the least recently used are written out and evicted
    max_keys_in_memory: int = 100_000
    #: scope key: a duration ("30d") after which a key not seen is forgotten; null: never
    key_idle_ttl: str | float | None = None


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
    #: The daemon's warm-up is a trusted reference unless this is set (the library's
    #: ``Detector`` scores its warm-up by default): live streams often show every operating
    #: point in their first ``model.warmup`` events, which a cold start would flag as new.
    cold_start: bool = False


@dataclass(frozen=True)
class AlertingConfig:
    """``alerting``: incident hysteresis."""

    open_severity: float = 75.0
    resolve_severity: float = 50.0
    cooldown_seconds: float = 300.0
    max_open_incidents: int = 10_000

    def __post_init__(self) -> None:
        if self.max_open_incidents < 1:
            from streamem.errors import ConfigError

            raise ConfigError("alerting.max_open_incidents", f"{self.max_open_incidents} must "
                              "be at least 1; 10000 bounds memory to a few tens of MB")


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
    sinks_failure_timeout_seconds: float = 300.0

    def __post_init__(self) -> None:
        from streamem.errors import ConfigError

        if not self.sinks_failure_timeout_seconds > 0:
            raise ConfigError("checkpoint.sinks_failure_timeout_seconds",
                              f"{self.sinks_failure_timeout_seconds!r} must be positive, e.g. "
                              "300 (how long sinks may fail before the daemon exits)")


@dataclass(frozen=True)
class MetricsConfig:
    """``metrics``: the Prometheus endpoint."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class RuleConfig:
    """One entry of ``rules``: suppress matching alerts, or keep matching events unlearned."""

    action: Literal["suppress", "skip_learning"]
    key: str | None = None
    feature: str | None = None
    when: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class UIConfig:
    """``ui``: the operator page and its JSON API, on the metrics host and port."""

    enabled: bool = True
    token: Secret | None = None
    read_token: Secret | None = None
    max_anomalies: int = 1000
    max_body_bytes: int = 16_384
    feedback_weight: float = 0.02
    feedback_suppress_seconds: float = 0.0


@dataclass(frozen=True)
class LoggingConfig:
    """``logging``."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    status_interval_seconds: float = 10.0


@dataclass(frozen=True)
class CalendarConfig:
    """``calendars[i]``: a named maintenance window (:mod:`streamem.calendars`)."""

    name: str
    action: Literal["mute", "mute_and_freeze"] = "mute"
    start: str | None = None  # ISO 8601, with end
    end: str | None = None
    cron: str | None = None  # with duration
    duration: str | None = None
    ics: str | None = None  # an iCalendar file (relative: to the working directory)
    timezone: str | None = None  # IANA name; default UTC


@dataclass(frozen=True)
class Config:
    """The whole configuration (frozen). Build it with :func:`~streamem.config.load_config`.

    Examples
    --------
    >>> from streamem.config import parse_config
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
    ui: UIConfig = field(default_factory=UIConfig)
    rules: tuple[RuleConfig, ...] = ()
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    aggregate: AggregateConfig | None = None  # events -> buckets (streamem.config.aggregate)
    calendars: tuple[CalendarConfig, ...] = ()  # maintenance windows (streamem.config.timing)

    def secrets(self) -> list[str]:
        """Every secret value in the config (for log masking)."""
        found = [self.source.sasl_password, self.ui.token, self.ui.read_token]
        found += [s.secret for s in self.sinks]
        return [s.get() for s in found if s is not None and s.get()]

