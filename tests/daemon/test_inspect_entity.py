"""``streamem inspect --config CFG --entity K``: one key's own model, read from the key store
a keyed daemon left, in the features' own units; unknown keys and wrong scopes are refused
with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from testkit.daemon import FEATURES, cli, write_config


def _fleet(path: Path) -> dict[str, np.ndarray]:
    """Three pumps, each at its own level, 1,500 events each."""
    rng = np.random.default_rng(3)
    levels = {"pump-a": np.array([10.0, 50.0, 5.0, 0.5]),
              "pump-b": np.array([40.0, 20.0, 9.0, 1.5]),
              "pump-c": np.array([-5.0, 80.0, 1.0, 0.1])}
    with path.open("w") as fh:
        for i in range(4500):
            key = list(levels)[i % 3]
            x = levels[key] + rng.normal(0.0, 0.5, size=4)
            fh.write(json.dumps({"id": f"e{i}", "ts": 1_700_000_000 + i, "sensor": key,
                                 "temperature": x[0], "pressure": x[1], "flow": x[2],
                                 "vibration": {"rms": x[3]}}) + "\n")
    return levels


def test_inspect_entity_shows_the_keys_own_model(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    levels = _fleet(events)
    cfg = write_config(tmp_path, events, model={"scope": "key", "warmup": 300,
                                                "random_state": 0})
    assert cli("run", "-c", str(cfg)).returncode == 0
    out = cli("inspect", "--config", str(cfg), "--entity", "pump-b", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["key"] == "pump-b" and info["lane"] == "global" and info["state"] == "own"
    assert info["events"] == 1500 and info["features"] == FEATURES
    w = np.array(info["weights"])
    assert np.isclose(w.sum(), 1.0)
    mean = (w[:, None] * np.array(info["means"])).sum(axis=0)  # the key's own level
    assert np.allclose(mean, levels["pump-b"], atol=0.3)
    assert all(0.05 < s < 2.0 for row in info["stds"] for s in row)
    text = cli("inspect", "--config", str(cfg), "--entity", "pump-c")
    assert text.returncode == 0 and "key 'pump-c' in state global: 1500 events" in text.stdout

    unknown = cli("inspect", "--config", str(cfg), "--entity", "pump-z")
    assert unknown.returncode != 0
    assert "'pump-z' is not in lane 'global'" in unknown.stderr and "/api/v1/keys" in unknown.stderr


def test_inspect_entity_refuses_a_config_without_key_scope(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    cfg = write_config(tmp_path, events)
    out = cli("inspect", "--config", str(cfg), "--entity", "pump-a")
    assert out.returncode == 2 and "model.scope is 'global'" in out.stderr
    no_cfg = cli("inspect", str(tmp_path), "--entity", "pump-a")
    assert no_cfg.returncode == 2 and "needs --config" in no_cfg.stderr
    keyed = write_config(tmp_path, events, model={"scope": "key"})
    missing = cli("inspect", "--config", str(keyed), "--entity", "pump-a")
    assert missing.returncode != 0 and "has no key checkpoint yet" in missing.stderr
