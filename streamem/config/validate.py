"""Cross-field validation: the rules a built :class:`~streamem.config.Config` must also meet.

The builder (:mod:`streamem.config.build`) checks each value's type; :func:`validate` checks
ranges and the rules that span keys or sections (a file source needs ``source.path``, a kafka
sink needs a kafka source, sink names are distinct, ...). Each rule names the YAML path of the
key to change and how.
"""

from __future__ import annotations

import dataclasses
import re

from streamem.config.sections import Config
from streamem.errors import ConfigError

__all__ = ["validate"]

# the keys each sink type accepts besides ``type``, and the one it cannot do without
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


def validate(cfg: Config) -> None:
    """Check the rules that types alone cannot express; return if ``cfg`` meets them all.

    Raises
    ------
    ConfigError
        The first rule broken, with the YAML path of the key to change and the fix.

    Examples
    --------
    >>> from streamem.config.sections import FieldsConfig, SinkConfig
    >>> validate(Config(fields=FieldsConfig(features=("a",)), sinks=(SinkConfig("stdout"),)))
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: source.path: required for source.type file; give the ...
    """
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
    skew = cfg.fields.max_clock_skew_seconds
    need(skew is None or skew > 0, "fields.max_clock_skew_seconds",
         "must be a positive number of seconds (86400 is one day) or null for no bound")
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

