"""The ``aggregate:`` section: documented in config.example.yaml, loaded, and checked."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from streamem.config.aggregate import (
    AggregateConfig,
    AggregateFeatureConfig,
    aggregator,
    parse_aggregate,
)
from streamem.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def _example_block() -> str:
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index(next(ln for ln in lines if ln.startswith("# aggregate:")))
    block = []
    for ln in lines[start:]:
        if not ln.startswith("#"):
            break
        block.append(ln[2:])
    return "\n".join(block)


def test_every_key_of_the_section_is_documented_in_the_example() -> None:
    block = _example_block()
    for cls in (AggregateConfig, AggregateFeatureConfig):
        for f in dataclasses.fields(cls):
            assert re.search(rf"^\s*(-\s*\{{?)?.*\b{f.name}:", block, re.MULTILINE), f.name


def test_the_example_section_loads_and_makes_its_aggregator() -> None:
    data = yaml.safe_load(_example_block())["aggregate"]
    cfg = parse_aggregate(data)
    assert cfg.bucket_seconds == 60.0 and cfg.lateness_seconds == 30.0
    assert cfg.by == ("service",) and len(cfg.features) == 6
    agg = aggregator(cfg)
    assert agg.columns[:5] == ("requests", "errors_5xx", "p95_ms", "clients", "bytes")
    assert agg.columns[-1] == "templates[other]" and len(agg.columns) == 5 + 21
    out, rej = agg.add([{"service": "web", "status": 503, "request_time": 0.2,
                         "remote_addr": "10.0.0.1", "body_bytes_sent": 10, "template": 4}],
                       [90.0], ["a line"])
    assert rej == [] and len(out) == 0
    assert agg.flush().evidence(0)["key"] == {"service": "web"}


BASE = {"bucket_span": "1m", "features": [{"name": "requests", "fn": "count"}]}


@pytest.mark.parametrize(("change", "path", "fix"), [
    ({"bucket_span": "5 minutes"}, "aggregate.bucket_span", "not a duration"),
    ({"bucket_span": "500ms"}, "aggregate.bucket_span", "use 1s or more"),
    ({"allowed_lateness": "-1s"}, "aggregate.allowed_lateness", "not a duration"),
    ({"allowed_lateness": "2h"}, "aggregate.allowed_lateness", "widen bucket_span"),
    ({"by": ["svc", "svc"]}, "aggregate.by[1]", "listed twice"),
    ({"by": [""]}, "aggregate.by[0]", "name a record field"),
    ({"features": []}, "aggregate.features", "at least one feature"),
    ({"max_keys": 0}, "aggregate.max_keys", "from 1"),
    ({"max_samples": -1}, "aggregate.max_samples", "from 0 to 100"),
    ({"emit_empty": "yes"}, "aggregate.emit_empty", "true or false"),
    ({"bucketspan": "1m"}, "aggregate.bucketspan", "did you mean 'bucket_span'"),
    ({"features": [{"name": "a", "fn": "count"}, {"name": "a", "fn": "sum", "field": "x"}]},
     "aggregate.features[1].name", "its own name"),
    ({"features": [{"name": "a", "fn": "count", "where": "status >="}]},
     "aggregate.features[0].where", "expected a value"),
    ({"features": [{"name": "a", "fn": "count", "where": "x in [1,"}]},
     "aggregate.features[0].where", "expected a value"),
    ({"features": [{"name": "a", "fn": "avg", "field": "x"}]},
     "aggregate.features[0].fn", "use one of"),
    ({"features": [{"name": "a", "fn": "quantile", "field": "x", "q": "high"}]},
     "aggregate.features[0].q", "expected a number"),
    ({"features": [{"fn": "count"}]}, "aggregate.features[0].name", "required"),
    ({"features": "count"}, "aggregate.features", ""),
])
def test_a_bad_section_names_the_yaml_path_and_the_fix(change, path, fix) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_aggregate({**BASE, **change})
    assert str(exc.value).startswith(path), str(exc.value)
    assert fix in str(exc.value)


def test_the_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="aggregate: must be a mapping"):
        parse_aggregate(["bucket_span"])
