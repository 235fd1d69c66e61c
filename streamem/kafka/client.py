"""kafka-python, in one place: the clients, the errors and the internals streamem uses.

This is the only module that imports :mod:`kafka`. The source (consumer, its fetcher and
group callbacks), the Kafka sinks (producer) and the checkpoint store (producer, consumer,
admin client) take what they need from here, so the version kafka-python is pinned against
(``pyproject.toml``) and everything streamem touches of it are visible at a glance.
"""

from __future__ import annotations

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
]

VERSION: str = kafka.__version__
"""The installed kafka-python version (the fast record path checks it)."""
