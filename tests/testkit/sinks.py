"""Test kit of the sink tests: a real HTTP receiver and record factories.

The receiver (http.server on 127.0.0.1, in a thread) can be told to answer 200, 5xx,
429 (with Retry-After), 4xx, to sleep (past the client timeout if asked), and to go down
and come back up on the same port. It records every request, and as *accepted* only those
it answered with 2xx, so tests can check that each record id arrived exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from streamem.alerting.records import AnomalyRecord, FeatureContribution, Incident


@dataclass(frozen=True)
class Request:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Threaded HTTP server with switchable behaviour.

    ``mode`` is one of ``ok`` (200), ``fail`` (500), ``throttle`` (429 + Retry-After),
    ``reject`` (400), ``slow`` (sleep ``delay`` then 200), ``hang`` (sleep ``delay`` then 503).
    ``script`` is a list of status codes answered first, one per request. ``rule``, when
    set, sees each request first and may answer with its own status (``None``: no opinion),
    which lets a test poison chosen records.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.retry_after = "1"
        self.script: list[int] = []
        self.rule: Callable[[Request], int | None] | None = None
        self.requests: list[Request] = []
        self.accepted: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _decide(self, request: Request) -> tuple[int, float]:
        rule = self.rule
        if rule is not None and (status := rule(request)) is not None:
            return status, 0.0
        with self._lock:
            if self.script:
                return self.script.pop(0), 0.0
            mode, delay = self.mode, self.delay
        return {"ok": (200, 0.0), "fail": (500, 0.0), "throttle": (429, 0.0),
                "reject": (400, 0.0), "slow": (200, delay), "hang": (503, delay)}[mode]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                request = Request(self.path, {k: v for k, v in self.headers.items()}, body,
                                  time.monotonic())
                status, delay = receiver._decide(request)
                with receiver._lock:
                    receiver.requests.append(request)
                if delay:
                    time.sleep(delay)
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.accepted.append(request)
                try:
                    self.send_response(status)
                    if status in (429, 503):
                        self.send_header("Retry-After", receiver.retry_after)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): expected in the timeout tests

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        """Listen (again) on the same port as before, or on a free one the first time."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: further connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set(self, mode: str, delay: float = 0.0) -> None:
        with self._lock:
            self.mode, self.delay = mode, delay

    def ids(self) -> Counter[str]:
        """How often each ``X-Streamem-Id`` was accepted."""
        with self._lock:
            return Counter(r.headers.get("X-Streamem-Id", "") for r in self.accepted)

    def wait_accepted(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.accepted) >= n:
                    return True
            time.sleep(0.01)
        return False


def make_record(i: int, key: str | None = "pump-1", severity: float = 90.0) -> AnomalyRecord:
    """A realistic anomaly record with two feature contributions (one of them missing)."""
    return AnomalyRecord(
        id=f"events:0:{i}", key=key, timestamp=1_700_000_000.0 + i, score=12.5 + i % 7,
        tail_probability=10.0 ** -(12.5 + i % 7), severity=severity, threshold=8.0,
        top_features=(FeatureContribution("temperature", 0, 91.5, 20.0, 7.2),
                      FeatureContribution("flow", 2, float("nan"), 3.0, 0.0)),
        model_generation=3, detected_at=1_700_000_000.5 + i)


def make_incident(key: str | None = "pump-1", status: str = "firing", started_at: float = 1e9,
                  ended_at: float | None = None, max_severity: float = 80.0,
                  last: AnomalyRecord | None = None, count: int = 1) -> Incident:
    return Incident(id=f"{key}:{round(started_at * 1000)}", key=key,
                    status=status,  # type: ignore[arg-type]
                    started_at=started_at, ended_at=ended_at, max_severity=max_severity,
                    last=last, count=count)
