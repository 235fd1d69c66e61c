"""The Kafka source: a consumer-group member that resumes from checkpoints, not from Kafka.

Resuming (the ordering contract of :mod:`streamem.sources.base`):

- offsets are never auto-committed; :meth:`KafkaSource.commit` commits exactly the positions
  the daemon passes, after its checkpoint is durable (the committed offset then drives lag
  monitoring and is the fallback for partitions no checkpoint covers);
- :meth:`KafkaSource.seek` positions are remembered and applied when their partitions are
  assigned; a rebalance listener's ``on_partitions_assigned`` result wins over them; with
  neither, Kafka's committed offset (else ``auto_offset_reset``) is used.

Rebalances (kafka-python 3.x runs group callbacks on its IO thread, where blocking consumer
calls raise): the listener is called while the thread that called :meth:`KafkaSource.poll`
(or :meth:`KafkaSource.close`) is blocked inside it, so it never runs concurrently with the
daemon loop. ``on_partitions_revoked`` comes first; :meth:`KafkaSource.commit` called from it
is sent asynchronously and awaited before the group re-joins. ``on_partitions_assigned``
returns ``{partition: next_offset}``, which is seeked before any record is fetched.

Outages: a broker that is down or a topic that does not exist yet make :meth:`poll` return
``[]``; each is logged (rate-limited) and counted in :attr:`KafkaSource.stats`. After
``unavailable_timeout`` seconds without a broker, :meth:`poll` raises
:class:`~streamem.errors.SourceError`. Authentication and authorization failures raise at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kafka
import kafka.codec as codecs
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import CorruptRecordError, KafkaError, UnsupportedCodecError
from kafka.protocol.consumer import IsolationLevel
from kafka.record.util import calc_crc32c

from streamem.errors import ConfigError, SourceError
from streamem.eventruns import EventRuns
from streamem.logs import RateLimitedLog
from streamem.sources.base import RebalanceListener
from streamem.sources.kafka_records import (
    BatchHeader,
    RecordColumns,
    RecordDecodeError,
    decode_records,
    iter_batches,
)
from streamem.types import EventBatch, Position, RawEvent

__all__ = ["KafkaSecurity", "KafkaSource", "RateLimitedLog", "SourceStats"]

logger = logging.getLogger(__name__)

_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """Connection security shared by the Kafka source, sinks and checkpoint store.

    Parameters
    ----------
    security_protocol
        ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
    sasl_mechanism
        ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (SASL protocols only).
    sasl_username, sasl_password
        SASL credentials; the password is masked in ``repr``.
    ssl_cafile, ssl_certfile, ssl_keyfile
        PEM files: the CA bundle, and a client certificate and key for mutual TLS.

    Examples
    --------
    >>> s = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "app", "hunter2")
    >>> "hunter2" in repr(s)
    False
    >>> s.client_kwargs()["sasl_plain_password"]
    'hunter2'
    >>> KafkaSecurity("SASL_SSL", "PLAIN", "app").validate("source")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: source.sasl_password: required when sasl_mechanism is set; ...
    """

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __repr__(self) -> str:
        masked = None if self.sasl_password is None else "***"
        return (f"KafkaSecurity(security_protocol={self.security_protocol!r}, "
                f"sasl_mechanism={self.sasl_mechanism!r}, sasl_username={self.sasl_username!r}, "
                f"sasl_password={masked!r}, ssl_cafile={self.ssl_cafile!r}, "
                f"ssl_certfile={self.ssl_certfile!r}, ssl_keyfile={self.ssl_keyfile!r})")

    def validate(self, prefix: str = "source") -> KafkaSecurity:
        """Check the combination; raise :class:`ConfigError` naming the key, else return self.

        Parameters
        ----------
        prefix
            Config section used in error paths (``source``, ``sinks[2]``, ``checkpoint``).

        Returns
        -------
        KafkaSecurity
            ``self``, for chaining.

        Examples
        --------
        >>> KafkaSecurity("SSL", ssl_certfile="c.pem").validate("sinks[0]")
        Traceback (most recent call last):
        ...
        streamem.errors.ConfigError: sinks[0].ssl_keyfile: required when ssl_certfile is set; ...
        """
        proto, mech = self.security_protocol, self.sasl_mechanism
        if proto not in _PROTOCOLS:
            raise ConfigError(f"{prefix}.security_protocol",
                              f"{proto!r} is not one of {', '.join(_PROTOCOLS)}")
        sasl = proto.startswith("SASL_")
        if sasl and mech is None:
            raise ConfigError(f"{prefix}.sasl_mechanism", f"required when security_protocol is "
                              f"{proto}; set one of {', '.join(_MECHANISMS)}")
        if mech is not None:
            if mech not in _MECHANISMS:
                raise ConfigError(f"{prefix}.sasl_mechanism",
                                  f"{mech!r} is not one of {', '.join(_MECHANISMS)}")
            if not sasl:
                raise ConfigError(f"{prefix}.sasl_mechanism", f"needs security_protocol "
                                  f"SASL_PLAINTEXT or SASL_SSL, not {proto}")
            for key in ("sasl_username", "sasl_password"):
                if not getattr(self, key):
                    raise ConfigError(f"{prefix}.{key}", "required when sasl_mechanism is set; "
                                      "pass it via ${ENV_VAR} in the config")
        elif self.sasl_username or self.sasl_password:
            raise ConfigError(f"{prefix}.sasl_mechanism", "required when sasl_username or "
                              f"sasl_password is set; set one of {', '.join(_MECHANISMS)}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            have, need = (("ssl_certfile", "ssl_keyfile") if self.ssl_keyfile is None
                          else ("ssl_keyfile", "ssl_certfile"))
            raise ConfigError(f"{prefix}.{need}", f"required when {have} is set; "
                              "mutual TLS needs both the certificate and its key")
        uses_ssl = proto in ("SSL", "SASL_SSL")
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key) is not None and not uses_ssl:
                raise ConfigError(f"{prefix}.{key}", f"only used with security_protocol SSL or "
                                  f"SASL_SSL, not {proto}")
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients.

        Returns
        -------
        dict
            Only the keys that are set.

        Examples
        --------
        >>> KafkaSecurity().client_kwargs()
        {'security_protocol': 'PLAINTEXT'}
        """
        kw: dict[str, Any] = {"security_protocol": self.security_protocol}
        pairs = {"sasl_mechanism": self.sasl_mechanism,
                 "sasl_plain_username": self.sasl_username,
                 "sasl_plain_password": self.sasl_password, "ssl_cafile": self.ssl_cafile,
                 "ssl_certfile": self.ssl_certfile, "ssl_keyfile": self.ssl_keyfile}
        kw.update({k: v for k, v in pairs.items() if v is not None})
        return kw


@dataclass
class SourceStats:
    """Counters of one Kafka source (mutable, read by the metrics collector).

    ``events``: records returned; ``rebalances``: assignments received; ``disconnects`` and
    ``reconnects``: lost and regained broker connections; ``missing_topic``: polls that found
    the topic absent; ``commits``/``commit_failures``: offset commits; ``errors``: every error
    handled without raising (each is logged).

    Examples
    --------
    >>> s = SourceStats(); s.reconnects += 1; s.reconnects
    1
    """

    events: int = 0
    rebalances: int = 0
    disconnects: int = 0
    reconnects: int = 0
    missing_topic: int = 0
    commits: int = 0
    commit_failures: int = 0
    errors: int = 0


class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Bridges kafka-python's IO-thread callbacks to the source (see the module docstring)."""

    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for fut in self._source._on_revoked(revoked):
            try:
                await fut
            except Exception as exc:
                self._source._commit_failed(exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._source._on_assigned(assigned)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        # membership lost (session expired): the partitions may already be elsewhere, so
        # committing is pointless; the listener still gets the chance to drop their state
        for fut in self._source._on_revoked(lost):
            try:
                await fut
            except Exception as exc:
                self._source._commit_failed(exc)


_FAST_PATH_VERSIONS = ("3.0.",)
"""kafka-python versions whose fetcher internals the fast record path was checked against
(``Fetcher.PartitionRecords``: its constructor, ``take``, ``drain``, ``_unpack_records`` and
the position bookkeeping of ``Fetcher._append``). Other versions use the public path."""

_ABORT_MARKER = b"\x00\x00\x00\x00"  # control record key: version 0, type 0 (abort)


def fast_path_supported(version: str | None = None) -> bool:
    """True when the installed kafka-python (or ``version``) can use the fast record path.

    Examples
    --------
    >>> fast_path_supported("3.0.12"), fast_path_supported("2.0.2")
    (True, False)
    """
    version = kafka.__version__ if version is None else version
    if not version.startswith(_FAST_PATH_VERSIONS):
        return False
    cls = getattr(Fetcher, "PartitionRecords", None)
    return cls is not None and all(
        callable(getattr(cls, name, None))
        for name in ("_unpack_records", "take", "drain", "_maybe_raise_next_inline_exception",
                     "_consume_aborted_transactions_up_to"))


def _decompress(codec: int, data: bytes) -> bytes:
    """kafka-python's codecs, as its own ``DefaultRecordBatch`` calls them."""
    if codec == 1:
        out = codecs.gzip_decode(data)
    elif codec == 2 and codecs.has_snappy():
        out = codecs.snappy_decode(data)
    elif codec == 3 and codecs.has_lz4():
        out = codecs.lz4_decode(data)
    elif codec == 4 and codecs.has_zstd():
        out = codecs.zstd_decode(data)
    else:
        raise UnsupportedCodecError(f"no library for compression codec {codec} is installed "
                                    "(kafka-python needs python-snappy, lz4 or zstandard)")
    return bytes(out)


class _Budget:
    """How many records the next ``take`` may return (set by :meth:`KafkaSource.poll`)."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records = 1


class _FastRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's per-fetch record holder, decoding with :mod:`.kafka_records`.

    The consumer keeps doing everything else (group membership, fetch requests, positions,
    seeks, commits). The differences: the record iterator yields one
    :class:`~streamem.sources.kafka_records.RecordColumns` per record batch instead of one
    ``ConsumerRecord`` per record, and :meth:`take` returns a single ``RecordColumns`` of at
    most ``budget.records`` records, splitting a batch when needed. ``next_fetch_offset``
    (which ``Fetcher._append`` copies to the consumer's position) is the offset after the
    last record returned, moved past control, aborted and compacted-away batches exactly
    as kafka-python does, so positions are the same as on the public path.
    """

    next_fetch_offset: int

    def __init__(self, budget: _Budget, *args: Any, **kwargs: Any) -> None:
        self._budget = budget
        self._pending = RecordColumns()
        self._cursor = 0
        super().__init__(*args, **kwargs)

    def _maybe_skip_record(self, record: Any) -> bool:
        return False  # decode_records drops offsets below the fetch offset itself

    def _unpack_records(self, tp: TopicPartition, records: Any, key_deserializer: Any,
                        value_deserializer: Any) -> Iterator[RecordColumns]:
        raw = getattr(records, "_buffer", None)
        buf = b"" if raw is None else bytes(raw)  # no copy when it already is bytes
        try:
            headers = list(iter_batches(buf))
        except RecordDecodeError as exc:
            raise CorruptRecordError(f"partition {tp}: {exc}") from exc
        if raw is None or key_deserializer is not None or value_deserializer is not None or \
                any(h.magic != 2 for h in headers):
            yield from self._public(tp, records, key_deserializer, value_deserializer)
            return
        read_committed = self.isolation_level == IsolationLevel.READ_COMMITTED
        checksum = calc_crc32c if self.check_crcs else None
        last: BatchHeader | None = None
        for h in headers:
            last = h
            self.leader_epoch = h.leader_epoch
            if read_committed and h.has_producer_id:
                self._consume_aborted_transactions_up_to(h.base_offset + h.last_offset_delta)
                if h.is_control:
                    if self._is_abort_marker(buf, h, checksum, tp):
                        self.aborted_producer_ids.discard(h.producer_id)
                elif h.is_transactional and h.producer_id in self.aborted_producer_ids:
                    self.next_fetch_offset = max(self.next_fetch_offset, h.next_offset)
                    continue
            if h.is_control:
                self.next_fetch_offset = max(self.next_fetch_offset, h.next_offset)
                continue
            cols = RecordColumns()
            try:
                n = decode_records(buf, h, cols, skip_below=self.fetch_offset,
                                   checksum=checksum, decompress=_decompress)
            except RecordDecodeError as exc:
                raise CorruptRecordError(f"partition {tp}: {exc}") from exc
            self.records_read += n
            self.bytes_read += h.end - h.start
            if n:
                yield cols
        # a batch's last offset survives compaction: resume after it (as kafka-python does)
        if last is not None:
            self.next_fetch_offset = max(self.next_fetch_offset, last.next_offset)
        self.drain()

    def _is_abort_marker(self, buf: bytes, h: BatchHeader, checksum: Any,
                         tp: TopicPartition) -> bool:
        cols = RecordColumns()
        try:
            decode_records(buf, h, cols, checksum=checksum, decompress=_decompress)
        except RecordDecodeError as exc:
            raise CorruptRecordError(f"partition {tp}: {exc}") from exc
        return bool(cols.keys) and (cols.keys[0] or b"")[:4] == _ABORT_MARKER

    def _public(self, tp: TopicPartition, records: Any, key_deserializer: Any,
                value_deserializer: Any) -> Iterator[RecordColumns]:
        """kafka-python's own decoding (legacy message formats, deserializers)."""
        for rec in super()._unpack_records(tp, records, key_deserializer, value_deserializer):
            if rec.offset < self.fetch_offset:
                continue
            cols = RecordColumns()
            cols.offsets.append(rec.offset)
            cols.timestamps.append(rec.timestamp if rec.timestamp is not None else -1)
            cols.keys.append(rec.key)
            cols.values.append(rec.value)
            yield cols

    def take(self, n: int | None = None) -> list[RecordColumns]:
        """Up to ``budget.records`` records as one ``RecordColumns`` (``[]`` when drained)."""
        self._maybe_raise_next_inline_exception()
        it = self.record_iterator
        limit = max(1, self._budget.records)
        out = RecordColumns()
        try:
            while len(out) < limit:
                pending, cursor = self._pending, self._cursor
                if cursor >= len(pending):
                    nxt = None if it is None else next(it, None)
                    if nxt is None:
                        break
                    self._pending, self._cursor = nxt, 0
                    continue
                stop = min(len(pending), cursor + limit - len(out))
                if not out and cursor == 0 and stop == len(pending):
                    out = pending  # the whole batch: no copy
                    self._pending = RecordColumns()
                    stop = 0
                else:
                    out.offsets.extend(pending.offsets[cursor:stop])
                    out.timestamps.extend(pending.timestamps[cursor:stop])
                    out.keys.extend(pending.keys[cursor:stop])
                    out.values.extend(pending.values[cursor:stop])
                self._cursor = stop
                self.next_fetch_offset = out.offsets[-1] + 1
        except Exception as exc:
            if not out:
                raise
            self._next_inline_exception = exc  # raised by the next take, as kafka-python does
        return [out] if out else []


def install_fast_records(consumer: KafkaConsumer) -> _Budget | None:
    """Make ``consumer`` decode fetched records with :class:`_FastRecords`.

    After this, ``consumer.poll(max_records=1)`` returns ``{tp: [RecordColumns]}`` with at
    most ``budget.records`` records (set it before each poll). Returns None, and changes
    nothing, when this kafka-python is not one the fast path was checked against.

    Examples
    --------
    Anything without a kafka-python fetcher inside is left alone:

    >>> install_fast_records(object()) is None
    True
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not fast_path_supported():
        return None
    budget = _Budget()

    def records(*args: Any, **kwargs: Any) -> _FastRecords:
        return _FastRecords(budget, *args, **kwargs)

    fetcher.PartitionRecords = records  # the fetcher builds them as self.PartitionRecords
    return budget


class KafkaSource:
    """Consume one topic as a member of a consumer group.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` strings (or one comma-separated string).
    topic
        The topic to read.
    group_id
        Consumer group; instances with the same group split the partitions.
    name
        Name used in logs and metrics.
    security
        TLS/SASL settings (validated here); default plaintext.
    auto_offset_reset
        ``earliest`` or ``latest``: where to start a partition with no checkpoint or commit.
    session_timeout_ms, heartbeat_interval_ms, max_poll_interval_ms, metadata_max_age_ms
        Group and metadata timings (``metadata_max_age_ms`` bounds how long a topic that does
        not exist yet takes to be noticed once created).
    reconnect_backoff_max_ms
        Longest wait between reconnection attempts to a broker that is down (kafka-python's
        default of 30 s would delay recovery after a short outage by up to that much).
    fetch_max_wait_ms
        Longest time the broker holds a fetch that found no new data. kafka-python's 500 ms
        default stalls every partition behind one that is caught up (one fetch in flight per
        broker): on the bench, 50 ms took the bare consumer from ~56k to ~158k events/s.
    max_partition_fetch_bytes
        Bytes per partition per fetch (kafka-python's default, 1 MiB).
    fast_records
        Decode fetched record batches with :mod:`streamem.sources.kafka_records` instead of
        kafka-python's per-record objects (when :func:`fast_path_supported`); the consumer
        still does membership, fetching, positions and commits. Same events and positions.
    unavailable_timeout
        Seconds without a reachable broker after which :meth:`poll` raises ``SourceError``.
    client_id
        Client id shown in broker logs.

    Examples
    --------
    Construction does not connect (the network is touched by the first poll or seek):

    >>> src = KafkaSource(["127.0.0.1:9"], "events", "streamem")
    >>> src.name, src.exhausted, src.lag()
    ('kafka', False, {})
    >>> src.close(); src.close()
    """

    def __init__(self, bootstrap_servers: Sequence[str] | str, topic: str, group_id: str, *,
                 name: str = "kafka", security: KafkaSecurity | None = None,
                 auto_offset_reset: str = "earliest", session_timeout_ms: int = 45000,
                 heartbeat_interval_ms: int = 3000, max_poll_interval_ms: int = 300000,
                 metadata_max_age_ms: int = 30000, reconnect_backoff_max_ms: int = 5000,
                 fetch_max_wait_ms: int = 50, max_partition_fetch_bytes: int = 1 << 20,
                 fast_records: bool = True, unavailable_timeout: float = 300.0,
                 client_id: str = "streamem") -> None:
        if not topic:
            raise ConfigError("source.topic", "required for source.type kafka; name the topic")
        if not group_id:
            raise ConfigError("source.group_id", "required for source.type kafka")
        if auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError("source.auto_offset_reset",
                              f"{auto_offset_reset!r} is not 'earliest' or 'latest'")
        self.name = name
        self.topic = topic
        self.group_id = group_id
        self.stats = SourceStats()
        self.security = (security or KafkaSecurity()).validate("source")
        servers = ([s.strip() for s in bootstrap_servers.split(",")]
                   if isinstance(bootstrap_servers, str) else list(bootstrap_servers))
        self._config: dict[str, Any] = {
            "bootstrap_servers": servers, "group_id": group_id, "client_id": client_id,
            "enable_auto_commit": False, "auto_offset_reset": auto_offset_reset,
            "allow_auto_create_topics": False, "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "metadata_max_age_ms": metadata_max_age_ms,
            "reconnect_backoff_max_ms": reconnect_backoff_max_ms,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "max_partition_fetch_bytes": max_partition_fetch_bytes,
            **self.security.client_kwargs()}
        self._unavailable_timeout = unavailable_timeout
        self._consumer: KafkaConsumer | None = None
        self._fast_records = fast_records
        self._budget: _Budget | None = None
        self._next_watch = 0.0
        self._listener: RebalanceListener | None = None
        self._pending_seek: dict[int, int] = {}
        self._positions: dict[int, int] = {}
        self._lag: dict[int, int] = {}
        self._in_callback = False
        self._callback_commits: list[Any] = []
        self._listener_error: BaseException | None = None
        self._connected = False
        self._down_since: float | None = None
        self._next_connect = 0.0
        self._closed = False
        self._warn = RateLimitedLog(logger)

    def __repr__(self) -> str:
        return (f"KafkaSource(topic={self.topic!r}, group_id={self.group_id!r}, "
                f"bootstrap_servers={self._config['bootstrap_servers']!r}, "
                f"security={self.security!r})")

    # -- protocol ------------------------------------------------------------------------------

    @property
    def exhausted(self) -> bool:
        """Always False: a topic never ends."""
        return False

    def set_rebalance_listener(self, listener: RebalanceListener) -> None:
        """Register the daemon's listener (call before the first :meth:`poll`).

        An exception raised by the listener is re-raised, unchanged, by the :meth:`poll` (or
        :meth:`close`) during which the rebalance ran. Treat it as fatal and close the
        source: the partitions are assigned but were not positioned by the listener.
        """
        self._listener = listener

    def poll(self, max_events: int, timeout: float) -> Sequence[RawEvent]:
        """Return up to ``max_events`` records, waiting at most about ``timeout`` seconds.

        Returns ``[]`` while the broker is unreachable or the topic does not exist yet.

        Raises
        ------
        SourceError
            The broker was unreachable for ``unavailable_timeout`` seconds, or it refused
            our credentials or access to the topic.
        """
        consumer = self._ensure_consumer(timeout)
        if consumer is None:
            return []
        if self._budget is not None:
            return self._poll_fast(consumer, max(1, max_events), timeout)
        try:
            batches = consumer.poll(timeout_ms=max(0, int(timeout * 1000)),
                                    max_records=max(1, max_events))
        except KafkaError as exc:
            self._raise_listener_error(exc)
            self._handle_error(exc, "poll")
            batches = {}
        self._raise_listener_error(None)
        # records in hand are returned even during an outage (their offsets are consumed)
        self._watch_connection(consumer, may_raise=not batches)
        events: list[RawEvent] = []
        for tp in sorted(batches, key=lambda t: t.partition):
            for rec in batches[tp]:
                ts = rec.timestamp / 1000.0 if rec.timestamp is not None and rec.timestamp >= 0 \
                    else None
                events.append(RawEvent(payload=rec.value if rec.value is not None else b"",
                                       position=Position(tp.partition, rec.offset, tp.topic),
                                       key=rec.key, timestamp=ts, next_offset=rec.offset + 1))
                self._positions[tp.partition] = rec.offset + 1
        self.stats.events += len(events)
        if not events and not consumer.assignment():
            self._check_topic(consumer)
        return events

    def _poll_fast(self, consumer: KafkaConsumer, max_events: int,
                   timeout: float) -> EventRuns:
        """:meth:`poll` through :class:`_FastRecords`: each ``consumer.poll(max_records=1)``
        returns one partition's ``RecordColumns`` of at most ``budget.records`` records; they
        stay columns (:class:`~streamem.eventruns.EventRuns`), no object per event."""
        budget = self._budget
        assert budget is not None
        runs: list[EventBatch] = []
        n = 0
        wait_ms = max(0, int(timeout * 1000))
        error: KafkaError | None = None
        while n < max_events:
            budget.records = max_events - n
            try:
                got = consumer.poll(timeout_ms=0 if n else wait_ms, max_records=1)
            except KafkaError as exc:
                error = exc
                break
            if not got:
                break
            for tp, chunks in got.items():
                for cols in chunks:
                    n += self._append_run(runs, tp, cols)
        events = EventRuns(runs)
        if error is not None:
            self._raise_listener_error(error)
            self._handle_error(error, "poll")
        self._raise_listener_error(None)
        now = time.monotonic()
        if events and self._down_since is not None:
            self._mark_connected()  # records in hand: the broker is back (count it now)
        elif not events or now >= self._next_watch:  # consumer.metrics() costs ~0.3 ms
            self._next_watch = now + 0.5
            self._watch_connection(consumer, may_raise=not events)
        self.stats.events += len(events)
        if not events and not consumer.assignment():
            self._check_topic(consumer)
        return events

    def _append_run(self, runs: list[EventBatch], tp: TopicPartition,
                    cols: RecordColumns) -> int:
        """Append ``cols`` to ``runs`` as one column-wise run; returns its length."""
        offsets = cols.offsets
        if not offsets:
            return 0
        values = cols.values
        if None in values:
            values = [b"" if v is None else v for v in values]
        nexts = [o + 1 for o in offsets]
        runs.append(EventBatch(values, offsets, nexts, tp.partition, tp.topic,  # type: ignore[arg-type]
                               cols.keys, cols.timestamps))
        self._positions[tp.partition] = nexts[-1]
        return len(offsets)

    def seek(self, positions: Mapping[int, int]) -> None:
        """Resume at ``{partition: next_offset}`` now (assigned partitions) or on assignment."""
        for partition, offset in positions.items():
            self._pending_seek[int(partition)] = int(offset)
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            if tp.partition in self._pending_seek:
                offset = self._pending_seek.pop(tp.partition)
                consumer.seek(tp, offset)
                self._positions[tp.partition] = offset

    def commit(self, positions: Mapping[int, int]) -> None:
        """Commit exactly ``{partition: next_offset}`` for the partitions still assigned.

        Call only after the checkpoint holding these positions is durable. Partitions no
        longer assigned are left to their new owner. A failed commit is logged and counted
        (``stats.commit_failures``), not raised: the checkpoint, not Kafka, is the truth.
        """
        consumer = self._consumer
        if consumer is None or not positions:
            return
        owned = {tp.partition for tp in consumer.assignment()}
        offsets = {TopicPartition(self.topic, int(p)): OffsetAndMetadata(int(o), "", -1)
                   for p, o in positions.items() if int(p) in owned}
        skipped = sorted(set(map(int, positions)) - owned)
        if skipped:
            logger.info("%s: not committing partitions %s: no longer assigned", self.name, skipped)
        if not offsets:
            return
        if self._in_callback:  # on kafka-python's IO thread: blocking commit() would raise
            self._callback_commits.append(consumer.commit_async(offsets))
            self.stats.commits += 1
            return
        try:
            consumer.commit(offsets)
            self.stats.commits += 1
        except KafkaError as exc:
            self._commit_failed(exc)

    def lag(self) -> dict[int, int]:
        """Per assigned partition: end offset minus the next offset to read (best effort)."""
        consumer = self._consumer
        if consumer is None or self._in_callback:
            return dict(self._lag)
        try:
            tps = list(consumer.assignment())
            if tps:
                ends = consumer.end_offsets(tps, timeout_ms=2000)
                self._lag = {tp.partition: max(0, int(end) - self._position(consumer, tp))
                             for tp, end in ends.items() if end is not None}
            else:
                self._lag = {}
        except (KafkaError, ValueError) as exc:
            self._handle_error(exc, "lag")
        return dict(self._lag)

    def close(self) -> None:
        """Leave the group (calling the listener's revoke) and release; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close(autocommit=False, timeout_ms=5000)
            except KafkaError as exc:
                self._raise_listener_error(exc)
                self._handle_error(exc, "close")
            self._raise_listener_error(None)

    def __enter__(self) -> KafkaSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _ensure_consumer(self, timeout: float) -> KafkaConsumer | None:
        if self._closed:
            raise SourceError(f"{self.name}: poll() after close(); create a new KafkaSource")
        if self._consumer is not None:
            return self._consumer
        now = time.monotonic()
        if now < self._next_connect:
            time.sleep(min(max(timeout, 0.0), self._next_connect - now))
            return None
        try:
            consumer = KafkaConsumer(**self._config,
                                     bootstrap_timeout_ms=max(100, int(timeout * 1000)))
        except KafkaError as exc:
            self._outage(exc)
            self._next_connect = time.monotonic() + 1.0
            return None
        # kafka-python 3.0.12 does not pass allow_auto_create_topics to its metadata client,
        # so a subscription would create a missing source topic on brokers that allow it
        cluster_config = getattr(getattr(consumer, "_cluster", None), "config", None)
        if isinstance(cluster_config, dict):
            cluster_config["allow_auto_create_topics"] = False
        self._consumer = consumer
        self._budget = self._install_fast_path(consumer)
        consumer.subscribe([self.topic], listener=_Listener(self))
        self._mark_connected()
        return consumer

    def _install_fast_path(self, consumer: KafkaConsumer) -> _Budget | None:
        if not self._fast_records:
            return None
        budget = install_fast_records(consumer)
        if budget is None:
            logger.info("%s: kafka-python %s: using its own record decoding", self.name,
                        kafka.__version__)
        return budget

    def _watch_connection(self, consumer: KafkaConsumer, may_raise: bool) -> None:
        try:
            count = consumer.metrics().get("consumer-metrics", {}).get("connection-count")
        except Exception as exc:  # metrics are diagnostics only; never stop the source
            self._handle_error(exc, "metrics")
            return
        if count is None:
            return
        if count > 0:
            self._mark_connected()
        else:
            self._outage(None, may_raise)

    def _mark_connected(self) -> None:
        if self._down_since is not None:
            self.stats.reconnects += 1
            logger.warning("%s: broker reachable again after %.1f s", self.name,
                           time.monotonic() - self._down_since)
        self._down_since = None
        self._connected = True

    def _outage(self, exc: BaseException | None, may_raise: bool = True) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self.stats.disconnects += 1
        if exc is not None:
            self.stats.errors += 1
        down = now - self._down_since
        self._warn.warning("outage", "%s: no Kafka broker reachable at %s for %.1f s (%s); "
                           "retrying", self.name, ",".join(self._config["bootstrap_servers"]),
                           down, exc or "all connections closed")
        if may_raise and down > self._unavailable_timeout:
            raise SourceError(
                f"{self.name}: no Kafka broker reachable at "
                f"{','.join(self._config['bootstrap_servers'])} for {down:.0f} s; check "
                "source.bootstrap_servers, the credentials (a rejected SASL login looks like an "
                "unreachable broker to kafka-python) and that the brokers are up") from exc

    def _check_topic(self, consumer: KafkaConsumer) -> None:
        if not self._warn.due("topic-check"):
            return
        logger.info("%s: no partitions of topic %r assigned to this member", self.name, self.topic)
        try:
            exists = bool(consumer.partitions_for_topic(self.topic))
        except KafkaError as exc:
            self._handle_error(exc, "metadata")
            return
        if not exists:
            self.stats.missing_topic += 1
            logger.warning("%s: topic %r does not exist (yet); waiting for it to be created",
                           self.name, self.topic)

    def _handle_error(self, exc: BaseException, where: str) -> None:
        from kafka.errors import AuthorizationError, SaslAuthenticationFailedError

        if isinstance(exc, (AuthorizationError, SaslAuthenticationFailedError)):
            raise SourceError(f"{self.name}: the broker refused {where} ({exc}); check "
                              "source.sasl_username/sasl_password and the ACLs for topic "
                              f"{self.topic!r} and group {self.group_id!r}") from exc
        self.stats.errors += 1
        self._warn.warning(f"error-{where}", "%s: %s failed: %r", self.name, where, exc)

    def _commit_failed(self, exc: BaseException) -> None:
        self.stats.commit_failures += 1
        self.stats.errors += 1
        self._warn.warning("commit", "%s: offset commit failed (the checkpoint still holds the "
                           "positions; lag metrics may lag): %r", self.name, exc)

    def _position(self, consumer: KafkaConsumer, tp: TopicPartition) -> int:
        if tp.partition in self._positions:
            return self._positions[tp.partition]
        pos = consumer.position(tp, timeout_ms=2000)
        return int(pos) if pos is not None else 0

    def _raise_listener_error(self, cause: BaseException | None) -> None:
        err, self._listener_error = self._listener_error, None
        if err is not None:
            raise err from cause

    def _on_revoked(self, tps: set[TopicPartition]) -> list[Any]:
        partitions = sorted(tp.partition for tp in tps if tp.topic == self.topic)
        logger.info("%s: partitions %s revoked", self.name, partitions)
        self._callback_commits = []
        if self._listener is not None and partitions:
            self._call_listener(lambda: self._listener.on_partitions_revoked(partitions))
        for p in partitions:
            self._positions.pop(p, None)
            self._lag.pop(p, None)
        futures, self._callback_commits = self._callback_commits, []
        return futures

    def _on_assigned(self, tps: set[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in tps if tp.topic == self.topic)
        self.stats.rebalances += 1
        offsets: dict[int, int] = {}
        if self._listener is not None and partitions:
            listener = self._listener
            result = self._call_listener(lambda: listener.on_partitions_assigned(partitions))
            offsets = {int(p): int(o) for p, o in (result or {}).items()}
        consumer = self._consumer
        for p in partitions:
            off = offsets.get(p, self._pending_seek.pop(p, None))
            self._pending_seek.pop(p, None)
            if off is not None and consumer is not None:
                consumer.seek(TopicPartition(self.topic, p), off)
                self._positions[p] = off
        logger.info("%s: partitions %s assigned; seeking to %s (others resume from the "
                    "committed offset)", self.name, partitions,
                    {p: self._positions[p] for p in partitions if p in self._positions})

    def _call_listener(self, call: Any) -> Any:
        self._in_callback = True
        try:
            return call()
        except BaseException as exc:
            self._listener_error = exc  # re-raised from poll() on the caller's thread
            raise
        finally:
            self._in_callback = False
