"""HttpTransport against a real local HTTP receiver; error mapping to SinkError."""

from __future__ import annotations

import httpx
import pytest
from testkit.sinks import Receiver

from streamem.errors import SinkError
from streamem.sinks.http import HttpTransport, parse_retry_after, redact_url


def test_status_retry_after_and_body(receiver: Receiver) -> None:
    receiver.script = [429, 200]
    receiver.retry_after = "7"
    with HttpTransport(timeout_seconds=2.0) as transport:
        throttled = transport.post_json(receiver.url + "/x", b'{"a":1}', {"X-Test": "1"})
        ok = transport.post_json(receiver.url + "/x", b'{"a":2}', {})
    assert (throttled.status, throttled.retry_after) == (429, 7.0)
    assert (ok.status, ok.retry_after, ok.text) == (200, None, "{}")
    first = receiver.requests[0]
    assert first.body == b'{"a":1}' and first.headers["X-Test"] == "1"
    assert first.headers["Content-Type"] == "application/json"


def test_connection_refused_maps_to_sink_error(receiver: Receiver) -> None:
    receiver.stop()
    with HttpTransport(timeout_seconds=1.0) as transport, pytest.raises(SinkError) as info:
        transport.post_json(receiver.url + "/secret-path", b"{}", {})
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "secret-path" not in str(info.value) and "receiver is up" in str(info.value)


def test_timeout_maps_to_sink_error(receiver: Receiver) -> None:
    receiver.set("hang", delay=0.5)
    with HttpTransport(timeout_seconds=5.0) as transport, pytest.raises(SinkError) as info:
        transport.post_json(receiver.url, b"{}", {}, timeout=0.1)
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert "timed out" in str(info.value)


def test_invalid_url_and_closed_transport() -> None:
    transport = HttpTransport()
    with pytest.raises(SinkError):
        transport.post_json("http://", b"{}", {})
    transport.close()
    transport.close()
    with pytest.raises(SinkError, match="closed"):
        transport.post_json("http://127.0.0.1:9/", b"{}", {})


@pytest.mark.parametrize(("value", "now", "expected"), [
    ("0", None, 0.0), ("2.5", None, 2.5), ("-3", None, 0.0), (None, None, None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0, 10.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0, 0.0), ("garbage", None, None),
])
def test_parse_retry_after(value: str | None, now: float | None,
                           expected: float | None) -> None:
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/…"),
    ("http://u:p@[::1]:8080/", "http://[::1]:8080/…"),
    ("http://127.0.0.1:9093", "http://127.0.0.1:9093"),
    ("http://h/?token=abc", "http://h/…"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
