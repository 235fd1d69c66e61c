"""Per-key states of a :class:`~streamem.KeyedDetector` on a compacted Kafka topic.

One record per key: message key = the key's text, value = its last-seen time (float64,
little-endian) then its blob; a tombstone (null value) forgets a key (``key_idle_ttl``). The
meta snapshot and the positions are one record under the reserved key ``\\x00meta`` (a key
with a control character, which :func:`~streamem.scoring.keyed_support.check_keys` refuses,
so no entity can collide with it). The topic has one partition and
``cleanup.policy=compact``, so the broker keeps at least the newest record per key.

A checkpoint is one Kafka transaction (``transactional_id``; readers use
``isolation_level=read_committed``) holding the key records, the tombstones and, **last**, the
meta record. The transaction makes the checkpoint all-or-nothing; writing the meta last keeps
the order safe even for a reader that sees an aborted or unfinished one in the log: every key
state a meta record's positions depend on precedes it, so positions never run ahead of the key
states (a replay from those positions would otherwise skip events the keys never learned).
A writer killed mid-checkpoint leaves an open transaction that read-committed readers do not
see; the next writer's ``init_transactions`` aborts it.

The store reads the topic to its end once (on first use) into an in-memory map
``{key: (last_seen, blob)}`` and serves :meth:`KafkaKeyStore.get_many` from it, updating it on
each write. It is bounded by ``max_keys`` (default 10**6; about 0.5 KiB of memory per key at
d=4, K=2): beyond it the store raises, and the fix is the SQLite store or more input partitions
across instances.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
from collections.abc import Iterable, Sequence

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
from streamem.state.keys import check_blobs

__all__ = ["META_KEY", "KafkaKeyStore"]

logger = logging.getLogger(__name__)

#: The reserved message key of the meta + positions record.
META_KEY = b"\x00meta"
_META = struct.Struct("<4sQ")  # magic, length of the meta snapshot; the positions follow
_META_MAGIC = b"SKM\x01"
_SEEN = struct.Struct("<d")


class KafkaKeyStore(CompactedTopicStore):
    """A key store on one compacted topic (see the module docstring for the layout).

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` strings (or one comma-separated string).
    topic
        The key-state topic; one per keyed detector (per input partition when scaled out).
    security
        TLS/SASL settings.
    transactional_id
        The producer's transactional id (default ``streamem-keys-<topic>``); a new writer with
        the same id fences the old one and aborts its unfinished checkpoint.
    create_topic
        Create the topic (compacted, one partition) when it does not exist.
    replication_factor
        For a created topic; ``-1`` uses the broker's ``default.replication.factor``.
    max_keys
        Bound of the in-memory map of key states.
    timeout
        Seconds a write waits for the commit and a read for the end of the topic.

    Examples
    --------
    Construction does not connect; the first read or write does:

    >>> store = KafkaKeyStore("127.0.0.1:9", "fleet-keys")
    >>> store
    KafkaKeyStore(topic='fleet-keys', bootstrap_servers=['127.0.0.1:9'])
    >>> store.close(); store.close()
    """

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str, *,
                 security: KafkaSecurity | None = None, transactional_id: str | None = None,
                 create_topic: bool = True, replication_factor: int = -1,
                 max_keys: int = 1_000_000, timeout: float = 30.0,
                 client_id: str = "streamem-keys") -> None:
        super().__init__(bootstrap_servers, topic, security=security,
                         create_topic=create_topic, replication_factor=replication_factor,
                         timeout=timeout, client_id=client_id, what="key-state")
        self.transactional_id = transactional_id or f"streamem-keys-{topic}"
        self.max_keys = max_keys
        self._producer: KafkaProducer | None = None
        self._map: dict[str, tuple[float, bytes]] | None = None
        self._meta: tuple[bytes | None, bytes | None] = (None, None)
        self._oldest = float("inf")  # no key last seen before this (skips TTL scans)

    def __enter__(self) -> KafkaKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the producer; safe to call twice (the last checkpoint is durable)."""
        if self._closed:
            return
        self._closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=self._timeout)

    def __len__(self) -> int:
        return len(self._keys())

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """The stored states of those ``keys`` that the store has."""
        m = self._keys()
        out = {k: m[k][1] for k in keys if k in m}
        check_blobs(out, f"topic {self.topic!r}")
        return out

    def read_meta(self) -> tuple[bytes | None, bytes | None]:
        """The last committed checkpoint's meta snapshot and positions (None before one)."""
        self._keys()
        return self._meta

    def write(self, rows: Iterable[tuple[str, float, bytes]], meta: bytes, positions: bytes,
              forget_before: float | None = None) -> None:
        """One transaction: the key records, tombstones for the keys last seen before
        ``forget_before``, then the meta record; returns once it is committed.

        Raises
        ------
        StateError
            The store is closed, the key map would pass ``max_keys``, or the broker did not
            commit within ``timeout`` seconds (the transaction is aborted; nothing changed).
        """
        m = self._keys()
        new = {k: (t, b) for k, t, b in rows}
        gone: set[str] = set()
        if forget_before is not None and forget_before > min(
                self._oldest, min((t for t, _ in new.values()), default=float("inf"))):
            # a scan of the stored keys, only when the oldest of them passed the TTL
            gone = {k for k, (t, _) in new.items() if t < forget_before}
            gone.update(k for k, (t, _) in m.items() if t < forget_before and k not in new)
        size = len(m) + sum(k not in m for k in new) - sum(k in m for k in gone)
        if size > self.max_keys:
            raise StateError(f"key store {self!r} would hold {size} keys, over max_keys="
                             f"{self.max_keys}; raise max_keys (about 0.5 KiB of memory per "
                             "key), set model.key_idle_ttl, or use the SQLite key store")
        value = _META.pack(_META_MAGIC, len(meta)) + meta + positions
        try:
            producer = self._writer()
            producer.begin_transaction()
            try:
                for k, (t, b) in new.items():
                    if k not in gone:
                        producer.send(self.topic, key=k.encode(), value=_SEEN.pack(t) + b)
                for k in gone:
                    if k in m:
                        producer.send(self.topic, key=k.encode(), value=None)
                producer.send(self.topic, key=META_KEY, value=value)  # last: see module doc
                producer.commit_transaction()
            except BaseException:
                with contextlib.suppress(KafkaError):
                    producer.abort_transaction()
                raise
        except KafkaError as exc:
            raise StateError(f"checkpoint of {len(new)} keys was not committed to topic "
                             f"{self.topic!r} within {self._timeout:.0f} s ({exc!r}); check "
                             "checkpoint.topic and that the brokers are up") from exc
        m.update(new)
        for k in gone:
            m.pop(k, None)
        self._oldest = min((t for t, _ in m.values()), default=float("inf")) if gone else min(
            self._oldest, min((t for t, _ in new.values()), default=float("inf")))
        self._meta = (meta, positions)

    # -- internals -----------------------------------------------------------------------------

    def _writer(self) -> KafkaProducer:
        self._check_open()
        if self._producer is None:
            self._ensure_topic()
            producer = KafkaProducer(
                **self._common, acks="all", enable_idempotence=True,
                transactional_id=self.transactional_id, max_request_size=_MAX_BYTES,
                linger_ms=50, batch_size=1 << 20, max_block_ms=int(self._timeout * 1000),
                bootstrap_timeout_ms=int(self._timeout * 1000))
            try:
                producer.init_transactions()
            except BaseException:
                producer.close(timeout=0)
                raise
            self._producer = producer
        return self._producer

    def _keys(self) -> dict[str, tuple[float, bytes]]:
        self._check_open()
        if self._map is None:
            self._map = self._read_all()
        return self._map

    def _read_all(self) -> dict[str, tuple[float, bytes]]:
        """The committed key states up to the end of the topic (its last stable offset)."""
        found: dict[str, tuple[float, bytes]] = {}
        consumer: KafkaConsumer | None = None
        try:
            self._ensure_topic()
            consumer = KafkaConsumer(
                **self._common, enable_auto_commit=False, allow_auto_create_topics=False,
                isolation_level="read_committed", fetch_max_bytes=4 * _MAX_BYTES,
                max_partition_fetch_bytes=_MAX_BYTES,
                bootstrap_timeout_ms=int(self._timeout * 1000))
            deadline = time.monotonic() + self._timeout
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                return found
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps, timeout_ms=int(self._timeout * 1000))
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise StateError(f"could not read key-state topic {self.topic!r} to its "
                                     f"end within {self._timeout:.0f} s; are the brokers up?")
                for batch in consumer.poll(timeout_ms=500).values():
                    for rec in batch:
                        self._apply(found, rec.key, rec.value, rec.offset)
        except KafkaError as exc:
            raise StateError(f"cannot read key-state topic {self.topic!r}: {exc!r}; check "
                             "checkpoint.topic and that the brokers are up") from exc
        finally:
            if consumer is not None:
                consumer.close(autocommit=False)
        self._oldest = min((t for t, _ in found.values()), default=float("inf"))
        return found

    def _apply(self, found: dict[str, tuple[float, bytes]], key: bytes | None,
               value: bytes | None, offset: int) -> None:
        if key is None:
            return
        if key == META_KEY:
            if value is None:
                self._meta = (None, None)
                return
            if len(value) < _META.size or value[:4] != _META_MAGIC:
                raise StateError(f"the meta record at offset {offset} of topic {self.topic!r} "
                                 "is not a streamem key-store meta record; the topic holds "
                                 "something else: use a new checkpoint.topic")
            n = _META.unpack_from(value)[1]
            self._meta = (value[_META.size:_META.size + n], value[_META.size + n:])
            return
        text = key.decode(errors="replace")
        if value is None:
            found.pop(text, None)
            return
        if len(value) < _SEEN.size:
            raise StateError(f"key {text!r} at offset {offset} of topic {self.topic!r} holds "
                             f"a {len(value)}-byte record, too short for a key state; the "
                             "topic is corrupt: send a tombstone for that key (it relearns)")
        found[text] = (_SEEN.unpack_from(value)[0], value[_SEEN.size:])
        if len(found) > self.max_keys:
            raise StateError(f"key-state topic {self.topic!r} holds more than max_keys="
                             f"{self.max_keys} keys; raise max_keys (about 0.5 KiB of memory "
                             "per key) or use the SQLite key store")
