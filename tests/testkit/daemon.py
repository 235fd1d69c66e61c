"""Test kit of the daemon tests: generated streams, configs, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

FEATURES = ["temperature", "pressure", "flow", "vibration.rms"]


def make_stream(path: Path, n: int, anomalies: tuple[int, ...] = (), seed: int = 0) -> list[str]:
    """Write ``n`` JSON-lines events (two correlated operating modes); the events at the
    indices in ``anomalies`` get a pressure far off its correlation with flow. Returns the
    event ids of the injected anomalies."""
    rng = np.random.default_rng(seed)
    ids = []
    with path.open("w") as fh:
        for i in range(n):
            mode = (i // 700) % 2
            flow = rng.normal(40.0 + 20.0 * mode, 2.0)
            event: dict[str, Any] = {
                "id": f"ev-{i}",
                "ts": 1_700_000_000 + i,
                "sensor": f"pump-{i % 3}",
                "temperature": round(55.0 + 0.3 * flow + rng.normal(0, 0.8), 4),
                "pressure": round(1.5 + 0.04 * flow + rng.normal(0, 0.05), 5),
                "flow": round(flow, 4),
                "vibration": {"rms": round(abs(rng.normal(0.8 + 0.01 * flow, 0.05)), 5)},
            }
            if i in anomalies:
                event["pressure"] += 2.5
                ids.append(event["id"])
            fh.write(json.dumps(event) + "\n")
    return ids


def write_config(tmp: Path, events: Path, **overrides: Any) -> Path:
    """A config reading ``events`` with state, sinks and dead letters under ``tmp``."""
    cfg: dict[str, Any] = {
        "source": {"type": "file", "path": str(events)},
        "fields": {"features": FEATURES, "timestamp": "ts", "key": "sensor", "id": "id"},
        "batch": {"max_events": 256},
        "model": {"n_components": 2, "warmup": 1000, "half_life": 20000, "random_state": 0},
        "detector": {"alert_rate": 0.001},
        "sinks": [{"type": "file", "path": str(tmp / "anomalies.jsonl")}],
        "dead_letter": {"type": "file", "path": str(tmp / "dead.jsonl")},
        "checkpoint": {"dir": str(tmp / "state"), "every_events": 2000, "keep": 3},
        "metrics": {"enabled": False, "port": 0},
        "logging": {"status_interval_seconds": 1},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m streamem ARGS`` (in ``cwd``) and capture its output."""
    return subprocess.run([sys.executable, "-m", "streamem", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          cwd=cwd)


def inspect(state_dir: Path) -> dict[str, Any]:
    """``streamem inspect STATE_DIR --json`` as a dict."""
    out = cli("inspect", str(state_dir), "--json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of ``path``."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metrics_url(daemon: Any) -> str:
    """``http://host:port`` of a running daemon's metrics server (its ``bound_address``)."""
    assert daemon.bound_address is not None, "the daemon's metrics server is not up"
    host, port = daemon.bound_address
    return f"http://{host}:{port}"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET url/metrics`` as ``{(sample name, sorted labels): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def run_with_kills(start: Callable[[], subprocess.Popen[bytes]],
                   kill: Callable[[subprocess.Popen[bytes]], bool], *, max_kills: int,
                   attempts: int) -> int:
    """Start the daemon again and again: ``kill(proc)`` SIGKILLs it at some moment and says
    True (up to ``max_kills`` times), or says False once the input ran out, and then the run
    must end with exit 0. Returns the number of kills; fails when it never finishes."""
    kills = 0
    for _ in range(attempts):
        proc = start()
        if kills < max_kills and kill(proc):
            kills += 1
            continue
        assert proc.wait(300) == 0, proc.stderr.read().decode() if proc.stderr else ""
        return kills
    raise AssertionError("the daemon never finished")
