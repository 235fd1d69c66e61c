"""Validation: every rule a built :class:`~streamem.config.Config` must meet, in one place.

The builder (:mod:`streamem.config.build`) checks each value's type; :func:`validate` checks
ranges and the rules that span keys or sections (a file source needs ``source.path``, a kafka
sink needs a kafka source, sink names are distinct, ...). ``check-config`` and ``run`` both
call it through :func:`~streamem.config.load_config` before anything else, and nothing later
re-checks a config value: the sink factory trusts it, and where a library class guards its own
arguments (a sink, the retry policy, the incident tracker, the Kafka security settings), this
module calls that same rule instead of a copy. So the two commands cannot disagree.
Each rule names the YAML path of the key to change and how.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from streamem.alerting.rules import Rules
from streamem.config.env import Secret
from streamem.config.rules import check_labels, check_sink_value
from streamem.config.sections import Config, DetectorConfig, ModelConfig, SinkConfig
from streamem.config.timing import time_settings
from streamem.errors import ConfigError, InvalidInputError
from streamem.parsing.categorical import check_config as check_categorical
from streamem.parsing.decoder import check_config as check_text_format

__all__ = ["validate", "validate_sink"]

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
_RETRY_KEYS = ("max_retries", "backoff_base_seconds", "backoff_max_seconds")


def _prefixed(where: str, exc: ConfigError) -> ConfigError:
    return ConfigError(f"{where}.{exc.path}" if exc.path else where, exc.message)


def validate_sink(sink: SinkConfig, where: str) -> None:
    """Check one ``sinks[i]`` entry on its own (the rules that need no other section).

    Parameters
    ----------
    sink
        The built entry.
    where
        Its YAML path, ``sinks[i]``.

    Raises
    ------
    ConfigError
        A key its type does not take, a missing required key, or a value that breaks the
        key's rule (:mod:`streamem.config.rules`).

    Examples
    --------
    >>> validate_sink(SinkConfig("webhook", url="http://h", timeout_seconds=-1), "sinks[0]")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[0].timeout_seconds: -1 must be positive, e.g. 5
    """
    allowed = _SINK_KEYS[sink.type]
    for f in dataclasses.fields(sink):
        if f.name != "type" and getattr(sink, f.name) is not None and f.name not in allowed:
            raise ConfigError(f"{where}.{f.name}", f"not a key of a {sink.type} sink; "
                              f"allowed: {', '.join(sorted(allowed))}")
    req = _SINK_REQUIRED.get(sink.type)
    if req and getattr(sink, req) is None:
        raise ConfigError(f"{where}.{req}", f"a {sink.type} sink needs {req}; add it")
    for f in dataclasses.fields(sink):
        value = getattr(sink, f.name)
        if value is None or f.name == "type":
            continue
        if f.name == "labels":
            check_labels(value, f"{where}.labels")
        else:
            check_sink_value(f.name, value.get() if isinstance(value, Secret) else value,
                             f"{where}.{f.name}")
    retry = {k: getattr(sink, k) for k in _RETRY_KEYS if getattr(sink, k) is not None}
    if retry:  # the policy the sink will build, with its defaults for the keys left out
        from streamem.sinks.retry import RetryPolicy

        try:
            RetryPolicy(**retry)
        except ConfigError as exc:
            raise _prefixed(where, exc) from exc


def _kafka_security(cfg: Config) -> None:
    from streamem.kafka.settings import KafkaSecurity

    s = cfg.source
    KafkaSecurity(security_protocol=s.security_protocol, sasl_mechanism=s.sasl_mechanism,
                  sasl_username=s.sasl_username,
                  sasl_password=s.sasl_password.get() if s.sasl_password else None,
                  ssl_cafile=s.ssl_cafile, ssl_certfile=s.ssl_certfile,
                  ssl_keyfile=s.ssl_keyfile).validate("source")


def _incidents(cfg: Config) -> None:
    from streamem.alerting.incidents import IncidentTracker

    a = cfg.alerting
    IncidentTracker(a.open_severity, a.resolve_severity, a.cooldown_seconds)


# where each detector argument comes from, for the path of its error ("alert_rate=2 must...")
_DETECTOR_ARGS = {**{f.name: f"model.{f.name}" for f in dataclasses.fields(ModelConfig)},
                  **{f.name: f"detector.{f.name}" for f in dataclasses.fields(DetectorConfig)},
                  "feature_names": "fields.features"}


def _detector(cfg: Config) -> None:
    from streamem.runtime.build import new_detector

    try:
        new_detector(cfg)  # exactly the detector ``run`` builds: cheap, nothing is fitted
    except (InvalidInputError, ValueError) as exc:
        arg = re.match(r"(\w+)=", str(exc))
        path = _DETECTOR_ARGS.get(arg.group(1) if arg else "", "detector")
        raise ConfigError(path, str(exc)) from exc


def _key_scope(cfg: Config) -> None:
    """``model.scope: key`` and its settings; ``fields.key`` as one field or a list."""
    from streamem.runtime.keying import key_idle_ttl

    m, key = cfg.model, cfg.fields.key
    if isinstance(key, tuple):
        if not key or not all(key) or len(set(key)) != len(key):
            raise ConfigError("fields.key", f"{list(key)!r}: a composite key lists distinct, "
                              "non-empty field names, e.g. [site, pump]")
    elif key == "":
        raise ConfigError("fields.key", "is empty; name the entity field, e.g. sensor")
    if m.scope == "key" and not key:
        raise ConfigError("model.scope", "scope key needs fields.key (one field, or a list "
                          "for a composite key); set it, or use scope global")
    if m.max_keys_in_memory < 1:
        raise ConfigError("model.max_keys_in_memory", f"{m.max_keys_in_memory} must be at "
                          "least 1, e.g. 100000 (about 350 bytes per key at d=4, K=2)")
    if m.scope == "key" and m.max_keys_in_memory < cfg.batch.max_events:
        raise ConfigError("model.max_keys_in_memory", f"{m.max_keys_in_memory} is below "
                          f"batch.max_events ({cfg.batch.max_events}): a batch may hold that "
                          "many distinct keys; raise it or lower batch.max_events")
    if not (_finite(m.key_prior_events) and m.key_prior_events >= 0):
        raise ConfigError("model.key_prior_events", f"{m.key_prior_events!r} must be 0 or "
                          "more pseudo-events, e.g. 10")
    key_idle_ttl(cfg)  # raises naming model.key_idle_ttl
    if m.scope == "key" and isinstance(m.half_life, str):
        raise ConfigError("model.half_life", f"{m.half_life!r} is in event time, which per-key "
                          "models do not support yet; give a number of events (e.g. 50000) "
                          "or use scope global")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


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
    need(s.poll_interval_ms >= 1, "source.poll_interval_ms",
         "must be at least 1 ms (200 is typical)")
    if s.type == "kafka":
        need(len(s.bootstrap_servers) > 0 and all(s.bootstrap_servers),
             "source.bootstrap_servers", "list at least one broker, e.g. [\"kafka:9092\"]")
        need(bool(s.group_id), "source.group_id", "required for source.type kafka")
        _kafka_security(cfg)
    need(len(cfg.fields.features) > 0, "fields.features",
         "list at least one feature name or dotted path, e.g. [temperature, pressure]")
    need(len(set(cfg.fields.features)) == len(cfg.fields.features), "fields.features",
         "contains a duplicate name; list each feature once")
    check_text_format(cfg)  # source.format/pattern/types, fields.template (streamem.parsing)
    check_categorical(cfg)  # fields.categorical (streamem.parsing.categorical)
    Rules.from_config(cfg.rules, cfg.fields.features)  # rules[i]: filters parse, features exist
    rule_names = [r.name for r in cfg.rules if r.name]
    dup = next((n for n in rule_names if rule_names.count(n) > 1), None)
    need(dup is None, "rules", f"the rule name {dup!r} is used twice; names label a metric")
    skew = cfg.fields.max_clock_skew_seconds
    need(skew is None or skew > 0, "fields.max_clock_skew_seconds",
         "must be a positive number of seconds (86400 is one day) or null for no bound")
    need(cfg.batch.max_events >= 1, "batch.max_events", "must be at least 1")
    need(cfg.batch.max_wait_ms >= 0, "batch.max_wait_ms", "must be 0 or more")
    m = cfg.model
    need(m.n_components == "auto" or int(m.n_components) >= 1, "model.n_components",
         "use a positive integer or auto")
    need(m.max_components >= 1, "model.max_components", "must be at least 1 (8 is typical)")
    need(m.random_state is None or m.random_state >= 0, "model.random_state",
         "must be a non-negative integer seed, or null")
    time_settings(cfg)  # model.half_life, temporal, seasonality; calendars
    need(m.reg_covar >= 0, "model.reg_covar", "must be 0 or more, e.g. 1e-6")
    need(m.scope != "partition" or s.type == "kafka", "model.scope",
         "partition scope needs source.type kafka; use global for files and stdin")
    _key_scope(cfg)
    _detector(cfg)  # the detector's own rules (alert_rate, warmup, regime_*, detrend_*, ...)
    _incidents(cfg)  # the incident tracker's own rules (severities, cooldown_seconds)
    names = set()
    for i, sink in enumerate(cfg.sinks):
        where = f"sinks[{i}]"
        validate_sink(sink, where)
        if sink.type == "kafka":
            need(s.type == "kafka", f"{where}.type",
                 "a kafka sink uses the source's Kafka settings; set source.type kafka")
        name = sink.name or sink.type
        need(name not in names, f"{where}.name",
             f"{name!r} is used by another sink; give each sink a distinct name")
        names.add(name)
    need(cfg.dead_letter.type != "kafka" or (s.type == "kafka" and bool(cfg.dead_letter.topic)),
         "dead_letter.topic", "a kafka dead-letter sink needs source.type kafka and a topic")
    need(cfg.dead_letter.type != "file" or bool(cfg.dead_letter.path), "dead_letter.path",
         "is empty; give the JSON-lines file for rejected events")
    c = cfg.checkpoint
    need(c.store != "directory" or bool(c.dir), "checkpoint.dir",
         "is empty; give the directory for snapshots, e.g. state")
    need(c.store != "kafka" or (s.type == "kafka" and bool(c.topic)), "checkpoint.topic",
         "the kafka state store needs source.type kafka and a compacted topic name")
    need(c.every_seconds > 0, "checkpoint.every_seconds", "must be positive")
    need(c.every_events >= 1, "checkpoint.every_events", "must be at least 1")
    need(c.keep >= 1, "checkpoint.keep", "keep at least 1 snapshot")
    need(0 <= cfg.metrics.port <= 65535, "metrics.port", "must be a TCP port (0-65535)")
    u = cfg.ui
    need(u.max_anomalies >= 1, "ui.max_anomalies", "must be at least 1, e.g. 1000")
    need(u.max_body_bytes >= 256, "ui.max_body_bytes", "must be at least 256, e.g. 16384")
    need(_finite(u.feedback_weight) and 0 < u.feedback_weight < 0.5, "ui.feedback_weight",
         "must be in (0, 0.5): the mixture weight a false positive is learned at, e.g. 0.02")
    need(_finite(u.feedback_suppress_seconds) and u.feedback_suppress_seconds >= 0,
         "ui.feedback_suppress_seconds",
         "must be 0 (off) or a positive number of seconds a false positive suppresses its "
         "key and feature, e.g. 3600")
    need(_finite(cfg.logging.status_interval_seconds) and cfg.logging.status_interval_seconds > 0,
         "logging.status_interval_seconds", "must be a positive number of seconds, e.g. 10")

