"""The README's "Fleets" walk-through, run as written: ``examples/fleet.yaml`` (one model per
pump) over the shipped sample, ``inspect --entity`` on a pump, and ``replay`` with labels.
Rows missing a reading are scored on the others (not learned), never crash the keyed daemon."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from testkit.daemon import cli, read_jsonl

ROOT = Path(__file__).resolve().parents[2]


def test_the_fleet_example_runs_inspects_and_replays_as_the_readme_says(tmp_path: Path
                                                                       ) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    cfg = "examples/fleet.yaml"
    run = cli("run", "-c", cfg, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # the sample's 3 rows with a null temperature are scored, not learned; 2 bad lines rejected
    assert "3002 events (2988 learned, 9 anomalous, 2 rejected)" in run.stderr
    dead = read_jsonl(tmp_path / "fleet-dead-letter.jsonl")
    assert sorted(d["reason"].split(":")[0] for d in dead) == ["parse_error", "wrong_type"]
    anomalies = [a for a in read_jsonl(tmp_path / "fleet-anomalies.jsonl")
                 if a["type"] == "anomaly"]
    assert len(anomalies) == 9 and {a["key"] for a in anomalies} == {"pump-1", "pump-2",
                                                                      "pump-3"}

    out = cli("inspect", "--config", cfg, "--entity", "pump-2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("key 'pump-2' in state global: 1000 events, 3 anomalies, own")

    chk = cli("check-config", cfg, "--keys", "500000", cwd=tmp_path)
    assert "memory: about 39.0 MiB for 100,000 keys in memory (409 B per key" in chk.stdout

    rep = cli("replay", "examples/sensors.jsonl", "-c", cfg, "--labels", "label", "--json",
              "--no-progress", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    doc = json.loads(rep.stdout)
    assert doc["anomalous"] == 9 and doc["rejected"] == 2
    assert doc["metrics"]["precision"] == 1.0 and doc["metrics"]["recall"] == 1.0
