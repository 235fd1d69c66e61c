"""The quickstart's promise: the shipped example config over the shipped sample flags exactly
the injected anomalies (README, first screen). Guards the library defaults as seen by a newcomer."""

from __future__ import annotations

from pathlib import Path

from streamem.config import load_config
from streamem.runtime.replay import replay

REPO = Path(__file__).resolve().parents[2]


def test_example_config_flags_exactly_the_labelled_anomalies_of_the_sample() -> None:
    cfg = load_config(REPO / "config.example.yaml", env={})
    res = replay(str(REPO / "examples" / "sensors.jsonl"), cfg, labels="label", progress=False)
    assert res.labels is not None
    assert int(res.labels.sum()) == 9
    assert int(res.is_anomaly.sum()) == 9
    assert res.metrics["precision"] == 1.0 and res.metrics["recall"] == 1.0
    assert res.totals["rejected"] == 2  # the sample's two deliberately broken lines
