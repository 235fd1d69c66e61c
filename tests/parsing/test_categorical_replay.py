"""``streamem replay`` of a JSON access log with ``fields.categorical``: a new method is
flagged and its anomaly record names the value and its probability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from testkit.daemon import cli, read_jsonl

N, PURGE_AT = 4000, 3500


def _log(path: Path) -> None:
    rng = np.random.default_rng(0)
    with path.open("w") as fh:
        for i in range(N):
            method = str(rng.choice(["GET", "GET", "GET", "POST", "HEAD"]))
            uri = str(rng.choice(["/", "/api/items", "/api/cart", "/static/app.js"]))
            if i == PURGE_AT:
                method, uri = "PURGE", "/admin/cache"
            fh.write(json.dumps({
                "id": f"r{i}", "ts": 1_700_000_000 + i, "method": method, "path": uri,
                "status_class": str(rng.choice(["2xx"] * 9 + ["3xx"])),
                "request_time": round(float(rng.lognormal(-3, 0.3)), 5),
                "bytes": int(rng.normal(5000, 300))}) + "\n")


def test_a_new_method_on_an_admin_path_is_flagged_and_named(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    _log(log)
    cfg = {"source": {"type": "file", "path": str(log)},
           "fields": {"features": ["request_time", "bytes"], "timestamp": "ts", "id": "id",
                      "categorical": ["method", "path", "status_class"]},
           "model": {"warmup": 1000, "random_state": 0},
           "detector": {"alert_rate": 0.001},
           "sinks": [{"type": "file", "path": str(tmp_path / "anomalies.jsonl")}],
           "metrics": {"enabled": False, "port": 0}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = cli("replay", str(log), "-c", str(path), "--json", "--no-progress", "--deliver")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["events"] == N
    records = read_jsonl(tmp_path / "anomalies.jsonl")
    by_id = {r["id"]: r for r in records}
    assert "r3500" in by_id, sorted(by_id)
    assert len(records) <= 12  # about alert_rate of the 3000 scored events, plus the PURGE
    named = {f["name"]: f for f in by_id["r3500"]["top_features"] if "category" in f}
    assert named["method"]["category"] == "PURGE" and named["method"]["probability"] < 1e-3
    assert named["path"]["category"] == "/admin/cache"
