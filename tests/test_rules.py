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

from streamem.config import parse_config
from streamem.errors import ConfigError
from streamem.rules import Rules

REPO = Path(__file__).resolve().parents[1]
FEATS = ["temperature", "pressure", "flow", "vibration.rms"]


@pytest.mark.parametrize(("rule", "path", "message"), [
    ({"action": "mute", "key": "a"}, "rules[0].action", "is not valid"),
    ({"action": "suppress", "feature": "nope"}, "rules[0].feature", "is not one of fields"),
    ({"action": "suppress"}, "rules[0]", "needs key, feature or when"),
    ({"action": "suppress", "when": "value < 3"}, "rules[0].when", "names no feature"),
    ({"action": "suppress", "when": "pressure >"}, "rules[0].when", "at the end"),
    ({"action": "skip_learning", "key": "a"}, "rules[0].action", "not available yet"),
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
