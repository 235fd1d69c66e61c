"""Shutdown: SIGTERM drains, checkpoints, flushes and logs one summary line (JSON logs); a
second signal ends the process at once (exit 130)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from testkit.daemon import inspect, make_stream, write_config
from testkit.sinks import Receiver


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


def test_second_sigint_exits_130_at_once_even_with_a_slow_webhook(tmp_path: Path,
                                                                  receiver: Receiver) -> None:
    """The first SIGINT starts the graceful path, which waits for a webhook peer that answers
    in 20 s (about 28 s in all); the second one ends the process within a few seconds, exit
    130. What was not durable is replayed from the last checkpoint."""
    receiver.set("slow", delay=20.0)
    events = tmp_path / "events.jsonl"
    make_stream(events, 3000, anomalies=tuple(range(1500, 3000, 100)))
    cfg = write_config(tmp_path, events, source={"follow": True, "poll_interval_ms": 20},
                       sinks=[{"type": "webhook", "url": receiver.url + "/hook",
                               "timeout_seconds": 10, "max_retries": 0,
                               "cooldown_seconds": 0}])
    proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.05)
        assert receiver.requests, "the daemon never reached the webhook"
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None, "the graceful path waits for the slow peer"
        proc.send_signal(signal.SIGINT)
        second = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - second
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert took <= 5.0, f"exit took {took:.1f} s after the second SIGINT"
    assert "interrupted" in err
