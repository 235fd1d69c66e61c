"""The Source contract, run on every implementation: file, stdin-like pipe, and Kafka (real
broker).

A source hands out events in order with positions; seeking to a stored position resumes
exactly at the next event; commit does not change what is read; close is idempotent, and a
closed source refuses to poll.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamem.errors import SourceError
from streamem.events import RawEvent
from streamem.sources.base import Source
from streamem.sources.file import FileSource

kafka_support = importlib.import_module("testkit.broker")

N = 50
PAYLOADS = [f'{{"i": {i}, "x": {i * 0.5}}}'.encode() for i in range(N)]
Factory = Callable[[], Source]


def _file(tmp: Path) -> Factory:
    path = tmp / "events.jsonl"
    path.write_bytes(b"".join(p + b"\n" for p in PAYLOADS))
    return lambda: FileSource(str(path))


def _kafka(tmp: Path) -> Factory:
    from streamem.sources.kafka import KafkaSource

    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.create_topic(bootstrap, kafka_support.unique_name("src-contract"))
    kafka_support.produce(bootstrap, topic, PAYLOADS, partition=0)
    group = kafka_support.unique_name("g")
    return lambda: KafkaSource([bootstrap], topic, group)


@pytest.fixture(params=[pytest.param(_file, id="file"),
                        pytest.param(_kafka, id="kafka", marks=pytest.mark.kafka)])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield request.param(tmp_path)


def _drain(src: Source, n: int, timeout: float = 30.0) -> list[RawEvent]:
    out: list[RawEvent] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out.extend(src.poll(n - len(out), 0.5))
    return out


def test_events_come_in_order_with_resumable_positions(factory: Factory) -> None:
    with factory() as src:
        assert isinstance(src, Source)
        events = _drain(src, N)
        assert [e.payload for e in events] == PAYLOADS
        offsets = [e.position.offset for e in events]
        assert offsets == sorted(offsets) and len(set(offsets)) == N
        for a, b in itertools.pairwise(events):
            assert a.next_offset <= b.position.offset or (
                a.position.partition != b.position.partition)
        ids = {e.position.id for e in events}
        assert len(ids) == N


def test_seek_resumes_exactly_after_the_stored_position(factory: Factory) -> None:
    with factory() as src:
        events = _drain(src, N)
    mid = events[N // 2 - 1]
    with factory() as src:
        src.seek({mid.position.partition: mid.next_offset})
        rest = _drain(src, N - N // 2)
        assert [e.payload for e in rest] == PAYLOADS[N // 2 :]
        assert len(src.poll(10, 0.2)) == 0


def test_commit_and_lag_do_not_change_what_is_read(factory: Factory) -> None:
    with factory() as src:
        first = _drain(src, 10)
        src.commit({first[-1].position.partition: first[-1].next_offset})
        lag = src.lag()
        assert all(v >= 0 for v in lag.values())
        rest = _drain(src, N - 10)
        assert [e.payload for e in first + rest] == PAYLOADS


def test_close_is_idempotent(factory: Factory) -> None:
    src = factory()
    src.close()
    src.close()


def test_poll_after_close_raises_source_error(factory: Factory) -> None:
    """A closed source refuses to read (it never hands out events from a released file or
    consumer), with a SourceError that says to open a new one; close stays idempotent."""
    src = factory()
    assert _drain(src, 1)
    src.close()
    with pytest.raises(SourceError, match=r"clos.*new"):
        src.poll(10, 0.1)
    src.close()


def test_file_source_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    long = b'{"x": "' + b"y" * 300 + b'"}'
    path.write_bytes(b'{"a": 1}\r\n\n   \n' + long + b"\n" + b'{"b": 2}')  # no final newline
    with FileSource(str(path), max_event_bytes=100) as src:
        evs = src.poll(10, 0.0)
        assert [e.payload for e in evs] == [b'{"a": 1}', long[:101], b'{"b": 2}']
        assert evs[-1].next_offset == path.stat().st_size
        assert src.exhausted


def test_follow_mode_waits_for_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": ')
    with FileSource(str(path), follow=True, poll_interval=0.01) as src:
        assert [e.payload for e in src.poll(10, 0.05)] == [b'{"a": 1}']
        assert len(src.poll(10, 0.05)) == 0 and not src.exhausted
        with path.open("ab") as fh:
            fh.write(b"2}\n")
        assert [e.payload for e in src.poll(10, 1.0)] == [b'{"a": 2}']


def test_stdin_pipe(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, b'{"a": 1}\n{"a": 2}\n')
    os.close(w)
    saved = sys.stdin
    sys.stdin = os.fdopen(r, "r")
    try:
        with FileSource("-") as src:
            assert [e.payload for e in src.poll(10, 0.0)] == [b'{"a": 1}', b'{"a": 2}']
            assert src.exhausted
    finally:
        sys.stdin.close()
        sys.stdin = saved


@pytest.mark.timeout(30)  # before the fix the idle poll blocked until the writer closed
def test_stdin_poll_returns_within_its_timeout_on_an_idle_open_pipe() -> None:
    r, w = os.pipe()
    saved = sys.stdin
    sys.stdin = os.fdopen(r, "r")
    try:
        with FileSource("-") as src:
            os.write(w, b'{"a": 1}\n{"a": 2}\n{"a": ')
            assert [e.payload for e in src.poll(10, 0.2)] == [b'{"a": 1}', b'{"a": 2}']
            t = time.monotonic()
            assert len(src.poll(10, 0.2)) == 0  # idle, writer still open
            assert 0.15 < time.monotonic() - t < 2.0
            assert not src.exhausted
            os.write(w, b"3}\n")
            assert [e.payload for e in src.poll(10, 1.0)] == [b'{"a": 3}']
            os.close(w)
            w = -1
            assert len(src.poll(10, 1.0)) == 0 and src.exhausted
    finally:
        if w >= 0:
            os.close(w)
        sys.stdin.close()
        sys.stdin = saved


def test_stdin_csv_header_then_rows() -> None:
    r, w = os.pipe()
    os.write(w, b"a,b\n1,2\n3,4\n")
    os.close(w)
    saved = sys.stdin
    sys.stdin = os.fdopen(r, "r")
    try:
        with FileSource("-", format="csv") as src:
            assert src.header == b"a,b"
            assert [e.payload for e in src.poll(10, 0.5)] == [b"1,2", b"3,4"]
            assert src.exhausted
    finally:
        sys.stdin.close()
        sys.stdin = saved


def test_file_positions_are_exact_with_crlf_blank_and_long_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    parts = []
    for i in range(3000):
        parts.append(b'{"a": %d}' % i + (b"\r\n" if i % 3 else b"\n"))
        if i % 500 == 7:
            parts.append(b"\n  \n" + b'{"x": "' + b"y" * 300 + b'"}\n')
    data = b"".join(parts)
    path.write_bytes(data)
    with FileSource(str(path), max_event_bytes=100) as src:
        events = _drain(src, 10**6, timeout=5.0)
    assert len(events) == 3000 + 6  # blank lines skipped, long ones kept (cut) for rejection
    for e in events:
        raw = data[e.position.offset : e.next_offset]
        assert raw.rstrip(b"\r\n").startswith(e.payload)
        assert raw.endswith(b"\n") and len(e.payload) <= 101
    assert events[-1].next_offset == len(data)


def test_file_skips_whitespace_only_lines_and_keeps_whitespace_led_events(
        tmp_path: Path) -> None:
    # no CR and no empty line anywhere: only the check on each line's first byte finds these
    path = tmp_path / "ws.jsonl"
    odd = [b" ", b"\t", b"\x0c", b"  \t ", b"\x0b\x0b"]
    lines = []
    for i in range(2000):
        lines.append(b'{"a": %d}' % i)
        if i % 97 == 5:
            lines.append(odd[i % len(odd)])
        if i % 131 == 9:
            lines.append(b'  {"lead": %d}' % i)
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(data)
    with FileSource(str(path)) as src:
        events = _drain(src, 10**6, timeout=5.0)
    assert [e.payload for e in events] == [ln for ln in lines if not ln.isspace()]
    for e in events:
        assert data[e.position.offset : e.next_offset] == e.payload + b"\n"
