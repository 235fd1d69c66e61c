"""WebhookSink against a real local HTTP receiver: signing, retries, spool, restarts."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit.sinks import Receiver, make_incident, make_record

from streamem.sinks.webhook import WebhookSink

FAST = {"backoff_base_seconds": 0.02, "backoff_max_seconds": 0.1, "timeout_seconds": 1.0,
        "cooldown_seconds": 0.0}


def webhook(receiver: Receiver, spool: Path, **kwargs: object) -> WebhookSink:
    options = {**FAST, **kwargs}
    return WebhookSink("hook", receiver.url + "/hook", spool_dir=spool, **options)  # type: ignore[arg-type]


def wait_for(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_posts_signed_json_with_id(receiver: Receiver, tmp_path: Path) -> None:
    secret = "correct horse battery staple"
    record = make_record(7)
    with webhook(receiver, tmp_path, secret=secret) as sink:
        sink.emit(record)
        assert sink.flush(5.0)
    [request] = receiver.accepted
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Streamem-Id"] == record.id
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, request.headers["X-Streamem-Signature"])
    forged = "sha256=" + hmac.new(b"wrong", request.body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(forged, request.headers["X-Streamem-Signature"])
    document = json.loads(request.body)
    assert document["type"] == "anomaly"
    assert document["id"] == record.id and document["severity"] == record.severity
    assert document["top_features"][0]["name"] == "temperature"
    assert document["top_features"][1]["value"] is None  # NaN becomes null: strict JSON
    assert sink.stats.delivered == 1 and sink.stats.failed == 0


def test_no_signature_without_secret(receiver: Receiver, tmp_path: Path) -> None:
    with webhook(receiver, tmp_path) as sink:
        sink.emit(make_record(1))
    assert "X-Streamem-Signature" not in receiver.accepted[0].headers


def test_retries_5xx_then_delivers_once(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [500, 502, 500]
    with webhook(receiver, tmp_path, max_retries=5) as sink:
        sink.emit(make_record(1))
        assert sink.flush(5.0)
    assert len(receiver.requests) == 4
    assert receiver.ids() == {"events:0:1": 1}
    assert (sink.stats.failed, sink.stats.retried, sink.stats.delivered) == (3, 3, 1)
    assert sink.stats.spooled == 0


def test_429_honours_retry_after(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [429]
    receiver.retry_after = "1"
    with webhook(receiver, tmp_path, backoff_max_seconds=2.0) as sink:
        sink.emit(make_record(1))
        assert receiver.wait_accepted(1, 5.0)
    first, second = receiver.requests
    assert second.at - first.at >= 0.95  # the jittered backoff alone is at most 0.02 s


def test_long_retry_after_goes_to_spool_and_is_honoured(receiver: Receiver,
                                                        tmp_path: Path) -> None:
    receiver.script = [503]
    receiver.retry_after = "1"
    with webhook(receiver, tmp_path, backoff_max_seconds=0.1) as sink:
        sink.emit(make_record(1))
        assert sink.flush(2.0)  # the worker is not held for the second: the record is spooled
        assert sink.stats.spool_size == 1
        assert receiver.wait_accepted(1, 5.0)
    first, second = receiver.requests
    assert second.at - first.at >= 0.95
    assert sink.stats.spool_size == 0 and receiver.ids() == {"events:0:1": 1}


def test_4xx_is_permanent_and_kept_in_rejected_file(receiver: Receiver, tmp_path: Path) -> None:
    receiver.set("reject")
    with webhook(receiver, tmp_path, max_retries=5) as sink:
        sink.emit(make_record(1))
        assert sink.flush(5.0)
    assert len(receiver.requests) == 1  # never retried
    assert (sink.stats.rejected, sink.stats.delivered, sink.stats.spool_size) == (1, 0, 0)
    [line] = (tmp_path / "rejected.jsonl").read_text().splitlines()
    kept = json.loads(line)
    assert kept["id"] == "events:0:1" and kept["reason"].startswith("HTTP 400")


def test_timeout_is_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.set("hang", delay=0.6)
    with webhook(receiver, tmp_path, timeout_seconds=0.2, max_retries=10) as sink:
        sink.emit(make_record(1))
        assert wait_for(lambda: sink.stats.failed >= 1, 5.0)
        receiver.set("ok")
        assert receiver.wait_accepted(1, 5.0)
    assert receiver.ids() == {"events:0:1": 1}


def test_outage_spools_then_drains_exactly_once(receiver: Receiver, tmp_path: Path) -> None:
    with webhook(receiver, tmp_path, max_retries=1) as sink:
        for i in range(5):
            sink.emit(make_record(i))
        assert receiver.wait_accepted(5)
        receiver.stop()
        for i in range(5, 45):
            sink.emit(make_record(i))
        assert sink.flush(5.0)
        assert wait_for(lambda: sink.stats.spool_size == 40)
        receiver.start()  # same port
        assert receiver.wait_accepted(45, 15.0)
        assert wait_for(lambda: sink.stats.spool_size == 0)
    assert receiver.ids() == {f"events:0:{i}": 1 for i in range(45)}
    bodies = [json.loads(r.body)["id"] for r in receiver.accepted]
    assert bodies == [f"events:0:{i}" for i in range(45)]  # order is kept through the spool
    assert sink.stats.delivered == 45 and sink.stats.spooled == 40


def test_restart_delivers_what_was_spooled(receiver: Receiver, tmp_path: Path) -> None:
    receiver.stop()
    first = webhook(receiver, tmp_path, max_retries=0, queue_size=4)
    for i in range(30):
        first.emit(make_record(i))
    incident = make_incident()
    first.emit_incident(incident)
    first.close()
    assert first.stats.delivered == 0 and first.stats.spool_size == 31
    receiver.start()
    with webhook(receiver, tmp_path) as second:
        assert second.stats.spool_size == 31
        assert receiver.wait_accepted(31, 15.0)
        second.emit(make_record(99))
        assert receiver.wait_accepted(32, 5.0)
    expected = {f"events:0:{i}": 1 for i in [*range(30), 99]}
    expected[f"{incident.id}/firing"] = 1
    assert receiver.ids() == expected
    assert second.stats.spool_size == 0


def test_mixed_failures_lose_and_double_nothing(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [500, 429, 200, 503, 500, 500]
    receiver.retry_after = "0"
    sink = webhook(receiver, tmp_path, max_retries=2, queue_size=8, timeout_seconds=0.3)
    for i in range(20):
        sink.emit(make_record(i))
    receiver.set("hang", delay=0.5)
    for i in range(20, 40):
        sink.emit(make_record(i))
    time.sleep(0.5)
    receiver.stop()
    for i in range(40, 60):
        sink.emit(make_record(i))
    sink.close()  # what is left goes to the spool
    receiver.set("ok")
    receiver.start()
    with webhook(receiver, tmp_path) as again:
        for i in range(60, 70):
            again.emit(make_record(i))
        assert receiver.wait_accepted(70, 20.0)
        assert wait_for(lambda: again.stats.spool_size == 0)
    assert receiver.ids() == {f"events:0:{i}": 1 for i in range(70)}
    assert sink.stats.dropped == 0 and again.stats.dropped == 0


def test_cooldown_suppresses_per_key_but_never_incidents(receiver: Receiver,
                                                          tmp_path: Path) -> None:
    with webhook(receiver, tmp_path, cooldown_seconds=0.5) as sink:
        sink.emit(make_record(1, key="a"))
        sink.emit(make_record(2, key="a"))
        sink.emit(make_record(3, key="b"))
        sink.emit(make_record(4, key="a"))
        sink.emit_incident(make_incident(key="a"))
        sink.emit_incident(make_incident(key="a", status="resolved", ended_at=2e9))
        time.sleep(0.6)
        sink.emit(make_record(5, key="a"))
        sink.emit(make_record(6, key="b"))
        assert sink.flush(5.0)
    ids = set(receiver.ids())
    assert {"events:0:1", "events:0:3", "events:0:5", "events:0:6"} <= ids
    assert not {"events:0:2", "events:0:4"} & ids
    assert sum(1 for i in ids if i.endswith(("/firing", "/resolved"))) == 2
    assert sink.stats.suppressed == 2


def test_slow_endpoint_does_not_block_emit(receiver: Receiver, tmp_path: Path) -> None:
    receiver.set("slow", delay=0.3)
    latencies = []
    with webhook(receiver, tmp_path, queue_size=20) as sink:
        for i in range(200):
            start = time.perf_counter()
            sink.emit(make_record(i))
            latencies.append(time.perf_counter() - start)
        assert sink.stats.spooled >= 150  # the queue overflowed into the spool
        receiver.set("ok")
        assert receiver.wait_accepted(200, 20.0)
    median, worst = statistics.median(latencies), max(latencies)
    print(f"emit latency with a 0.3 s endpoint: median {median * 1e6:.0f} us, "
          f"max {worst * 1e3:.2f} ms")
    assert median < 0.005 and worst < 0.1  # vs 0.3 s per request if emit waited
    assert receiver.ids() == {f"events:0:{i}": 1 for i in range(200)}


def test_flush_spools_when_endpoint_is_down(receiver: Receiver, tmp_path: Path) -> None:
    receiver.stop()
    with webhook(receiver, tmp_path, max_retries=50, backoff_base_seconds=1.0,
                 backoff_max_seconds=5.0) as sink:
        for i in range(10):
            sink.emit(make_record(i))
        start = time.monotonic()
        assert sink.flush(2.0)
        assert time.monotonic() - start < 2.5
        assert sink.stats.spool_size == 10


def test_secret_and_url_path_never_logged(receiver: Receiver, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.stop()
    secret = "hunter2-very-secret"
    sink = WebhookSink("hook", receiver.url + "/services/T0/tok3n", secret=secret,
                       spool_dir=tmp_path, max_retries=1, **{k: v for k, v in FAST.items()
                                                            if k != "cooldown_seconds"})
    sink.emit(make_record(1))
    sink.close()
    text = caplog.text + repr(sink)
    assert "spooled" in caplog.text
    assert secret not in text and "tok3n" not in text
    assert "***" in repr(sink)


_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[3])
from testkit.sinks import make_record
from streamem.sinks.webhook import WebhookSink
sink = WebhookSink("hook", sys.argv[1], spool_dir=sys.argv[2], cooldown_seconds=0,
                   max_retries=1, backoff_base_seconds=0.02, backoff_max_seconds=0.1)
for i in range(25):
    sink.emit(make_record(i))
assert sink.flush(5.0)
print("flushed", flush=True)
time.sleep(60)  # killed here, without close()
"""


def test_kill_9_after_flush_then_restart_delivers_everything(receiver: Receiver,
                                                             tmp_path: Path) -> None:
    receiver.stop()
    here = str(Path(__file__).resolve().parents[1])  # tests/, for the testkit package
    child = subprocess.Popen([sys.executable, "-c", _CHILD, receiver.url + "/hook",
                              str(tmp_path), here], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "flushed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    receiver.start()
    with webhook(receiver, tmp_path) as sink:
        assert receiver.wait_accepted(25, 15.0)
        assert wait_for(lambda: sink.stats.spool_size == 0)
    assert receiver.ids() == {f"events:0:{i}": 1 for i in range(25)}


def test_cooldown_map_is_bounded_and_expires_from_the_front(tmp_path: Path) -> None:
    """10^6 distinct keys: the cool-down map holds only keys within their cool-down, never
    more than MAX_COOLDOWN_KEYS, and a key whose cool-down ran out is sent again."""
    from streamem.sinks import webhook as wh

    now = [0.0]
    sink = wh.WebhookSink("hook", "http://127.0.0.1:1/hook", cooldown_seconds=10.0,
                          spool_dir=tmp_path, clock=lambda: now[0])
    try:
        for i in range(1_000_000):
            now[0] = i * 2e-4          # 10^6 keys in 200 s: ~5 * 10^4 inside one cool-down
            assert sink._allowed(f"k{i}")
        assert 49_000 <= len(sink._last_sent) <= 51_000 and sink.cooldown_evictions == 0
        assert not sink._allowed("k999999")            # still cooling down
        for i in range(200_000):                       # a burst beyond the bound at once
            assert sink._allowed(f"burst{i}")
            assert len(sink._last_sent) <= wh.MAX_COOLDOWN_KEYS
        assert sink.cooldown_evictions > 0
        now[0] += 10.0
        assert sink._allowed("k999999")                # cool-down over: sent again
        assert len(sink._last_sent) == 1               # every other key expired
    finally:
        sink.close()
