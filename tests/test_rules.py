"""Operator rules: compiling the rules section, matching, and suppression in a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from streamem.alerting.rules import Rules
from streamem.config import parse_config
from streamem.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
FEATS = ["temperature", "pressure", "flow", "vibration.rms"]


@pytest.mark.parametrize(("rule", "path", "message"), [
    ({"action": "mute", "key": "a"}, "rules[0].action", "is not valid"),
    ({"action": "suppress", "feature": "nope"}, "rules[0].feature", "is not one of fields"),
    ({"action": "suppress"}, "rules[0]", "needs key, feature or when"),
    ({"action": "suppress", "when": "value < 3"}, "rules[0].when", "names no feature"),
    ({"action": "suppress", "when": "pressure >"}, "rules[0].when", "at the end"),
    ({"action": "skip_learning", "when": "severity > 90"}, "rules[0].when", "cannot use severity"),
])
def test_bad_rules_name_their_path(rule: dict[str, Any], path: str, message: str) -> None:
    doc = {"source": {"type": "stdin"}, "fields": {"features": FEATS}, "rules": [rule]}
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert err.value.path == path and message in err.value.message


def test_duplicate_rule_names_are_refused() -> None:
    rule = {"action": "suppress", "key": "a", "name": "x"}
    with pytest.raises(ConfigError, match="used twice"):
        parse_config({"source": {"type": "stdin"}, "fields": {"features": FEATS},
                      "rules": [rule, rule]})


def test_matching_first_rule_wins_globs_and_missing_values() -> None:
    rules = Rules.from_config([
        {"action": "suppress", "key": "pump-*", "feature": "flow", "when": "value > 50"},
        {"action": "suppress", "when": "severity < 80 and pressure >= 3"},
        {"action": "suppress", "key": "fan-1"},
    ], FEATS)
    X = np.array([[60, 3.0, 55.0, 1.0], [60, 3.0, np.nan, 1.0], [60, 2.0, 10.0, 1.0],
                  [60, 3.5, 10.0, 1.0], [60, 1.0, 99.0, 1.0]])
    keys = ["pump-2", "pump-2", "fan-1", None, "pumpkin"]
    sev = np.array([90.0, 90.0, 99.0, 76.0, 99.0])
    assert rules.matching("suppress", X, keys, sev).tolist() == [0, -1, 2, 1, -1]


def test_a_suppress_rule_keeps_a_key_out_of_the_sinks(tmp_path: Path) -> None:
    def run(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cfg = yaml.safe_load((REPO / "config.example.yaml").read_text())
        out = tmp_path / f"anomalies-{len(rules)}.jsonl"
        cfg["source"]["path"] = str(REPO / "examples" / "sensors.jsonl")
        cfg["sinks"] = [{"type": "file", "path": str(out)}]
        cfg["dead_letter"] = {"type": "file", "path": str(tmp_path / "dead.jsonl")}
        cfg["checkpoint"]["dir"] = str(tmp_path / f"state-{len(rules)}")
        cfg["metrics"]["enabled"] = False
        cfg["rules"] = rules
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        done = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(path)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in out.read_text().splitlines()]

    plain = run([])
    ruled = run([{"action": "suppress", "key": "pump-1", "name": "pump1-known"}])
    anomalies = [d for d in plain if d["type"] == "anomaly"]
    kept = [d for d in ruled if d["type"] == "anomaly"]
    assert any(d["key"] == "pump-1" for d in anomalies)
    assert [d["id"] for d in kept] == [d["id"] for d in anomalies if d["key"] != "pump-1"]
    assert not any(d.get("key") == "pump-1" for d in ruled)   # no incident for it either


def test_detector_never_learns_what_the_learn_mask_excludes() -> None:
    from streamem.scoring.detector import Detector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3))
    allow = rng.random(3000) > 0.3
    a, b = Detector(warmup=500, random_state=0), Detector(warmup=500, random_state=0)
    ra = a.process(X, learn=allow)
    b.process(X[allow])  # the same model as one that never saw the excluded rows
    assert not ra.learned[~allow].any()
    assert np.isfinite(ra.scores[~allow][-100:]).all()      # excluded rows are still scored
    assert a.n_learned_ == b.n_learned_
    np.testing.assert_allclose(a.model_.means_, b.model_.means_)
    with pytest.raises(Exception, match="one bool per row"):
        a.process(X[:5], learn=allow[:4])


def test_skip_learning_rule_in_the_daemon_keeps_events_out_of_the_model(tmp_path: Path) -> None:
    from streamem.config import parse_config

    def learned(rules: list[dict[str, Any]]) -> int:
        cfg = yaml.safe_load((REPO / "config.example.yaml").read_text())
        cfg["source"]["path"] = str(REPO / "examples" / "sensors.jsonl")
        cfg["sinks"] = []
        cfg["dead_letter"] = {"type": "file", "path": str(tmp_path / "dead.jsonl")}
        state = tmp_path / f"state-{len(rules)}"
        cfg["checkpoint"]["dir"] = str(state)
        cfg["metrics"]["enabled"] = False
        cfg["rules"] = rules
        parse_config(cfg)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        done = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(path)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        out = subprocess.run([sys.executable, "-m", "streamem", "inspect", str(state), "--json"],
                             capture_output=True, text=True, timeout=120)
        return int(json.loads(out.stdout)["counters"]["events_learned"])

    lines = (REPO / "examples" / "sensors.jsonl").read_text().splitlines()
    pump2 = sum(1 for ln in lines if '"pump-2"' in ln)
    base = learned([])
    skipped = learned([{"action": "skip_learning", "key": "pump-2"}])
    assert base - skipped >= pump2 - 20   # pump-2's events (but a few anomalies) are not learned
    assert skipped < base
