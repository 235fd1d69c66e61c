"""Hostile ids and undeliverable records never block a network sink (real HTTP receiver).

An id with CR, LF, NUL or non-ASCII characters travels percent-encoded in ``X-Streamem-Id``
(the body keeps the original); a record the peer refuses for good (a 4xx, or a 5xx for that
record alone while later ones are accepted) goes to the sink's dead-letter file with its
reason and never holds up the records behind it, also when it waits in the spool across a
restart.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from urllib.parse import unquote

from testkit.sinks import Receiver, Request, make_record

from streamem.alerting.records import AnomalyRecord
from streamem.sinks.alertmanager import AlertmanagerSink
from streamem.sinks.payload import header_id
from streamem.sinks.webhook import WebhookSink

FAST = {"backoff_base_seconds": 0.02, "backoff_max_seconds": 0.1, "timeout_seconds": 2.0,
        "cooldown_seconds": 0.0, "max_retries": 1}
HOSTILE = ["ev\r\nX-Injected: 1", "ev\x00nul", "évé-ü-☃", "ev\nlf", "ev\rcr", " ev ",
           "ev%41", "\udcff-surrogate"]


def hostile_records(n: int = 64) -> list[AnomalyRecord]:
    out = []
    for i in range(n):
        record = make_record(i, key=f"pump-{i % 5}")
        if i % 4 == 1:
            record = dataclasses.replace(record, id=f"{HOSTILE[(i // 4) % len(HOSTILE)]}-{i}")
        out.append(record)
    return out


def body_id(request: Request) -> str:
    return str(json.loads(request.body)["id"])


def wait_for(condition, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def dead_letters(spool: Path) -> list[dict[str, object]]:
    path = spool / "rejected.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_header_id_is_printable_ascii_and_reversible() -> None:
    for raw in [*HOSTILE, "events:0:1", "k:5/firing", "pump-1:1000/update/3"]:
        encoded = header_id(raw)
        assert encoded.isascii() and encoded.isprintable() and " " not in encoded
        assert unquote(encoded, errors="surrogatepass") == raw
    assert header_id("events:0:1") == "events:0:1"  # ordinary ids are unchanged
    assert header_id("a%41") != header_id("aA")
    long = header_id("x" * 5000)
    assert long.startswith("sha256:") and len(long) < 100


def test_hostile_ids_are_all_delivered_with_a_safe_header(receiver: Receiver,
                                                          tmp_path: Path) -> None:
    records = hostile_records()
    with WebhookSink("hook", receiver.url + "/hook", spool_dir=tmp_path,
                     **FAST) as sink:  # type: ignore[arg-type]
        for record in records:
            sink.emit(record)
        assert receiver.wait_accepted(len(records)), (
            f"{len(receiver.accepted)} of {len(records)} delivered; stats {sink.stats}")
        assert sink.flush(5.0)
    assert sorted(body_id(r) for r in receiver.accepted) == sorted(r.id for r in records)
    for request in receiver.accepted:
        assert request.headers["X-Streamem-Id"] == header_id(body_id(request))
        assert "X-Injected" not in request.headers
    assert (sink.stats.delivered, sink.stats.rejected, sink.stats.spool_size) == (64, 0, 0)
    assert dead_letters(tmp_path) == []


def test_alertmanager_delivers_incidents_of_hostile_keys(receiver: Receiver,
                                                         tmp_path: Path) -> None:
    from testkit.sinks import make_incident

    keys = ["pump\r\n1", "ü-pump", "pump\x002"]
    with AlertmanagerSink("am", receiver.url, spool_dir=tmp_path, max_retries=1,
                          backoff_base_seconds=0.02, backoff_max_seconds=0.1) as sink:
        for key in keys:
            sink.emit_incident(make_incident(key=key))
        assert receiver.wait_accepted(len(keys))
    labels = sorted(json.loads(r.body)[0]["labels"]["key"] for r in receiver.accepted)
    assert labels == sorted(keys)


def poison_rule(rejected: set[str], failing: set[str]):  # type: ignore[no-untyped-def]
    def rule(request: Request) -> int | None:
        ident = body_id(request)
        if ident in rejected:
            return 422
        if ident in failing:
            return 500  # this record only, for ever; the peer takes every other one
        return None
    return rule


def test_poisoned_records_are_dead_lettered_and_never_block(receiver: Receiver,
                                                            tmp_path: Path) -> None:
    records = hostile_records()
    rejected = {records[i].id for i in (3, 17, 40)}
    failing = {records[i].id for i in (0, 30)}
    receiver.rule = poison_rule(rejected, failing)
    good = {r.id for r in records} - rejected - failing
    with WebhookSink("hook", receiver.url + "/hook", spool_dir=tmp_path,
                     **FAST) as sink:  # type: ignore[arg-type]
        for record in records:
            sink.emit(record)
        assert wait_for(lambda: good <= {body_id(r) for r in receiver.accepted}
                        and len(dead_letters(tmp_path)) == 5), (
            f"delivered {len(receiver.accepted)} of {len(good)}, stats {sink.stats}")
        assert wait_for(lambda: sink.stats.spool_size == 0)
    letters = {str(d["id"]): str(d["reason"]) for d in dead_letters(tmp_path)}
    assert set(letters) == rejected | failing
    assert all("HTTP 422" in letters[i] for i in rejected)
    assert all("HTTP 500" in letters[i] and "later records were accepted" in letters[i]
               for i in failing)
    assert sink.stats.rejected == 5
    assert sorted(body_id(r) for r in receiver.accepted) == sorted(good)
    from streamem.metrics import Metrics

    metrics = Metrics()
    metrics.attach_sinks([sink])
    assert metrics.value("streamem_sink_dead_letters_total", sink="hook") == 5.0


def test_poisoned_records_in_the_spool_never_block_after_a_restart(receiver: Receiver,
                                                                   tmp_path: Path) -> None:
    records = hostile_records()
    receiver.stop()  # the peer is down: everything goes to the spool
    with WebhookSink("hook", receiver.url + "/hook", spool_dir=tmp_path,
                     **FAST) as sink:  # type: ignore[arg-type]
        for record in records:
            sink.emit(record)
        assert sink.flush(10.0)
    assert sink.stats.spool_size == 64 and sink.stats.dropped == 0
    rejected = {records[i].id for i in (0, 9, 33)}  # the head of the spool is poisoned
    failing = {records[i].id for i in (1, 50)}
    receiver.rule = poison_rule(rejected, failing)
    receiver.start()
    good = {r.id for r in records} - rejected - failing
    with WebhookSink("hook", receiver.url + "/hook", spool_dir=tmp_path,
                     **FAST) as again:  # type: ignore[arg-type]
        assert wait_for(lambda: good <= {body_id(r) for r in receiver.accepted}
                        and again.stats.spool_size == 0), (
            f"delivered {len(receiver.accepted)} of {len(good)}, stats {again.stats}")
    assert {str(d["id"]) for d in dead_letters(tmp_path)} == rejected | failing
    assert sorted(body_id(r) for r in receiver.accepted) == sorted(good)  # in order, once
    assert [body_id(r) for r in receiver.accepted] == [r.id for r in records if r.id in good]


def test_a_spool_that_cannot_be_written_keeps_deliveries_and_flush_says_so(
        receiver: Receiver, tmp_path: Path) -> None:
    """The peer is down and the spool hits a file size limit (RLIMIT_FSIZE, as a full disk
    would): flush() is False and nothing is dropped; once the disk takes writes again the
    worker spools what it held, and the peer gets every record exactly once."""
    import resource

    receiver.stop()
    records = [make_record(i) for i in range(40)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    with WebhookSink("hook", receiver.url + "/hook", spool_dir=tmp_path,
                     **{**FAST, "max_retries": 0}) as sink:  # type: ignore[arg-type]
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, hard))
        try:
            for record in records:
                sink.emit(record)
            assert sink.flush(2.0) is False
            assert sink.stats.dropped == 0
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert wait_for(lambda: sink.flush(1.0))  # the worker spools what it held
        assert sink.stats.spool_size == 40 and sink.stats.dropped == 0
        receiver.start()
        assert receiver.wait_accepted(40, timeout=30.0)
        assert wait_for(lambda: sink.stats.spool_size == 0)
    assert receiver.ids() == {r.id: 1 for r in records}


def test_alertmanager_spool_that_cannot_be_written_keeps_alerts(receiver: Receiver,
                                                               tmp_path: Path) -> None:
    """The same for incidents on the Alertmanager sink: held, flush() False, then all sent."""
    import resource

    from testkit.sinks import make_incident

    receiver.stop()
    keys = [f"pump-{i}" for i in range(30)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    with AlertmanagerSink("am", receiver.url, spool_dir=tmp_path, max_retries=0,
                          backoff_base_seconds=0.02, backoff_max_seconds=0.1) as sink:
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, hard))
        try:
            for key in keys:
                sink.emit_incident(make_incident(key=key))
            assert sink.flush(2.0) is False
            assert sink.stats.dropped == 0 and sink.last_error is not None
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert wait_for(lambda: sink.flush(1.0))
        receiver.start()
        assert receiver.wait_accepted(len(keys), timeout=30.0)
    posted = sorted(json.loads(r.body)[0]["labels"]["key"] for r in receiver.accepted)
    assert posted == sorted(keys)
