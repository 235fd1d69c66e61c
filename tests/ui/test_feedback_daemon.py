"""Feedback acted on by a real daemon (file source, HTTP API): a false positive is learned by
the running model, so the same pattern stops alarming on another key while the mirror pattern
still alarms; it opens a suppression for that key and feature, shown in /api/v1/status and
counted; and after a kill -9 the restarted daemon still knows it (saved with the checkpoint)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.daemon import make_stream, metrics_url, read_jsonl, scrape, write_config

from streamem.config import load_config
from streamem.runtime.daemon import Daemon
from streamem.state.codec import decode_snapshot

TOKEN = "fb-token-1"
N = 3000
FP = 2500  # the injected anomaly the operator calls a false positive (key pump-1)
WAIT = 60.0


def get(base: str, route: str) -> Any:
    with urllib.request.urlopen(f"{base}/api/v1/{route}", timeout=10) as resp:
        return json.loads(resp.read())


def verdict(base: str, anomaly_id: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}/api/v1/feedback", method="POST",
        data=json.dumps({"id": anomaly_id, "verdict": "false_positive"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def wait_events(base: str, n: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            s: dict[str, Any] = get(base, "status")
            if s.get("events_total", 0) >= n:
                return s
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the daemon did not reach {n} events"
        time.sleep(0.1)


def append(path: Path, template: dict[str, Any], rows: list[tuple[str, str, float]]) -> None:
    """Copies of ``template`` with a new id, key and pressure offset each."""
    with path.open("a") as fh:
        for i, (eid, key, dp) in enumerate(rows):
            ev = {**template, "id": eid, "sensor": key, "ts": template["ts"] + 1000 + i,
                  "pressure": template["pressure"] + dp}
            fh.write(json.dumps(ev) + "\n")


def stream(tmp: Path) -> tuple[Path, dict[str, Any]]:
    events = tmp / "events.jsonl"
    assert make_stream(events, N, anomalies=(FP,)) == [f"ev-{FP}"]
    template = json.loads(events.read_text().splitlines()[FP])
    return events, template


def config(tmp: Path, events: Path, port: int = 0) -> Path:
    return write_config(
        tmp, events, source={"follow": True, "poll_interval_ms": 50},
        metrics={"enabled": True, "port": port, "host": "127.0.0.1"},
        ui={"enabled": True, "token": "${FB_TOKEN}", "feedback_weight": 0.02,
            "feedback_suppress_seconds": 3600},
        checkpoint={"dir": str(tmp / "state"), "every_events": 200, "every_seconds": 0.5,
                    "keep": 3})


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Daemon, str, Path, dict[str, Any]]]:
    events, template = stream(tmp_path)
    daemon = Daemon(load_config(config(tmp_path, events), env={"FB_TOKEN": TOKEN}),
                    install_signal_handlers=False)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while daemon.bound_address is None:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        yield daemon, metrics_url(daemon), events, template
    finally:
        daemon.stop()
        thread.join(30)
    assert not thread.is_alive()


def test_false_positive_is_learned_and_suppresses_its_key_and_feature(
        running: tuple[Daemon, str, Path, dict[str, Any]], tmp_path: Path) -> None:
    _, base, events, template = running
    wait_events(base, N)
    flagged = {a["id"]: a for a in get(base, "anomalies?limit=1000")["anomalies"]}
    rec = flagged[f"ev-{FP}"]
    assert len(rec["x"]) == 4 and rec["top_features"][0]["name"] == "pressure"
    assert verdict(base, rec["id"])["stored"]["verdict"] == "false_positive"

    append(events, template, [
        *((f"rep-{i}", "pump-2", 0.0) for i in range(5)),  # the same pattern, another key
        ("mirror", "pump-2", -5.0),  # pressure as far below normal: never declared normal
        ("far-1", "pump-1", 1.5),  # further off: the model flags it, the suppression holds it
        ("far-0", "pump-0", 1.5),  # the same on a key without a suppression
    ])
    status = wait_events(base, N + 8)
    after = {a["id"]: a for a in get(base, "anomalies?limit=1000")["anomalies"]}
    assert not {f"rep-{i}" for i in range(5)} & set(after), "the learned pattern still alarms"
    assert "mirror" in after and "far-0" in after
    assert after["far-1"]["extra"]["suppressed_by"] == "feedback"
    assert "suppressed_by" not in after["far-0"]["extra"]

    fb = status["feedback"]
    assert fb["learned"] == 1 and fb["pending"] == 0 and fb["suppressed"] == 1
    assert [(s["key"], s["feature"]) for s in fb["suppressions"]] == [("pump-1", "pressure")]
    sent = {r["id"] for r in read_jsonl(tmp_path / "anomalies.jsonl") if r["type"] == "anomaly"}
    assert "far-1" not in sent and {"mirror", "far-0"} <= sent
    m = scrape(base)
    assert m[("streamem_feedback_total", (("verdict", "false_positive"),))] == 1
    assert m[("streamem_anomalies_suppressed_total", (("rule", "feedback"),))] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            env={**os.environ, "FB_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
                            stderr=log.open("a"))


def _snapshot_feedback(state: Path) -> dict[str, Any]:
    newest = sorted((state / "global").glob("*.snap"))[-1]
    return decode_snapshot(newest.read_bytes()).feedback


def test_kill9_after_the_checkpoint_keeps_the_verdict(tmp_path: Path) -> None:
    events, template = stream(tmp_path)
    port = _free_port()
    cfg, log = config(tmp_path, events, port), tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    proc = _start(cfg, log)
    try:
        wait_events(base, N)
        verdict(base, f"ev-{FP}")
        # normal events after the verdict: the lane learns it, then checkpoints
        append(events, json.loads(events.read_text().splitlines()[10]),
               [(f"n-{i}", "pump-0", 0.0) for i in range(300)])
        deadline = time.monotonic() + WAIT
        while not _snapshot_feedback(tmp_path / "state").get("applied"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(1.0)  # the page's history is written right after the snapshot
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert _snapshot_feedback(tmp_path / "state")["applied"] == [f"ev-{FP}"]

        proc = _start(cfg, log)
        wait_events(base, 0)  # up again (nothing new to read: it resumes at its checkpoint)
        assert get(base, "model")["verdicts"]["false_positive"] == 1
        append(events, template, [("rep-a", "pump-2", 0.0), ("rep-b", "pump-2", 0.0),
                                  ("mirror-a", "pump-2", -5.0)])
        deadline = time.monotonic() + WAIT
        while "mirror-a" not in {a["id"] for a in get(base, "anomalies")["anomalies"]}:
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        ids = {a["id"] for a in get(base, "anomalies")["anomalies"]}
        assert not {"rep-a", "rep-b"} & ids, "the restarted model forgot the false positive"
        assert get(base, "status")["feedback"]["pending"] == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
