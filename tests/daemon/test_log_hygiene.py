"""What the daemon writes to its log: no token from a webhook URL (whatever library logs the
request), no garbling by secret masking, and no line that an event can forge with CR/LF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from testkit.daemon import cli, make_stream, write_config
from testkit.sinks import Receiver

PATH_TOKEN = "Zq9vXw2LmN4oPq7RsT1uVw3x"
QUERY_TOKEN = "qtok0123456789abcdef"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_token_in_the_webhook_url_never_reaches_the_log(tmp_path: Path, receiver: Receiver,
                                                          level: str) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 3000, anomalies=(1500, 2100, 2700))
    url = f"{receiver.url}/services/T0AB12CD/{PATH_TOKEN}?token={QUERY_TOKEN}"
    cfg = write_config(tmp_path, events, sinks=[
        {"type": "webhook", "name": "hook", "url": url, "cooldown_seconds": 0,
         "max_retries": 1, "backoff_base_seconds": 0.05}])
    out = cli("run", "-c", str(cfg), "--log-level", level)
    assert out.returncode == 0, out.stderr[-3000:]
    assert receiver.accepted, "the webhook got nothing: the request path was not exercised"
    assert {r.path for r in receiver.accepted} == {f"/services/T0AB12CD/{PATH_TOKEN}"
                                                   f"?token={QUERY_TOKEN}"}
    assert PATH_TOKEN not in out.stderr and QUERY_TOKEN not in out.stderr, out.stderr[-3000:]


def test_a_short_secret_does_not_garble_the_log(tmp_path: Path, receiver: Receiver) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 1500)
    cfg = write_config(tmp_path, events, sinks=[
        {"type": "webhook", "url": receiver.url + "/h", "secret": "${HOOK_SECRET}"}])
    out = cli("run", "-c", str(cfg), env={"HOOK_SECRET": "k"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "***" not in out.stderr, out.stderr  # main wrote "no chec***point", "chec***points"
    assert "checkpoint" in out.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_control_characters_from_input_cannot_forge_log_lines(tmp_path: Path, fmt: str) -> None:
    forged = "\r\n2026-01-01 00:00:00,000 ERROR streamem: FORGED\x1b[2J\x85\u2028\x7f"
    events = tmp_path / f"events{forged}.jsonl"  # the position (file:line) is the logged id
    make_stream(events, 1200)
    with events.open("a") as fh:  # a dead-lettered line: its position is logged
        fh.write(json.dumps({"id": f"bad{forged}\x00", "temperature": f"hot{forged}\x00",
                             "sensor": f"s{forged}\x00"}) + "\n")
    cfg = write_config(tmp_path, events, fields={"id": "id"}, logging={"format": fmt})
    out = cli("run", "-c", str(cfg), "--log-level", "DEBUG")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rejected event" in out.stderr and "FORGED" in out.stderr
    lines = out.stderr.split("\n")
    assert lines[-1] == ""
    shown = []
    for line in lines[:-1]:
        for ch in ("\r", "\x00", "\x1b", "\x85", "\u2028", "\x7f"):
            assert ch not in line, repr(line)
        if fmt == "json":
            shown.append(json.loads(line)["msg"])
        else:
            assert LINE.match(line), repr(line)
            shown.append(line)
    # the forged text is still there, visibly escaped, inside the record that carried it
    assert any("\\r\\n2026-01-01" in m and "\\x1b" in m for m in shown), shown
