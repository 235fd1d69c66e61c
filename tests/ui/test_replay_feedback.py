"""``streamem replay --feedback``: verdicts are given as their anomalies are flagged, the
false positive is learned, and the report compares precision before and after."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from testkit.daemon import cli

from streamem.errors import ConfigError
from streamem.runtime.replay_feedback import load_verdicts

BENIGN = range(2000, 4000, 200)  # a harmless recurring pattern (a calibration run), label 0
REAL = range(2100, 4000, 200)  # real faults, label 1


def _stream(path: Path) -> None:
    rng = np.random.default_rng(3)
    with path.open("w") as fh:
        for i in range(4000):
            a = rng.normal(10.0, 1.0)
            ev = {"id": f"e{i}", "a": a, "b": 2.0 * a + rng.normal(0, 0.2), "label": 0}
            if i in BENIGN:
                ev["b"] += 3.0
            if i in REAL:
                ev["b"] -= 3.0
                ev["label"] = 1
            fh.write(json.dumps(ev) + "\n")


def test_a_false_positive_verdict_raises_precision(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    _stream(events)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "source": {"type": "file", "path": str(events)},
        "fields": {"features": ["a", "b"], "id": "id"},
        "model": {"warmup": 1000, "random_state": 0},
        "batch": {"max_events": 50},
        "dead_letter": {"type": "file", "path": str(tmp_path / "dead.jsonl")},
        "checkpoint": {"dir": str(tmp_path / "state")},
    }))
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_text(json.dumps({"id": "e2000", "verdict": "false_positive"}) + "\n")

    base = cli("replay", str(events), "-c", str(cfg), "--labels", "label", "--json",
               "--no-progress")
    assert base.returncode == 0, base.stderr
    out = cli("replay", str(events), "-c", str(cfg), "--labels", "label", "--json",
              "--no-progress", "--feedback", str(verdicts))
    assert out.returncode == 0, out.stderr
    m, m0 = json.loads(out.stdout)["metrics"], json.loads(base.stdout)["metrics"]
    assert m["verdicts_given"] == 1 and m["false_positives_learned"] == 1
    # before the verdict the benign pattern was the alarm; after it the real faults (10) and
    # chance alarms (alert_rate 1e-3 over 2000 events: about 2) are
    assert m["precision_before_feedback"] < 0.5
    assert m["precision_after_feedback"] >= 10 / (10 + 5)
    assert m["alarms_after_feedback"] <= 10 + 5
    print(json.dumps({"with": m, "without": m0}))
    assert m["precision"] > m0["precision"] + 0.2  # the run as a whole, against no verdicts
    assert m["recall"] >= m0["recall"] - 0.05


def test_a_bad_verdict_line_is_named(tmp_path: Path) -> None:
    p = tmp_path / "v.jsonl"
    p.write_text('{"id": "e1", "verdict": "false_positive"}\n{"id": "e2", "verdict": "maybe"}\n')
    with pytest.raises(ConfigError, match="line 2"):
        load_verdicts(p)
