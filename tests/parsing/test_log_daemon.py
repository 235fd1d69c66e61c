"""Text logs through the daemon: nginx lines to anomalies and dead letters, and the template
miner checkpointed with the offsets."""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from testkit.daemon import read_jsonl, write_config
from testkit.logs import nginx_access_log, read_log

from streamem.config import load_config
from streamem.runtime.daemon import Daemon
from streamem.state.directory import DirectoryCheckpointStore

JUNK = [b"GET /index.html", b"\x00\x01\x02\x1b[2J", b"<34>not a log line",
        b"10.0.0.1 - - [02/Jan/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 2OO 5 \"-\" \"-\"",
        b"\" " * 500_000]  # 1 MB of quotes and spaces, within max_event_bytes
HUGE = b"a" * 1_300_000  # beyond max_event_bytes


def _run(tmp: Path, log: Path, **overrides: Any) -> Any:
    tmp.mkdir(exist_ok=True)
    cfg = load_config(write_config(tmp, log, **overrides))
    return Daemon(cfg, install_signal_handlers=False).run()


def test_nginx_access_log_to_anomalies_and_dead_letters(tmp_path: Path) -> None:
    lines = nginx_access_log(3000, slow=(2500,))
    log = tmp_path / "access.log"
    with log.open("wb") as fh:
        for i, line in enumerate(lines[:-1]):
            fh.write(line + (b"\r\n" if i % 7 == 0 else b"\n"))  # some CRLF line ends
            if i % 500 == 250:
                fh.write(b"\n".join(JUNK) + b"\n")
            if i == 1700:
                fh.write(HUGE + b"\n")
        fh.write(lines[-1])  # a last line without its newline
    n_junk = len(JUNK) * sum(1 for i in range(2999) if i % 500 == 250)
    summary = _run(tmp_path / "run", log, source={"format": "nginx"},
                   fields={"features": ["request_time", "body_bytes_sent"], "timestamp": None,
                           "key": None, "id": None, "template": "request_uri"})
    assert summary.events == 3001 + n_junk and summary.rejected == n_junk + 1
    dead = read_jsonl(tmp_path / "run" / "dead.jsonl")
    assert len(dead) == n_junk + 1
    reasons = Counter(d["reason"] for d in dead)
    assert reasons == {"parse_error: the line does not match the nginx format": n_junk,
                       "too_large: 1048577 bytes > max_event_bytes=1048576": 1}
    found = [a for a in read_jsonl(tmp_path / "run" / "anomalies.jsonl")
             if a.get("type", "anomaly") == "anomaly" and "score" in a]
    offset = log.read_bytes().index(lines[2500])
    slow = [a for a in found if a["extra"]["position"].endswith(f":0:{offset}")]
    assert len(slow) == 1, found
    # the preset's timestamp field (time_local, read as epoch seconds) and the template
    assert slow[0]["timestamp"] == calendar.timegm((2026, 1, 2, 10, 4, 10))
    assert slow[0]["extra"]["template_text"] == "/api/v1/items/<NUM>"
    assert isinstance(slow[0]["extra"]["template"], int)
    snap = DirectoryCheckpointStore(tmp_path / "run" / "state").load_latest()
    assert snap is not None and snap.positions == {0: log.stat().st_size}


def test_template_miner_resumes_from_the_checkpoint_like_an_uninterrupted_run(
        loghub: Path, tmp_path: Path) -> None:
    lines = read_log(loghub, "OpenSSH")
    opts: dict[str, Any] = {
        "source": {"format": "syslog"},
        "fields": {"features": ["procid"], "timestamp": None, "key": None, "id": None,
                   "template": "message"},
        "model": {"warmup": 200}, "checkpoint": {"every_events": 300}}
    whole = tmp_path / "whole.log"
    whole.write_bytes(b"\n".join(lines) + b"\n")
    _run(tmp_path / "a", whole, **opts)
    parts = tmp_path / "parts.log"
    parts.write_bytes(b"\n".join(lines[:1100]) + b"\n")
    _run(tmp_path / "b", parts, **opts)  # stops at the end, checkpointed
    with parts.open("ab") as fh:  # the rest arrives; a new daemon resumes
        fh.write(b"\n".join(lines[1100:]) + b"\n")
    _run(tmp_path / "b", parts, **opts)
    a = DirectoryCheckpointStore(tmp_path / "a" / "state").load_latest()
    b = DirectoryCheckpointStore(tmp_path / "b" / "state").load_latest()
    assert a is not None and b is not None
    assert a.positions == b.positions == {0: whole.stat().st_size}
    assert a.parsing["templates"]["clusters"]  # mined, and saved in the snapshot
    assert json.dumps(a.parsing, sort_keys=True) == json.dumps(b.parsing, sort_keys=True)


def test_nginx_lines_on_stdin(tmp_path: Path) -> None:
    lines = nginx_access_log(1500, slow=(1400,))
    cfg = write_config(tmp_path, Path("-"), source={"type": "stdin", "path": None,
                                                    "format": "nginx"},
                       fields={"features": ["request_time", "body_bytes_sent"],
                               "timestamp": None, "key": None, "id": None},
                       model={"warmup": 500})
    data = b"\r\n".join(lines[:700]) + b"\r\nnot nginx\n" + b"\n".join(lines[700:])
    proc = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                          input=data, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    found = [a for a in read_jsonl(tmp_path / "anomalies.jsonl") if a.get("type") == "anomaly"]
    ts = calendar.timegm((2026, 1, 2, 10, 2, 20))  # line 1400: 0.1 s per line
    assert any(a["timestamp"] == ts and a["severity"] == 100.0 for a in found), found
    (dead,) = read_jsonl(tmp_path / "dead.jsonl")
    assert dead["reason"] == "parse_error: the line does not match the nginx format"
