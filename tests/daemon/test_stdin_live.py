"""A live stdin stream (``tail -f app.log | streamem run``): events are scored while the pipe
stays open and idle, and SIGTERM stops an idle daemon gracefully.

Before the fix, stdin was read with a blocking ``read1``: the last partial batch waited for
more input indefinitely (an anomaly could sit unscored for hours) and SIGTERM on an idle pipe
hung the daemon, since the read was retried after the signal handler.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from testkit.daemon import inspect, make_stream, write_config


def test_idle_stdin_is_scored_and_sigterm_stops_the_daemon(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    ids = make_stream(events, 1300, anomalies=(1290,))  # the anomaly is in a partial batch
    cfg = write_config(tmp_path, events, source={"type": "stdin"},
                       batch={"max_events": 256, "max_wait_ms": 50},
                       checkpoint={"every_events": 10**9, "every_seconds": 3600},
                       logging={"format": "json", "status_interval_seconds": 0.2})
    proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(events.read_bytes())
    proc.stdin.flush()  # ... and keep the pipe open, idle
    anomalies = tmp_path / "anomalies.jsonl"
    deadline = time.monotonic() + 60
    got: list[str] = []
    while time.monotonic() < deadline and ids[0] not in got:
        time.sleep(0.1)
        if anomalies.exists():
            got = [json.loads(line).get("id", "") for line in anomalies.read_text().splitlines()]
    assert ids[0] in got, "the anomaly in the last, partial batch was not in the file sink"
    assert proc.poll() is None, "an open stdin must keep the daemon running"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)  # before the fix: hung here
    assert proc.returncode == 0, err
    msgs = [json.loads(line)["msg"] for line in err.decode().splitlines()
            if line.startswith("{")]
    summary = [m for m in msgs if m.startswith("streamem stopped:")]
    assert len(summary) == 1 and "1300 events" in summary[0], summary
    assert inspect(tmp_path / "state")["counters"]["events_seen"] == 1300


def test_stdin_end_of_input_finishes_the_run(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 1500)
    cfg = write_config(tmp_path, events, source={"type": "stdin"})
    with events.open("rb") as fh:
        out = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                             stdin=fh, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert inspect(tmp_path / "state")["counters"]["events_seen"] == 1500
