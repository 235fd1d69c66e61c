"""The ``aggregate:`` section: events to one feature vector per key and event-time bucket.

:func:`parse_aggregate` builds :class:`AggregateConfig` from the section's YAML data (types
and unknown keys by :func:`streamem.config.build.build`) and checks its rules
(:func:`check_aggregate`); :func:`aggregator` makes the
:class:`~streamem.aggregate.Aggregator` it describes. Every error names the YAML path and
the fix. The keys are documented in ``config.example.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from streamem.config.build import build
from streamem.config.durations import parse_duration
from streamem.errors import ConfigError

if TYPE_CHECKING:
    from streamem.aggregate import Aggregator, FeatureSpec
    from streamem.config.sections import Config

__all__ = ["AggregateConfig", "AggregateFeatureConfig", "aggregator", "bucket_columns",
           "check_aggregate", "parse_aggregate", "with_bucket_features"]

MAX_FEATURES = 64


@dataclass(frozen=True)
class AggregateFeatureConfig:
    """``aggregate.features[i]``: one feature of each bucket."""

    name: str
    fn: Literal["count", "sum", "mean", "min", "max", "quantile", "distinct_count",
                "count_by"]
    field: str | None = None
    where: str | None = None
    q: float | None = None
    top: int | None = None


@dataclass(frozen=True)
class AggregateConfig:
    """``aggregate``: tumbling event-time buckets (durations as in
    :mod:`streamem.config.durations`)."""

    bucket_span: str = "1m"
    by: tuple[str, ...] = ()
    allowed_lateness: str = "0s"
    emit_empty: bool = True
    max_keys: int = 10_000
    max_samples: int = 3
    features: tuple[AggregateFeatureConfig, ...] = ()

    @property
    def bucket_seconds(self) -> float:
        """``bucket_span`` in seconds."""
        return parse_duration(self.bucket_span, "aggregate.bucket_span")

    @property
    def lateness_seconds(self) -> float:
        """``allowed_lateness`` in seconds."""
        return parse_duration(self.allowed_lateness, "aggregate.allowed_lateness",
                              allow_zero=True)


def _specs(cfg: AggregateConfig, path: str) -> list[FeatureSpec]:
    from streamem.aggregate import FeatureSpec

    return [FeatureSpec(f.name, f.fn, f.field, f.where, f.q, f.top,
                        path=f"{path}.features[{i}]") for i, f in enumerate(cfg.features)]


def check_aggregate(cfg: AggregateConfig, path: str = "aggregate") -> None:
    """The rules of the section.

    Raises
    ------
    ConfigError
        The first rule broken, with the YAML path and the fix.
    """
    span = parse_duration(cfg.bucket_span, f"{path}.bucket_span")
    if span < 1.0:
        raise ConfigError(f"{path}.bucket_span", f"{cfg.bucket_span!r} is under 1s; use 1s "
                          "or more, e.g. 1m")
    late = parse_duration(cfg.allowed_lateness, f"{path}.allowed_lateness", allow_zero=True)
    if late > 100 * span:
        raise ConfigError(f"{path}.allowed_lateness", f"{cfg.allowed_lateness!r} is over 100 "
                          f"buckets of {cfg.bucket_span}: that many buckets stay open; lower "
                          "it or widen bucket_span")
    for i, f in enumerate(cfg.by):
        if not f.strip():
            raise ConfigError(f"{path}.by[{i}]", "an empty field name; name a record field")
        if f in cfg.by[:i]:
            raise ConfigError(f"{path}.by[{i}]", f"{f!r} is listed twice; remove one")
    if not cfg.features:
        raise ConfigError(f"{path}.features", "empty; give at least one feature, e.g. "
                          "- {name: requests, fn: count}")
    if len(cfg.features) > MAX_FEATURES:
        raise ConfigError(f"{path}.features", f"{len(cfg.features)} features; use at most "
                          f"{MAX_FEATURES}")
    if not 1 <= cfg.max_keys <= 1 << 20:
        raise ConfigError(f"{path}.max_keys", f"{cfg.max_keys} must be from 1 to {1 << 20}")
    if not 0 <= cfg.max_samples <= 100:
        raise ConfigError(f"{path}.max_samples", f"{cfg.max_samples} must be from 0 to 100")
    seen: dict[str, int] = {}
    for i, spec in enumerate(_specs(cfg, path)):
        for c in spec.columns:
            if c in seen:
                raise ConfigError(f"{path}.features[{i}].name", f"{spec.name!r} is also "
                                  f"features[{seen[c]}]; give each feature its own name")
            seen[c] = i


def parse_aggregate(data: Any, env: Mapping[str, str] | None = None,
                    path: str = "aggregate") -> AggregateConfig:
    """Build and check the section from its YAML data.

    Examples
    --------
    >>> cfg = parse_aggregate({"bucket_span": "1m", "allowed_lateness": "30s",
    ...     "features": [{"name": "requests", "fn": "count"},
    ...                  {"name": "errors_5xx", "fn": "count", "where": "status >= 500"}]})
    >>> cfg.bucket_seconds, cfg.lateness_seconds, aggregator(cfg).columns
    (60.0, 30.0, ('requests', 'errors_5xx'))
    >>> parse_aggregate({"bucket_span": "1m", "features": [{"name": "p", "fn": "quantile",
    ...                  "field": "t"}]})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: aggregate.features[0].q: required for fn quantile; ...
    """
    if not isinstance(data, Mapping):
        raise ConfigError(path, "must be a mapping with bucket_span and features; see "
                          "config.example.yaml")
    cfg: AggregateConfig = build(AggregateConfig, dict(data), path, env or {})
    check_aggregate(cfg, path)
    return cfg


def aggregator(cfg: AggregateConfig) -> Aggregator:
    """The :class:`~streamem.aggregate.Aggregator` of a checked section."""
    from streamem.aggregate import Aggregator

    return Aggregator(_specs(cfg, "aggregate"), cfg.bucket_seconds, by=cfg.by,
                      allowed_lateness=cfg.lateness_seconds, emit_empty=cfg.emit_empty,
                      max_keys=cfg.max_keys, max_samples=cfg.max_samples)


def bucket_columns(cfg: AggregateConfig) -> tuple[str, ...]:
    """The columns each bucket has, in order (a ``count_by`` feature has ``top + 1``)."""
    return tuple(c for spec in _specs(cfg, "aggregate") for c in spec.columns)


def with_bucket_features(cfg: Config) -> Config:
    """``cfg`` whose ``fields.features`` are the bucket columns when it has ``aggregate:``.

    With ``aggregate:`` the model scores one vector per bucket, so its features are the
    bucket columns; ``fields.features`` may be omitted, and if given must list exactly them.

    Raises
    ------
    ConfigError
        A rule of the section is broken, or ``fields.features`` lists other names.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin", "format": "nginx"},
    ...     "aggregate": {"bucket_span": "10s", "features": [{"name": "n", "fn": "count"}]}})
    >>> cfg.fields.features
    ('n',)
    >>> parse_config({"source": {"type": "stdin", "format": "nginx"}, "fields": {
    ...     "features": ["x"]}, "aggregate": {"features": [{"name": "n", "fn": "count"}]}})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: fields.features: ['x'] but with aggregate: the model's ...
    """
    agg = cfg.aggregate
    if agg is None:
        return cfg
    check_aggregate(agg)
    columns = bucket_columns(agg)
    f = cfg.fields
    if f.features and tuple(f.features) != columns:
        raise ConfigError("fields.features", f"{list(f.features)} but with aggregate: the "
                          f"model's features are the bucket columns {list(columns)}; omit "
                          "fields.features or list exactly those")
    fmt_time = _format_timestamp(cfg)
    if not (f.timestamp or fmt_time):
        raise ConfigError("fields.timestamp", "required with aggregate: (buckets are in "
                          "event time); name the event-time field, or use a text format "
                          "preset that has one (nginx, apache, syslog)")
    key = f.key
    if cfg.model.scope == "key":  # one model per bucket key: the key fields are ``by``
        by = agg.by[0] if len(agg.by) == 1 else agg.by
        if not agg.by:
            raise ConfigError("aggregate.by", "model.scope key with aggregate: needs the "
                              "bucket key fields; list them, e.g. by: [service]")
        if key is not None and key != by:
            raise ConfigError("fields.key", f"{key!r} but with aggregate: the key of a bucket "
                              f"is aggregate.by {list(agg.by)}; omit fields.key")
        key = by
    return dataclasses.replace(cfg, fields=dataclasses.replace(f, features=columns, key=key))


def _format_timestamp(cfg: Config) -> str | None:
    """The timestamp field a text format sets (None for jsonl and csv)."""
    from streamem.parsing import PRESETS

    s = cfg.source
    if s.format == "regex":
        return "(regex)" if s.types and any(v not in ("int", "float", "str")
                                            for v in s.types.values()) else None
    preset = PRESETS.get(s.format)
    return None if preset is None else getattr(preset, "timestamp", None)
