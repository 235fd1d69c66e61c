"""A failed write never lets the checkpoint move past it: real daemon, real file source, real
unwritable targets (``/dev/full``, a file size limit, stdout on ``/dev/full``, a dead-letter
file that cannot grow).

The daemon holds the checkpoint back, retries with backoff, reports it on ``/readyz`` and in
``streamem_sinks_blocked_seconds``, and either carries on when the target is fixed or exits 1
after ``checkpoint.sinks_failure_timeout_seconds``; a restart replays from the last
checkpoint, so every anomaly of an uninterrupted run reaches the sink (at least once).
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from testkit.daemon import cli, inspect, make_stream, read_jsonl, write_config
from testkit.sinks import Receiver

ANOMALIES = tuple(range(1500, 6000, 150))
N_EVENTS = 6000


def stream(tmp: Path) -> Path:
    events = tmp / "events.jsonl"
    make_stream(events, N_EVENTS, anomalies=ANOMALIES)
    return events


def anomaly_ids(path: Path) -> set[str]:
    return {d["id"] for d in read_jsonl(path) if d["type"] == "anomaly"}


def reference(tmp: Path, events: Path) -> set[str]:
    ref = tmp / "ref"
    ref.mkdir()
    out = cli("run", "-c", str(write_config(ref, events, checkpoint={"every_events": 500})))
    assert out.returncode == 0, out.stderr
    ids = anomaly_ids(ref / "anomalies.jsonl")
    assert len(ids) >= len(ANOMALIES) - 2
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def gauge(base: str, name: str) -> float | None:
    status, text = get(base + "/metrics")
    for line in text.splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_for(condition: Any, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_dev_full_under_the_file_sink_exits_1_and_a_restart_loses_nothing(
        tmp_path: Path) -> None:
    events = stream(tmp_path)
    expected = reference(tmp_path, events)
    run = tmp_path / "run"
    run.mkdir()
    broken = write_config(run, events, sinks=[{"type": "file", "path": "/dev/full"}],
                          checkpoint={"every_events": 500, "sinks_failure_timeout_seconds": 3})
    out = cli("run", "-c", str(broken))
    assert out.returncode == 1, out.stderr[-3000:]
    assert "No space left on device" in out.stderr
    assert "sinks_failure_timeout_seconds" in out.stderr
    fixed = write_config(run, events, checkpoint={"every_events": 500})
    again = cli("run", "-c", str(fixed))
    assert again.returncode == 0, again.stderr[-3000:]
    assert anomaly_ids(run / "anomalies.jsonl") == expected


def test_stdout_on_dev_full_exits_1_and_a_restart_loses_nothing(tmp_path: Path) -> None:
    events = stream(tmp_path)
    expected = reference(tmp_path, events)
    run = tmp_path / "run"
    run.mkdir()
    cfg = write_config(run, events, sinks=[{"type": "stdout"}],
                       checkpoint={"every_events": 500, "sinks_failure_timeout_seconds": 3})
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=180)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "sink stdout" in proc.stderr
    again = cli("run", "-c", str(cfg))
    assert again.returncode == 0, again.stderr[-3000:]
    ids = {json.loads(line)["id"] for line in again.stdout.splitlines()
           if line.startswith("{") and json.loads(line)["type"] == "anomaly"}
    assert ids == expected


def test_file_size_limit_mid_run_blocks_then_recovers_in_place(tmp_path: Path) -> None:
    """Lines stop fitting half-way through a run (RLIMIT_FSIZE); the daemon stops reading,
    shows it on /readyz and the metrics, and carries on once the limit is lifted: no
    anomaly lost, no line torn, exit 0."""
    events = stream(tmp_path)
    expected = reference(tmp_path, events)
    run = tmp_path / "run"
    run.mkdir()
    port = free_port()
    cfg = write_config(run, events, checkpoint={"every_events": 500},
                       metrics={"enabled": True, "host": "127.0.0.1", "port": port})
    # the output holds old lines already; a few more anomaly lines fit under the limit,
    # while the snapshots (new files of about 140 kB) and the dead letters stay below it
    padding = b'{"type":"padding"}\n' * 12_000
    (run / "anomalies.jsonl").write_bytes(padding)
    limit = len(padding) + 6000

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    log = run / "stderr.log"
    with log.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                                stderr=err_file, preexec_fn=cap)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: "sink failing" in get(base + "/readyz")[1]), \
            get(base + "/readyz")
        status, text = get(base + "/readyz")
        assert status == 503 and "File too large" in text, text
        assert wait_for(lambda: (gauge(base, "streamem_sinks_blocked_seconds") or 0) > 1.0)
        size = (run / "anomalies.jsonl").stat().st_size
        assert size <= limit
        time.sleep(1.0)
        assert proc.poll() is None  # retrying, not exiting (the default timeout is 300 s)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 0, err[-3000:]
    assert "sinks durable again" in err
    lines = (run / "anomalies.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # nothing torn by the short write
    assert anomaly_ids(run / "anomalies.jsonl") == expected


def test_dead_letter_file_that_cannot_grow_holds_the_checkpoint(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 3000, anomalies=(2500,))
    with events.open("a") as fh:
        fh.writelines(f"not json {i}\n" for i in range(50))
    cfg = write_config(tmp_path, events, dead_letter={"type": "file", "path": "/dev/full"},
                       checkpoint={"every_events": 500, "sinks_failure_timeout_seconds": 2})
    out = cli("run", "-c", str(cfg))
    assert out.returncode == 1, out.stderr[-3000:]
    assert "dead letters" in out.stderr and "No space left on device" in out.stderr
    # no checkpoint covers the rejected lines: a restart with a working file replays them
    ok = write_config(tmp_path, events, checkpoint={"every_events": 500})
    again = cli("run", "-c", str(ok))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(read_jsonl(tmp_path / "dead.jsonl")) == 50



def test_webhook_spool_that_cannot_grow_blocks_then_recovers(tmp_path: Path,
                                                             receiver: Receiver) -> None:
    """The webhook peer is down and its spool hits a file size limit: the checkpoint waits
    (/readyz names the sink and the spool error); once the limit is lifted and the peer is
    back, every anomaly of an uninterrupted run arrives, and the run exits 0."""
    from streamem.sinks.spool import Delivery, Spool

    events = stream(tmp_path)
    expected = reference(tmp_path, events)
    receiver.stop()
    run = tmp_path / "run"
    run.mkdir()
    port = free_port()
    spool_dir = run / "state" / "spool" / "hook"
    old = [Delivery(f"old-{i}", "anomaly", None,
                    json.dumps({"id": f"old-{i}", "type": "padding", "pad": "x" * 600}).encode())
           for i in range(300)]
    with Spool(spool_dir) as spool:  # deliveries of an earlier run wait in the spool
        spool.append(old)
    limit = max(p.stat().st_size for p in spool_dir.glob("seg-*")) + 2000
    assert limit > 160_000  # room for the snapshots (about 140 kB each)
    cfg = write_config(run, events, checkpoint={"every_events": 500},
                       metrics={"enabled": True, "host": "127.0.0.1", "port": port},
                       sinks=[{"type": "webhook", "name": "hook", "url": receiver.url + "/hook",
                               "max_retries": 0, "timeout_seconds": 1, "cooldown_seconds": 0,
                               "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5}])

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    log = run / "stderr.log"
    with log.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                                stderr=err_file, preexec_fn=cap)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: "sink failing" in get(base + "/readyz")[1]), \
            (get(base + "/readyz"), log.read_text()[-2000:])
        text = get(base + "/readyz")[1]
        assert "sink hook" in text and "File too large" in text, text
        time.sleep(1.0)
        assert proc.poll() is None
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        receiver.start()
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 0, err[-3000:]
    # what the daemon spooled and had not sent yet at exit drains from the spool
    from streamem.sinks.webhook import WebhookSink

    with WebhookSink("hook", receiver.url + "/hook", spool_dir=spool_dir,
                     cooldown_seconds=0, backoff_max_seconds=0.5) as drain:
        assert wait_for(lambda: drain.stats.spool_size == 0)
    got = [json.loads(r.body) for r in receiver.accepted]
    assert {d["id"] for d in got if d["type"] == "anomaly"} == expected
    assert {d["id"] for d in got if d["type"] == "padding"} == {d.id for d in old}


def test_sigterm_while_sinks_fail_exits_1_at_once_without_a_checkpoint(tmp_path: Path) -> None:
    """A stop request while the checkpoint is held back does not wait out the timeout (300 s
    by default): exit 1 with the reason, no checkpoint past the failure; /healthz
    stays 200 meanwhile (the loop is alive, retrying)."""
    import signal

    events = stream(tmp_path)
    port = free_port()
    cfg = write_config(tmp_path, events, sinks=[{"type": "file", "path": "/dev/full"}],
                       checkpoint={"every_events": 500},
                       metrics={"enabled": True, "host": "127.0.0.1", "port": port})
    log = tmp_path / "stderr.log"
    with log.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                                stderr=err_file)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: "sink failing" in get(base + "/readyz")[1])
        time.sleep(1.5)
        assert get(base + "/healthz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 1, err[-3000:]
    assert "stopped on request" in err and "No space left on device" in err
    # checkpoints were taken only while nothing had gone to the sink: none covers an anomaly
    assert inspect(tmp_path / "state")["counters"].get("events_anomalous", 0) == 0
