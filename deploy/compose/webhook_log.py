"""Alertmanager webhook receiver that logs every notification (compose service ``alert-log``).

Alertmanager POSTs a JSON document per notification group; this server prints one line per
alert (status, name, instance, summary) and keeps the payloads in memory, so the deploy tests
use the same receiver to prove that Prometheus alerts reach Alertmanager's webhook.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


def describe(payload: dict[str, Any]) -> list[str]:
    """One human-readable line per alert in an Alertmanager webhook payload.

    Parameters
    ----------
    payload
        The decoded JSON body (Alertmanager webhook format version 4).

    Returns
    -------
    list of str
        ``"<status> <alertname> instance=<instance> severity=<severity>: <summary>"``.

    Examples
    --------
    >>> describe({"alerts": [{"status": "firing", "labels": {"alertname": "X",
    ...           "instance": "a:9108", "severity": "warning"},
    ...           "annotations": {"summary": "too many"}}]})
    ['firing X instance=a:9108 severity=warning: too many']
    """
    lines = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        lines.append(
            f"{alert.get('status', '?')} {labels.get('alertname', '?')} "
            f"instance={labels.get('instance', '-')} severity={labels.get('severity', '-')}: "
            f"{alert.get('annotations', {}).get('summary', '')}"
        )
    return lines


class AlertLog:
    """Threaded HTTP server collecting Alertmanager webhook payloads; a context manager.

    Parameters
    ----------
    host, port
        Bind address; port 0 picks a free port (see :attr:`url`).

    Examples
    --------
    >>> import urllib.request
    >>> with AlertLog("127.0.0.1", 0) as log:
    ...     req = urllib.request.Request(log.url + "/alerts", data=b'{"alerts": []}',
    ...                                  method="POST")
    ...     urllib.request.urlopen(req).status, len(log.payloads())
    (200, 1)
    """

    def __init__(self, host: str = "0.0.0.0", port: int = 8080) -> None:
        self._lock = threading.Lock()
        self._payloads: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_response(413)
                    self.end_headers()
                    return
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                owner._record(payload if isinstance(payload, dict) else {"body": payload})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("alert-log: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    def _record(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._payloads.append(payload)
        for line in describe(payload):
            logger.info("%s", line)

    def payloads(self) -> list[dict[str, Any]]:
        """A copy of every payload received so far, oldest first."""
        with self._lock:
            return list(self._payloads)

    def close(self) -> None:
        """Stop serving; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AlertLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> int:  # pragma: no cover - runs inside the compose stack
    """Serve on 0.0.0.0:$PORT (default 8080) until interrupted; returns 0."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s alert-log %(message)s")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with AlertLog("0.0.0.0", int(os.environ.get("PORT", "8080"))) as log:
        logger.info("listening on %s/alerts", log.url)
        done.wait()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
