"""Graceful shutdown: SIGTERM drains, checkpoints, flushes and logs one summary line (JSON logs)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from daemon_testkit import inspect, make_stream, write_config


def test_sigterm_final_checkpoint_and_summary(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 3000, anomalies=(2500,))
    cfg = write_config(tmp_path, events, source={"follow": True, "poll_interval_ms": 20},
                       checkpoint={"every_events": 10**9, "every_seconds": 3600},
                       logging={"format": "json", "status_interval_seconds": 0.2})
    proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "anomalies.jsonl").exists():
        time.sleep(0.1)
    time.sleep(1.0)  # following the file's end now; no checkpoint was due yet
    assert proc.poll() is None, "a followed file must keep the daemon running"
    assert not (tmp_path / "state" / "global").exists() or not list(
        (tmp_path / "state" / "global").glob("*.snap"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert logs and all({"ts", "level", "logger", "msg"} <= set(d) for d in logs)
    msgs = [d["msg"] for d in logs]
    assert any(m.startswith("status: ") for m in msgs)
    assert any("received SIGTERM" in m for m in msgs)
    summary = [m for m in msgs if m.startswith("streamem stopped:")]
    assert len(summary) == 1 and "3000 events" in summary[0] and "1 checkpoints" in summary[0]
    state = inspect(tmp_path / "state")
    assert state["position"]["0"] == events.stat().st_size
    assert state["counters"]["events_seen"] == 3000
