"""The pipeline's event clock (which resolves incidents in replays and live runs) follows
the stream even through batches in which nothing is anomalous."""

from __future__ import annotations

import json

import numpy as np

from streamem.config import parse_config
from streamem.events import EventBatch
from streamem.features import FeatureExtractor
from streamem.runtime.build import new_detector
from streamem.runtime.lane import Lane
from streamem.runtime.pipeline import Pipeline


def _batch(rows: np.ndarray, t0: float, offset: int) -> EventBatch:
    payloads = [json.dumps({"a": float(r[0]), "b": float(r[1]), "ts": t0 + i, "k": "pump"})
                .encode() for i, r in enumerate(rows)]
    offsets = list(range(offset, offset + len(rows)))
    return EventBatch(payloads, offsets, [o + 1 for o in offsets], 0, "f")


def test_incident_resolves_after_a_quiet_stretch_without_watched_events() -> None:
    cfg = parse_config({
        "source": {"type": "stdin"},
        "fields": {"features": ["a", "b"], "timestamp": "ts", "key": "k"},
        "model": {"n_components": 1, "warmup": 200, "random_state": 0},
        "alerting": {"cooldown_seconds": 60},
    })
    lane = Lane("global", new_detector(cfg))
    pipe = Pipeline(cfg, FeatureExtractor(["a", "b"], timestamp="ts", key="k"), None, None,
                    None, lambda p: lane)
    rng = np.random.default_rng(0)
    pipe.process(_batch(rng.normal(size=(400, 2)), 0.0, 0))
    spike = np.array([[40.0, -40.0]])
    [out] = pipe.process(_batch(spike, 400.0, 400))
    assert out.anomalies and pipe.incidents.open_incidents()
    # a quiet stretch well past the cool-down, in batches with nothing even near the levels
    t, off = 401.0, 401
    for _ in range(5):
        quiet = rng.normal(scale=0.3, size=(50, 2))
        [o] = pipe.process(_batch(quiet, t, off))
        assert o.result is not None and (o.result.severity < cfg.alerting.resolve_severity).all()
        t, off = t + 50, off + 50
        pipe.tick()
    assert pipe.incidents.open_incidents() == []


def test_every_detector_key_of_the_config_reaches_the_detector() -> None:
    from dataclasses import fields

    from streamem.config import DetectorConfig

    values = {"alert_rate": 0.02, "protect_model": False, "regime_patience": 777,
              "regime_min_events": 55, "detrend_half_life": 7.0, "detrend_min_autocorr": 0.5,
              "smooth_window": 3, "cold_start": False}
    assert set(values) == {f.name for f in fields(DetectorConfig)}  # a new key needs a line here
    cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a", "b"]},
                        "detector": values})
    params = new_detector(cfg).to_state()["params"]
    assert {k: params[k] for k in values} == values
