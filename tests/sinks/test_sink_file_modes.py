"""Spools, dead letters and anomaly output hold raw payloads: files 0600, directories 0700,
whatever the umask (here 000, which would make them world-readable and -writable)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit.sinks import Receiver, make_record

from streamem.sinks.deadletter import FileDeadLetterSink
from streamem.sinks.jsonl import FileSink
from streamem.sinks.webhook import WebhookSink


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_spool_directory_and_files_are_private(open_umask: None, receiver: Receiver,
                                               tmp_path: Path) -> None:
    receiver.set("reject")  # 400: every delivery becomes a dead letter in rejected.jsonl
    spool = tmp_path / "state" / "spool" / "hook"
    with WebhookSink("hook", receiver.url, spool_dir=spool, max_retries=0,
                     backoff_base_seconds=0.01, backoff_max_seconds=0.02,
                     cooldown_seconds=0) as sink:
        sink.emit(make_record(1))
        assert receiver.wait_accepted(0) and sink.flush(5.0)
    receiver.stop()  # now the peer is down: the next delivery waits in a segment
    with WebhookSink("hook", receiver.url, spool_dir=spool, max_retries=0,
                     backoff_base_seconds=0.01, backoff_max_seconds=0.02,
                     cooldown_seconds=0) as sink:
        sink.emit(make_record(2))
        assert sink.flush(5.0)
    files = sorted(p.name for p in spool.iterdir())
    assert "rejected.jsonl" in files and any(f.startswith("seg-") for f in files), files
    for path in spool.iterdir():
        assert mode(path) == 0o600, (path.name, oct(mode(path)))
    for directory in (spool, spool.parent, spool.parent.parent):
        assert mode(directory) == 0o700, (directory, oct(mode(directory)))


def test_an_existing_spool_directory_is_narrowed(open_umask: None, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o777)
    (spool / "ack.json").write_text('{"segment": 1, "offset": 0}')
    os.chmod(spool / "ack.json", 0o666)
    with WebhookSink("hook", "http://127.0.0.1:1", spool_dir=spool, max_retries=0) as sink:
        sink.emit(make_record(1))
    assert mode(spool) == 0o700
    assert all(mode(p) == 0o600 for p in spool.iterdir())


def test_dead_letter_file_and_its_new_directory_are_private(open_umask: None,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "new" / "dead-letter.jsonl"
    with FileDeadLetterSink("dlq", path) as dlq:
        dlq.write(b'{"secret": 1', "parse_error", "f:0:0")
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_existing_dead_letter_file_is_narrowed(open_umask: None, tmp_path: Path) -> None:
    path = tmp_path / "dead-letter.jsonl"
    path.write_text("")
    os.chmod(path, 0o666)
    FileDeadLetterSink("dlq", path).close()
    assert mode(path) == 0o600


def test_anomaly_file_is_created_private(open_umask: None, tmp_path: Path) -> None:
    before = mode(tmp_path)
    path = tmp_path / "out" / "anomalies.jsonl"
    with FileSink("file", path) as sink:
        sink.emit(make_record(1))
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert mode(tmp_path) == before  # an existing directory is not the sink's to change
