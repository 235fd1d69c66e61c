"""Checkpoints on a compacted Kafka topic, so pods keep nothing on local disk.

Each snapshot is one message: key = the snapshot key (``global``, ``p3``), value =
:func:`~streamem.state.codec.encode_snapshot` bytes (gzip-compressed on the wire). The topic
is created with ``cleanup.policy=compact`` when missing, so the broker keeps at least the
newest message per key. :meth:`KafkaCheckpointStore.save` returns only after every in-sync
replica acknowledged (``acks=all``); :meth:`KafkaCheckpointStore.load_latest` reads the topic
to its end and returns the newest message of the key that decodes, skipping corrupt ones with
a warning. A tombstone (null value) deletes the key's earlier snapshots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from streamem.errors import StateError
from streamem.kafka.client import (
    KafkaConsumer,
    KafkaError,
    KafkaProducer,
    TopicPartition,
)
from streamem.kafka.settings import KafkaSecurity
from streamem.state._kafka_topic import MAX_RECORD_BYTES as _MAX_BYTES
from streamem.state._kafka_topic import CompactedTopicStore
from streamem.state.base import Snapshot, SnapshotCheck
from streamem.state.codec import UnknownSchemaVersionError, decode_snapshot, encode_snapshot

__all__ = ["KafkaCheckpointStore"]

logger = logging.getLogger(__name__)



class KafkaCheckpointStore(CompactedTopicStore):
    """Durable snapshots on a compacted topic.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` strings (or one comma-separated string).
    topic
        The state topic (``checkpoint.topic``); one per daemon group.
    security
        TLS/SASL settings.
    create_topic
        Create the topic (compacted, one partition) when it does not exist.
    replication_factor
        For a created topic; ``-1`` uses the broker's ``default.replication.factor``.
    timeout
        Seconds :meth:`save` waits for the acknowledgement and :meth:`load_latest` for the
        read to the end of the topic.
    client_id
        Client id shown in broker logs.

    Examples
    --------
    Construction does not connect; the first save or load does:

    >>> store = KafkaCheckpointStore("127.0.0.1:9", "streamem-state")
    >>> store
    KafkaCheckpointStore(topic='streamem-state', bootstrap_servers=['127.0.0.1:9'])
    >>> store.close(); store.close()
    """

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str = "streamem-state", *,
                 security: KafkaSecurity | None = None, create_topic: bool = True,
                 replication_factor: int = -1, timeout: float = 30.0,
                 client_id: str = "streamem-state") -> None:
        super().__init__(bootstrap_servers, topic, security=security,
                         create_topic=create_topic, replication_factor=replication_factor,
                         timeout=timeout, client_id=client_id, what="checkpoint")
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None

    def save(self, snapshot: Snapshot) -> None:
        """Write ``snapshot``; returns once the broker acknowledged it (``acks=all``).

        Raises
        ------
        StateError
            The store is closed, the state cannot be encoded, or the broker did not
            acknowledge the snapshot within ``timeout`` seconds.
        """
        self._check_open()
        data = encode_snapshot(snapshot)
        try:
            self._ensure_topic()
            if self._producer is None:
                self._producer = KafkaProducer(
                    **self._common, acks="all", enable_idempotence=True,
                    compression_type="gzip", max_request_size=_MAX_BYTES, linger_ms=0,
                    max_block_ms=int(self._timeout * 1000),
                    bootstrap_timeout_ms=int(self._timeout * 1000))
            future = self._producer.send(self.topic, key=snapshot.key.encode(), value=data)
            meta = future.get(timeout=self._timeout)
        except KafkaError as exc:
            raise StateError(
                f"checkpoint {snapshot.key!r} #{snapshot.sequence} was not acknowledged by "
                f"topic {self.topic!r} within {self._timeout:.0f} s ({exc!r}); check "
                "checkpoint.topic and that the brokers are up") from exc
        logger.debug("saved checkpoint %s #%d at %s[%d]@%d (%d bytes)", snapshot.key,
                     snapshot.sequence, self.topic, meta.partition, meta.offset, len(data))

    def load_latest(self, key: str = "global",
                    check: SnapshotCheck | None = None) -> Snapshot | None:
        """Newest valid snapshot of ``key`` (corrupt ones, and those ``check`` rejects,
        skipped with a warning), or None.

        Raises
        ------
        UnknownSchemaVersionError
            The newest snapshot was written by a newer streamem (upgrade, do not roll back).
        StateError
            Snapshots exist but none decodes, or the topic cannot be read to its end.
        """
        values = self._read_all().get(key, [])
        errors: list[str] = []
        for offset, data in reversed(values):
            try:
                snap = decode_snapshot(data)
                if snap.key != key:
                    raise StateError(f"message key {key!r} holds state {snap.key!r} (misplaced)")
                if check is not None:
                    check(snap)
            except UnknownSchemaVersionError as exc:
                raise UnknownSchemaVersionError(
                    f"checkpoint {key} at {self.topic} offset {offset}: {exc}") from exc
            except StateError as exc:
                logger.warning("skipping unusable checkpoint %s at %s offset %d: %s", key,
                               self.topic, offset, exc)
                errors.append(f"offset {offset}: {exc}")
                continue
            if errors:
                logger.warning("restored the older checkpoint %s #%d (offset %d) instead", key,
                               snap.sequence, offset)
            return snap
        if errors:
            raise StateError(f"none of the {len(values)} checkpoints of {key!r} in topic "
                             f"{self.topic!r} is usable ({'; '.join(errors)}); delete the key "
                             "(a tombstone) to start from scratch")
        return None

    def keys(self) -> list[str]:
        """Keys that have at least one snapshot, sorted."""
        return sorted(k for k, v in self._read_all().items() if v)

    def close(self) -> None:
        """Release the clients; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        producer, self._producer = self._producer, None
        consumer, self._consumer = self._consumer, None
        if producer is not None:
            producer.close(timeout=self._timeout)
        if consumer is not None:
            consumer.close(autocommit=False)

    def __enter__(self) -> KafkaCheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _read_all(self) -> dict[str, list[tuple[int, bytes]]]:
        """``{key: [(offset, value), ...]}`` in log order, reading the topic to its end."""
        self._check_open()
        try:
            self._ensure_topic()
            if self._consumer is None:
                self._consumer = KafkaConsumer(
                    **self._common, enable_auto_commit=False, allow_auto_create_topics=False,
                    fetch_max_bytes=4 * _MAX_BYTES, max_partition_fetch_bytes=_MAX_BYTES,
                    bootstrap_timeout_ms=int(self._timeout * 1000))
            consumer = self._consumer
            deadline = time.monotonic() + self._timeout
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                return {}
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps, timeout_ms=int(self._timeout * 1000))
            found: dict[str, list[tuple[int, bytes]]] = {}
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise StateError(f"could not read checkpoint topic {self.topic!r} to its "
                                     f"end within {self._timeout:.0f} s; are the brokers up?")
                for batch in consumer.poll(timeout_ms=500).values():
                    for rec in batch:
                        if rec.key is None:
                            continue
                        key = rec.key.decode(errors="replace")
                        if rec.value is None:  # tombstone: forget what came before
                            found[key] = []
                        else:
                            found.setdefault(key, []).append((rec.offset, rec.value))
        except KafkaError as exc:
            raise StateError(f"cannot read checkpoint topic {self.topic!r}: {exc!r}; check "
                             "checkpoint.topic and that the brokers are up") from exc
        return found
