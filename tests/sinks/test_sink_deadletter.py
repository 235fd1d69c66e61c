"""FileDeadLetterSink: text or base64 payloads, never raises on bad bytes, bounded memory."""

from __future__ import annotations

import base64
import json
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from streamem.sinks.deadletter import FileDeadLetterSink, dead_letter_document


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


def test_text_and_binary_payloads(tmp_path: Path) -> None:
    path = tmp_path / "dlq" / "dead.jsonl"
    with FileDeadLetterSink("dlq", path, clock=lambda: 12.5) as dlq:
        dlq.write('{"temp": "hot ☀"}'.encode(), "invalid_value", "events:0:1")
        dlq.write(b"\x80\x81\xfe", "parse_error", "events:0:2")
        dlq.flush()
        lines = read(path)  # durable and readable before close
    assert lines[0] == {"reason": "invalid_value", "source_id": "events:0:1", "at": 12.5,
                        "payload": '{"temp": "hot ☀"}'}
    assert "payload" not in lines[1]
    assert base64.b64decode(str(lines[1]["payload_b64"])) == b"\x80\x81\xfe"
    assert dlq.written == 2


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), reason=st.text(max_size=20),
       source=st.text(max_size=20))
def test_any_bytes_round_trip_and_never_raise(payload: bytes, reason: str, source: str) -> None:
    document = json.loads(json.dumps(dead_letter_document(payload, reason, source, 1.0)))
    if "payload_b64" in document:
        assert base64.b64decode(document["payload_b64"]) == payload
    else:
        assert document["payload"].encode("utf-8") == payload
    assert document["reason"] == reason and document["source_id"] == source


def test_memory_stays_bounded_and_payloads_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    big = b"\xff" * (4 << 20)  # 4 MiB of non-UTF-8 bytes
    tracemalloc.start()
    try:
        with FileDeadLetterSink("dlq", path, max_payload_bytes=64 << 10) as dlq:
            for i in range(40):  # 160 MiB offered in all
                dlq.write(big, "too_large", f"events:0:{i}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20  # well under one payload: nothing accumulates in memory
    lines = read(path)
    assert len(lines) == 40
    assert all(line["truncated"] is True and line["payload_size"] == 4 << 20 for line in lines)
    assert len(base64.b64decode(str(lines[0]["payload_b64"]))) == 64 << 10
