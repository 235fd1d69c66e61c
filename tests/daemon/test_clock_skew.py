"""Event time is capped against the wall clock (``fields.max_clock_skew_seconds``): one event
stamped far in the future used to pin its key's incident open for ever; now it is rejected
as ``bad_timestamp`` and the incidents of the stream open and resolve as usual."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from streamem.config import parse_config
from streamem.errors import ConfigError
from streamem.events import EventBatch
from streamem.features import FeatureExtractor
from streamem.runtime.build import new_detector
from streamem.runtime.lane import Lane
from streamem.runtime.pipeline import Pipeline

T0 = 1_700_000_000.0


def _batch(rows: np.ndarray, ts: list[float], offset: int) -> EventBatch:
    payloads = [json.dumps({"a": float(r[0]), "b": float(r[1]), "ts": t, "k": "pump"}).encode()
                for r, t in zip(rows, ts, strict=True)]
    offsets = list(range(offset, offset + len(rows)))
    return EventBatch(payloads, offsets, [o + 1 for o in offsets], 0, "f")


def _cfg(**fields: object) -> dict[str, object]:
    return {"source": {"type": "stdin"},
            "fields": {"features": ["a", "b"], "timestamp": "ts", "key": "k", **fields},
            "model": {"n_components": 1, "warmup": 200, "random_state": 0},
            "alerting": {"cooldown_seconds": 60}}


def test_a_far_future_event_is_rejected_and_cannot_pin_an_incident() -> None:
    cfg = parse_config(_cfg())
    lane = Lane("global", new_detector(cfg))
    fx = FeatureExtractor(["a", "b"], timestamp="ts", key="k",
                          max_clock_skew=cfg.fields.max_clock_skew_seconds)
    pipe = Pipeline(cfg, fx, None, None, None, lambda p: lane)
    rng = np.random.default_rng(0)
    pipe.process(_batch(rng.normal(size=(400, 2)), [T0 + i for i in range(400)], 0))
    pipe.tick()
    assert pipe.incidents.open_incidents() == []
    spike = np.array([[40.0, -40.0]])
    [out] = pipe.process(_batch(spike, [9.9e10], 400))
    assert [r.reason for r in out.decoded.rejected] == ["bad_timestamp"]
    assert "ahead of the wall clock" in out.decoded.rejected[0].detail
    assert out.anomalies == [] and pipe.incidents.open_incidents() == []
    pipe.tick()
    assert pipe.totals["rejected"] == 1
    [out] = pipe.process(_batch(spike, [T0 + 400], 401))  # a real spike opens an incident
    assert out.anomalies and pipe.incidents.open_incidents()
    t, off = T0 + 401, 402
    for _ in range(5):  # ... which resolves after a quiet stretch past the cool-down
        pipe.process(_batch(rng.normal(scale=0.3, size=(50, 2)), [t + i for i in range(50)],
                            off))
        t, off = t + 50, off + 50
        pipe.tick()
    assert pipe.incidents.open_incidents() == []


def test_the_skew_is_a_setting_measured_against_the_clock() -> None:
    now = time.time()
    near = json.dumps({"a": 1, "ts": now + 3000}).encode()
    fx = FeatureExtractor(["a"], timestamp="ts", max_clock_skew=3600)
    assert fx.decode([near]).kept == [0]
    assert [r.reason for r in FeatureExtractor(
        ["a"], timestamp="ts", max_clock_skew=60).decode([near]).rejected] == ["bad_timestamp"]
    off = FeatureExtractor(["a"], timestamp="ts", max_clock_skew=None)
    assert off.decode([b'{"a": 1, "ts": 9.9e10}']).kept == [0]
    frozen = FeatureExtractor(["a"], timestamp="ts", max_clock_skew=10, clock=lambda: 100.0)
    assert frozen.decode([b'{"a": 1, "ts": 110}', b'{"a": 1, "ts": 111}']).kept == [0]


def test_the_config_key_is_validated_and_defaults_to_one_day() -> None:
    assert parse_config(_cfg()).fields.max_clock_skew_seconds == 86_400
    assert parse_config(_cfg(max_clock_skew_seconds=None)).fields.max_clock_skew_seconds is None
    for bad in (0, -1, "soon"):
        with pytest.raises(ConfigError, match=r"fields\.max_clock_skew_seconds"):
            parse_config(_cfg(max_clock_skew_seconds=bad))
