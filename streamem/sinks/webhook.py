"""The webhook sink: anomalies and incidents POSTed as JSON, signed, de-duplicated.

Each request carries ``X-Streamem-Id`` (the delivery id; receivers de-duplicate on it, since
delivery is at-least-once; ids from events are percent-encoded there, see
:func:`~streamem.sinks.payload.header_id`, while the body keeps the original) and, when a
secret is configured,
``X-Streamem-Signature: sha256=<hex HMAC-SHA256 of the exact body>``. A receiver verifies
with::

    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-Streamem-Signature"])

Per key, at most one anomaly is sent per ``cooldown_seconds`` (the rest are counted in
``stats.suppressed``); incidents are never suppressed. Queueing, retries and the durable
spool are those of :class:`~streamem.sinks.delivery.QueuedHttpSink`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.sinks.delivery import QueuedHttpSink
from streamem.sinks.http import HttpTransport, redact_url
from streamem.sinks.payload import (
    anomaly_document,
    delivery_id,
    dumps,
    header_id,
    incident_document,
)
from streamem.sinks.spool import Delivery

__all__ = ["MAX_COOLDOWN_KEYS", "WebhookSink", "sign"]

MAX_COOLDOWN_KEYS = 100_000
"""Most keys a webhook sink holds in their cool-down at once (bounded memory)."""


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Streamem-Signature`` value of a body.

    Parameters
    ----------
    secret
        The shared secret (text is UTF-8 encoded).
    body
        The exact request body.

    Returns
    -------
    str
        ``sha256=`` and the hex HMAC-SHA256 digest.

    Examples
    --------
    >>> sign("s3cret", b'{"id":"f:0:1"}')
    'sha256=...'
    >>> len(sign(b"k", b"")) == len("sha256=") + 64
    True
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookSink(QueuedHttpSink):
    """POST each anomaly and incident as JSON to a url, signed and rate-limited per key.

    Parameters
    ----------
    name
        Sink name (the ``sink`` label of the metrics).
    url
        The receiver (``http://`` or ``https://``).
    secret
        Shared HMAC secret; never shown in ``repr`` or logs.
    timeout_seconds
        Timeout of one request.
    max_retries
        Retries of a delivery before it goes to the spool.
    backoff_base_seconds, backoff_max_seconds
        Retry backoff ceilings (full jitter below them).
    cooldown_seconds
        Per key, at most one anomaly per this many seconds (0 disables it). At most
        :data:`MAX_COOLDOWN_KEYS` keys are held in their cool-down; past that the oldest one's
        ends early (counted in ``cooldown_evictions``).
    queue_size
        Deliveries held in memory before they go straight to the spool.
    spool_dir
        This sink's spool directory (required: it must survive restarts).
    transport
        HTTP transport (a new one by default).
    clock
        Monotonic clock for the cool-down (``time.monotonic``).

    Examples
    --------
    Nothing listens on port 1, so the anomaly waits in the spool (and would be sent by the
    next instance over the same directory):

    >>> import tempfile
    >>> r = AnomalyRecord(id="f:0:7", key="pump-1", timestamp=None, score=9.0,
    ...                   tail_probability=1e-9, severity=90.0, threshold=6.0)
    >>> sink = WebhookSink("hook", "http://127.0.0.1:1/hook", secret="s3cret",
    ...                    max_retries=0, spool_dir=tempfile.mkdtemp())
    >>> sink
    WebhookSink(name='hook', url='http://127.0.0.1:1/…', secret='***')
    >>> sink.emit(r); sink.emit(r)   # the second is within the cool-down of key pump-1
    >>> sink.close()
    >>> sink.stats.spooled, sink.stats.suppressed, sink.stats.delivered
    (1, 1, 0)
    """

    def __init__(self, name: str, url: str, secret: str | None = None, *,
                 timeout_seconds: float = 5.0, max_retries: int = 5,
                 backoff_base_seconds: float = 0.5, backoff_max_seconds: float = 30.0,
                 cooldown_seconds: float = 60.0, queue_size: int = 10000,
                 spool_dir: str | os.PathLike[str],
                 transport: HttpTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._secret = secret.encode("utf-8") if secret else None
        self.cooldown_seconds = float(cooldown_seconds)
        # key -> time of its last sent anomaly, oldest first (the clock never goes back), so
        # expired keys leave from the front; at most MAX_COOLDOWN_KEYS are held
        self._last_sent: OrderedDict[str | None, float] = OrderedDict()
        self.cooldown_evictions = 0
        self._cooldown_lock = threading.Lock()
        super().__init__(name, url, spool_dir=spool_dir, timeout_seconds=timeout_seconds,
                         max_retries=max_retries, backoff_base_seconds=backoff_base_seconds,
                         backoff_max_seconds=backoff_max_seconds, queue_size=queue_size,
                         transport=transport, clock=clock)

    def _allowed(self, key: str | None) -> bool:
        """Whether the cool-down of ``key`` lets an anomaly through now (and start it if so)."""
        if self.cooldown_seconds <= 0:
            return True
        now = self._clock()
        sent = self._last_sent
        with self._cooldown_lock:
            last = sent.get(key)
            if last is not None and now - last < self.cooldown_seconds:
                return False
            while sent and now - next(iter(sent.values())) >= self.cooldown_seconds:
                sent.popitem(last=False)  # expired: O(1) each, never a scan of all keys
            sent.pop(key, None)
            sent[key] = now
            if len(sent) > MAX_COOLDOWN_KEYS:  # more keys alerting within one cool-down
                sent.popitem(last=False)      # than the bound: the oldest cool-down ends early
                self.cooldown_evictions += 1
        return True

    def _anomaly_delivery(self, record: AnomalyRecord) -> Delivery | None:
        if not self._allowed(record.key):
            self._count("suppressed")
            return None
        body = dumps(anomaly_document(record)).encode("utf-8")
        return Delivery(delivery_id(record), "anomaly", record.key, body)

    def _incident_delivery(self, incident: Incident) -> Delivery | None:
        body = dumps(incident_document(incident)).encode("utf-8")
        return Delivery(delivery_id(incident), "incident", incident.key, body)

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {"X-Streamem-Id": header_id(delivery.id), "User-Agent": "streamem"}
        if self._secret is not None:
            headers["X-Streamem-Signature"] = sign(self._secret, delivery.body)
        return headers

    def __repr__(self) -> str:
        secret = "'***'" if self._secret is not None else "None"
        return (f"WebhookSink(name={self.name!r}, url={redact_url(self.url)!r}, "
                f"secret={secret})")
