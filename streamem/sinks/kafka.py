"""Kafka sinks: anomalies and incidents to a topic, and a dead-letter topic.

Both produce with ``acks='all'`` and, by default, the idempotent producer (no duplicates from
the producer's own retries; pass ``enable_idempotence=False`` for brokers whose ACLs do not
grant IdempotentWrite). :meth:`KafkaSink.emit` only enqueues: delivery results arrive on the
producer's sender thread and update :attr:`KafkaSink.stats` (``delivered`` on ack; ``failed``
when the producer gave up after ``delivery_timeout_ms`` or could not queue a message).
:meth:`flush` waits for the acks. Nothing is spooled to disk: while the broker is down the
producer buffers in memory and retries until ``delivery_timeout_ms``; a message it gives up
on is kept (up to ``max_retained`` of them) and produced again by the next ``flush``, which
returns False (or raises, for the dead-letter sink) while any is unacknowledged, so the
daemon never checkpoints past it. Beyond ``max_retained`` messages are dropped
(``stats.dropped``) and ``flush`` fails for the rest of the process: the next start replays
them from the last checkpoint. After such a retry, order is not kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.errors import ConfigError, SinkError
from streamem.kafka.client import KafkaError, KafkaProducer, KafkaTimeoutError
from streamem.kafka.settings import KafkaSecurity, client_config
from streamem.logs import RateLimitedLog
from streamem.sinks.base import ClosingSink, SinkStats
from streamem.sinks.payload import anomaly_document, dumps, incident_document

__all__ = ["KafkaDeadLetterSink", "KafkaSink"]

logger = logging.getLogger(__name__)

_CONNECT_BACKOFF_SECONDS = 5.0


class _Producer:
    """A lazily connected KafkaProducer with delivery accounting (shared by both sinks)."""

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str, name: str,
                 security: KafkaSecurity | None, enable_idempotence: bool,
                 delivery_timeout_ms: int, max_block_ms: int, client_id: str,
                 config_path: str, max_retained: int = 100_000) -> None:
        if not topic:
            raise ConfigError(f"{config_path}.topic", "required for a kafka sink; name the topic")
        self.name = name
        self.topic = topic
        self.stats = SinkStats()
        self.security = (security or KafkaSecurity()).validate(config_path)
        self._config: dict[str, Any] = client_config(
            bootstrap_servers, self.security, client_id=client_id, acks="all",
            enable_idempotence=enable_idempotence, linger_ms=5,
            delivery_timeout_ms=delivery_timeout_ms, max_block_ms=max_block_ms,
            reconnect_backoff_max_ms=5000)
        servers = self._config["bootstrap_servers"]
        if not servers or not all(servers):
            raise ConfigError(f"{config_path}.bootstrap_servers",
                              f"{bootstrap_servers!r} names no broker; give host:port entries")
        if not enable_idempotence:
            self._config["max_in_flight_requests_per_connection"] = 1  # keep order on retries
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._retained: list[_Message] = []  # not acknowledged for good: produced again
        self._max_retained = max_retained
        self._lost = 0
        self._connect_after = 0.0
        self._closed = False
        self._warn = RateLimitedLog(logger)

    def _get(self) -> KafkaProducer:
        if self._closed:
            raise SinkError(f"{self.name}: used after close()")
        if self._producer is None:
            # bootstrapping blocks up to max_block_ms when the broker is down; after a failure
            # wait before trying again, so emit() does not stall detection on every record
            now = time.monotonic()
            if now < self._connect_after:
                raise KafkaTimeoutError(f"no broker answered {self._config['bootstrap_servers']}"
                                         " at the last attempt; trying again shortly")
            try:
                self._producer = KafkaProducer(
                    **self._config, bootstrap_timeout_ms=self._config["max_block_ms"])
            except KafkaError:
                self._connect_after = time.monotonic() + _CONNECT_BACKOFF_SECONDS
                raise
        return self._producer

    def send(self, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> bool:
        """Enqueue one message; False (counted, logged, kept for the next flush) if it could
        not even be queued now.

        Raises
        ------
        SinkError
            If the sink is closed.
        """
        message = _Message(value, key, headers)
        try:
            self._produce(message)
        except KafkaError as exc:
            self._retain(message, exc, "could not queue a message")
            return False
        return True

    def _produce(self, message: _Message) -> None:
        future = self._get().send(self.topic, value=message.value, key=message.key,
                                  headers=message.headers)
        with self._lock:
            self._pending += 1
        future.add_callback(self._acked)
        future.add_errback(lambda exc: self._failed(message, exc))

    def _acked(self, _metadata: object) -> None:
        with self._lock:
            self._pending -= 1
            self.stats.delivered += 1

    def _failed(self, message: _Message, exc: BaseException) -> None:
        with self._lock:
            self._pending -= 1
        self._retain(message, exc, "delivery failed after retries")

    def _retain(self, message: _Message, exc: BaseException, what: str) -> None:
        """Keep a message the producer could not deliver, for the next flush (bounded)."""
        with self._lock:
            self.stats.failed += 1
            kept = len(self._retained) < self._max_retained
            if kept:
                self._retained.append(message)
            else:
                self._lost += 1
                self.stats.dropped += 1
        if kept:
            self._warn.warning("retain", "%s: %s for topic %r (%r); kept, produced again on "
                               "the next flush", self.name, what, self.topic, exc)
        else:
            self._warn.warning("lost", "%s: %s for topic %r (%r); %d messages kept already, "
                               "dropped (replayed from the last checkpoint after a restart)",
                               self.name, what, self.topic, exc, self._max_retained)

    @property
    def pending(self) -> int:
        """Messages queued or kept, but not yet acknowledged."""
        with self._lock:
            return self._pending + len(self._retained)

    def _resend(self) -> None:
        with self._lock:
            retry, self._retained = self._retained, []
        for n, message in enumerate(retry):
            try:
                self._produce(message)
            except KafkaError as exc:
                with self._lock:
                    self._retained[:0] = retry[n:]
                self._warn.warning("resend", "%s: could not queue %d kept messages for topic "
                                   "%r: %r", self.name, len(retry) - n, self.topic, exc)
                return

    def _wait(self, timeout: float) -> bool:
        """Produce kept messages again, then wait up to ``timeout`` seconds for every queued
        message; True when none is left and none was ever dropped."""
        if self._retained:
            self._resend()
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout)
            except KafkaError as exc:
                self._warn.warning("flush", "%s: flush timed out after %.1f s with %d messages "
                                   "unacknowledged: %r", self.name, timeout, self.pending, exc)
        return self.pending == 0 and self._lost == 0

    def _shutdown(self, timeout: float) -> None:
        if self._closed:
            return
        self._wait(timeout)
        self._closed = True
        if self.pending:
            logger.error("%s: %d messages for topic %r not acknowledged at close; they are "
                         "replayed from the last checkpoint", self.name, self.pending,
                         self.topic)
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=timeout)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, topic={self.topic!r}, "
                f"bootstrap_servers={self._config['bootstrap_servers']!r}, "
                f"security={self.security!r})")


class KafkaSink(_Producer, ClosingSink):
    """Produce anomalies and incidents as JSON to a topic, keyed by the event key.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` strings (or one comma-separated string).
    topic
        Destination topic (it must exist unless the broker auto-creates topics).
    name
        Sink name used in logs and the ``sink`` metric label.
    security
        TLS/SASL settings.
    enable_idempotence
        Idempotent producer (needs the IdempotentWrite ACL on secured clusters).
    delivery_timeout_ms
        How long the producer retries one message before counting it as dropped.
    max_block_ms
        Longest time :meth:`emit` may block (waiting for metadata of the topic).
    client_id
        Client id shown in broker logs.

    Examples
    --------
    Construction does not connect:

    >>> sink = KafkaSink(["127.0.0.1:9"], "anomalies", name="anomalies-kafka")
    >>> sink.stats.delivered, sink.flush(0.1)
    (0, True)
    >>> sink.close(); sink.close()
    """

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str, *,
                 name: str = "kafka", security: KafkaSecurity | None = None,
                 enable_idempotence: bool = True, delivery_timeout_ms: int = 120000,
                 max_block_ms: int = 5000, client_id: str = "streamem-sink") -> None:
        super().__init__(bootstrap_servers, topic, name, security, enable_idempotence,
                         delivery_timeout_ms, max_block_ms, client_id, f"sinks[{name}]")

    def emit(self, record: AnomalyRecord) -> None:
        """Queue ``record`` as ``{"type": "anomaly", ...}`` keyed by ``record.key``."""
        self.send(dumps(anomaly_document(record)).encode(), _key(record.key))

    def emit_incident(self, incident: Incident) -> None:
        """Queue an incident transition as ``{"type": "incident", ...}`` keyed by its key."""
        self.send(dumps(incident_document(incident)).encode(), _key(incident.key))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the broker's acks; True when nothing is left unacknowledged."""
        return self._wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to ``timeout`` seconds) and release; safe to call twice."""
        self._shutdown(timeout)


class KafkaDeadLetterSink(_Producer, ClosingSink):
    """Produce rejected events to a dead-letter topic, raw, with the reason in headers.

    The value is the raw payload; header ``streamem-reason`` holds the reason and header
    ``streamem-source`` the source id (``topic:partition:offset``).

    Parameters
    ----------
    bootstrap_servers, topic, name, security, enable_idempotence, delivery_timeout_ms,
    max_block_ms, client_id
        As for :class:`KafkaSink`.

    Examples
    --------
    >>> dlq = KafkaDeadLetterSink("127.0.0.1:9", "streamem-dead-letter")
    >>> dlq.name, dlq.topic
    ('kafka-dead-letter', 'streamem-dead-letter')
    >>> dlq.close()
    """

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str, *,
                 name: str = "kafka-dead-letter", security: KafkaSecurity | None = None,
                 enable_idempotence: bool = True, delivery_timeout_ms: int = 120000,
                 max_block_ms: int = 5000, client_id: str = "streamem-dead-letter") -> None:
        super().__init__(bootstrap_servers, topic, name, security, enable_idempotence,
                         delivery_timeout_ms, max_block_ms, client_id, "dead_letter")

    def write(self, payload: bytes, reason: str, source_id: str) -> None:
        """Queue one rejected event.

        Raises
        ------
        SinkError
            If the sink is closed. A dead letter that cannot be queued now (no broker within
            ``max_block_ms``) is kept and queued again by :meth:`flush`.
        """
        headers = [("streamem-reason", str(reason).encode("utf-8", "surrogatepass")),
                   ("streamem-source", str(source_id).encode("utf-8", "surrogatepass"))]
        self.send(bytes(payload), None, headers)  # if it cannot be queued, flush retries it

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for the acks of everything written.

        Raises
        ------
        SinkError
            Some dead letters are still unacknowledged after ``timeout`` seconds.
        """
        if not self._wait(timeout):
            raise SinkError(f"{self.name}: {self.pending} dead letters not acknowledged by "
                            f"topic {self.topic!r} after {timeout:.0f} s"
                            + (f" ({self._lost} dropped)" if self._lost else "")
                            + "; is the broker up?")

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to ``timeout`` seconds) and release; safe to call twice."""
        self._shutdown(timeout)


def _key(key: str | None) -> bytes | None:
    return None if key is None else str(key).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class _Message:
    """One message as given to the producer (kept to produce it again after a failure)."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]] | None
