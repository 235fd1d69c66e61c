"""kafka-python, in one place: the clients, the errors and the internals streamem uses.

This is the only module that imports :mod:`kafka`. The source (consumer, its fetcher and
group callbacks), the Kafka sinks (producer) and the checkpoint store (producer, consumer,
admin client) take what they need from here, so the version kafka-python is pinned against
(``pyproject.toml``) and everything streamem touches of it are visible at a glance.
"""

from __future__ import annotations

from typing import Any

import kafka
import kafka.codec as codecs
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import Fetcher
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import (
    AuthorizationError,
    CorruptRecordError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    UnsupportedCodecError,
)
from kafka.protocol.consumer import IsolationLevel
from kafka.record.util import calc_crc32c

__all__ = [
    "VERSION",
    "AsyncConsumerRebalanceListener",
    "AuthorizationError",
    "CorruptRecordError",
    "Fetcher",
    "IsolationLevel",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaError",
    "KafkaProducer",
    "KafkaTimeoutError",
    "NewTopic",
    "OffsetAndMetadata",
    "SaslAuthenticationFailedError",
    "TopicAlreadyExistsError",
    "TopicPartition",
    "UnsupportedCodecError",
    "calc_crc32c",
    "codecs",
    "ensure_compacted_topic",
]

VERSION: str = kafka.__version__
"""The installed kafka-python version (the fast record path checks it)."""


def ensure_compacted_topic(common: dict[str, Any], topic: str, *, replication_factor: int,
                           max_message_bytes: int, timeout: float) -> bool:
    """Create ``topic`` as a one-partition compacted topic unless it exists.

    The checkpoint store and the key store both keep their state in such a topic. Returns
    True when this call created it; another instance creating it meanwhile is not an error.
    """
    admin = KafkaAdminClient(**common, bootstrap_timeout_ms=int(timeout * 1000))
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics([NewTopic(topic, 1, replication_factor, topic_configs={
                "cleanup.policy": "compact", "max.message.bytes": str(max_message_bytes)})])
        except TopicAlreadyExistsError:
            return False  # another instance created it meanwhile
        return True
    finally:
        admin.close()
