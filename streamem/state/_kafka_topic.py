"""What the two Kafka state stores share: one compacted topic, its client settings, its creation.

:class:`~streamem.state.kafka_store.KafkaCheckpointStore` (snapshots) and
:class:`~streamem.state.kafka_keys.KafkaKeyStore` (per-key states) each keep their state in a
one-partition compacted topic. This base holds the topic, the validated security settings,
the client configuration, lazy topic creation and the closed flag; the stores add their own
producer, consumer and record layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from streamem.errors import ConfigError, StateError
from streamem.kafka.client import ensure_compacted_topic
from streamem.kafka.settings import KafkaSecurity, client_config

__all__ = ["MAX_RECORD_BYTES", "CompactedTopicStore"]

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""Per record: the created topic's ``max.message.bytes`` and the producer's limit."""


class CompactedTopicStore:
    """Base of the Kafka state stores: a compacted topic created on first use.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` strings (or one comma-separated string).
    topic
        The state topic; empty is a :class:`~streamem.errors.ConfigError` naming ``what``.
    security, create_topic, replication_factor, timeout, client_id
        As the stores document them.
    what
        The store's name in messages ("checkpoint", "key-state").

    Examples
    --------
    >>> store = CompactedTopicStore("127.0.0.1:1", "t", security=None, create_topic=False,
    ...                             replication_factor=-1, timeout=1.0, client_id="doc",
    ...                             what="example")
    >>> store
    CompactedTopicStore(topic='t', bootstrap_servers=['127.0.0.1:1'])
    >>> CompactedTopicStore("127.0.0.1:1", "", security=None, create_topic=False,
    ...                     replication_factor=-1, timeout=1.0, client_id="doc", what="example")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: checkpoint.topic: required for a Kafka example store
    """

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str, *,
                 security: KafkaSecurity | None, create_topic: bool, replication_factor: int,
                 timeout: float, client_id: str, what: str) -> None:
        if not topic:
            raise ConfigError("checkpoint.topic", f"required for a Kafka {what} store")
        self.topic = topic
        self.security = (security or KafkaSecurity()).validate("checkpoint")
        # reconnect within 5 s of a broker coming back (kafka-python's default max is 30 s)
        self._common: dict[str, Any] = client_config(bootstrap_servers, self.security,
                                                     client_id=client_id,
                                                     reconnect_backoff_max_ms=5000)
        self._create_topic = create_topic
        self._replication_factor = replication_factor
        self._timeout = timeout
        self._what = what
        self._topic_ready = False
        self._closed = False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(topic={self.topic!r}, "
                f"bootstrap_servers={self._common['bootstrap_servers']!r})")

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"{self!r} is closed; open a new store")

    def _ensure_topic(self) -> None:
        if self._topic_ready or not self._create_topic:
            return
        if ensure_compacted_topic(self._common, self.topic, timeout=self._timeout,
                                  replication_factor=self._replication_factor,
                                  max_message_bytes=MAX_RECORD_BYTES):
            logging.getLogger(type(self).__module__).info(
                "created compacted %s topic %r", self._what, self.topic)
        self._topic_ready = True
