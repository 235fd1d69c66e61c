"""The Kafka source: :class:`KafkaSource`, a consumer-group member for the daemon loop.

See :mod:`streamem.sources.kafka` for the contract (resuming, rebalances, outages). The parts
live beside it: :mod:`.fetch` (the fast record path), :mod:`.records` (the record decoder),
:mod:`.rebalance` (the listener bridge), :mod:`.positions` (pending seeks, read positions, lag)
and :mod:`.stats` (counters and outages); the client settings are :mod:`streamem.kafka`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from streamem.errors import ConfigError, SourceError
from streamem.events import EventBatch
from streamem.kafka.client import (
    VERSION,
    AuthorizationError,
    KafkaConsumer,
    KafkaError,
    SaslAuthenticationFailedError,
    TopicPartition,
)
from streamem.kafka.settings import KafkaSecurity, client_config
from streamem.logs import RateLimitedLog
from streamem.sources.base import RebalanceListener
from streamem.sources.kafka.fetch import _Budget, install_fast_records
from streamem.sources.kafka.positions import PartitionPositions
from streamem.sources.kafka.rebalance import RebalanceBridge
from streamem.sources.kafka.records import RecordColumns
from streamem.sources.kafka.stats import Outages, SourceStats

__all__ = ["KafkaSource"]

# named after the package, not the module (operators filter on it)
logger = logging.getLogger("streamem.sources.kafka")


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
        broker), so the default here is much shorter (bench/kafka.py measures the effect).
    max_partition_fetch_bytes
        Bytes per partition per fetch (kafka-python's default, 1 MiB).
    fast_records
        Decode fetched record batches with :mod:`streamem.sources.kafka.records` instead of
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
        self._config: dict[str, Any] = client_config(
            bootstrap_servers, self.security, group_id=group_id, client_id=client_id,
            enable_auto_commit=False, auto_offset_reset=auto_offset_reset,
            allow_auto_create_topics=False, session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_interval_ms=max_poll_interval_ms, metadata_max_age_ms=metadata_max_age_ms,
            reconnect_backoff_max_ms=reconnect_backoff_max_ms,
            fetch_max_wait_ms=fetch_max_wait_ms,
            max_partition_fetch_bytes=max_partition_fetch_bytes)
        self._consumer: KafkaConsumer | None = None
        self._fast_records = fast_records
        self._budget: _Budget | None = None
        self._next_watch = 0.0
        self._positions = PartitionPositions(name, topic)
        self._commit_on_assign: dict[int, int] = {}
        """Commits made before this member joined the group (a checkpoint restored before
        the first poll): sent as soon as their partitions are assigned."""
        self._next_connect = 0.0
        self._closed = False
        self._warn = RateLimitedLog(logger)
        self._outages = Outages(name, self._config["bootstrap_servers"], unavailable_timeout,
                                self.stats, self._warn)
        self._rebalance = RebalanceBridge(name, topic, self.stats,
                                          forget=self._positions.forget,
                                          start=self._start, commit_failed=self._commit_failed)

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
        self._rebalance.listener = listener

    def poll(self, max_events: int, timeout: float) -> EventBatch:
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
            return EventBatch([], [], [], 0, self.topic)
        if self._budget is not None:
            return self._poll_fast(consumer, max(1, max_events), timeout)
        try:
            batches = consumer.poll(timeout_ms=max(0, int(timeout * 1000)),
                                    max_records=max(1, max_events))
        except KafkaError as exc:
            self._rebalance.raise_error(exc)
            self._handle_error(exc, "poll")
            batches = {}
        self._rebalance.raise_error(None)
        # records in hand are returned even during an outage (their offsets are consumed)
        self._watch_connection(consumer, may_raise=not batches)
        # kafka-python's records take the fast path's route from here: columns, one run each
        runs: list[EventBatch] = []
        for tp in sorted(batches, key=lambda t: t.partition):
            self._append_run(runs, tp, RecordColumns.of(batches[tp]))
        events = EventBatch.join(runs) if runs else EventBatch([], [], [], 0, self.topic)
        self.stats.events += len(events)
        if not events and not consumer.assignment():
            self._check_topic(consumer)
        return events

    def _poll_fast(self, consumer: KafkaConsumer, max_events: int,
                   timeout: float) -> EventBatch:
        """:meth:`poll` through :class:`_FastRecords`: each ``consumer.poll(max_records=1)``
        returns one partition's ``RecordColumns`` of at most ``budget.records`` records; they
        stay columns (one :class:`~streamem.events.EventBatch`), no object per event."""
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
        events = EventBatch.join(runs) if runs else EventBatch([], [], [], 0, self.topic)
        if error is not None:
            self._rebalance.raise_error(error)
            self._handle_error(error, "poll")
        self._rebalance.raise_error(None)
        now = time.monotonic()
        if events and self._outages.down_since is not None:
            self._outages.reachable()  # records in hand: the broker is back (count it now)
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
        self._positions.next_offsets[tp.partition] = nexts[-1]
        return len(offsets)

    def seek(self, positions: Mapping[int, int]) -> None:
        """Resume at ``{partition: next_offset}`` now (assigned partitions) or on assignment."""
        self._positions.seek(self._consumer, positions)

    def commit(self, positions: Mapping[int, int]) -> None:
        """Commit exactly ``{partition: next_offset}`` for the partitions still assigned.

        Call only after the checkpoint holding these positions is durable (or when it was
        just restored: its commit may have been prevented by a crash). Partitions no
        longer assigned are left to their new owner. Before this member has joined the group
        (no :meth:`poll` yet) the positions are kept and committed as soon as their
        partitions are assigned. A failed commit is logged and counted
        (``stats.commit_failures``), not raised: the checkpoint, not Kafka, is the truth.
        """
        consumer = self._consumer
        if not positions:
            return
        if consumer is None:
            self._commit_on_assign.update({int(p): int(o) for p, o in positions.items()})
            return
        offsets = self._positions.owned_offsets(consumer, positions)
        if not offsets:
            return
        if self._rebalance.in_callback:  # on kafka-python's IO thread: blocking commit() raises
            self._rebalance.defer_commit(consumer.commit_async(offsets))
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
        if consumer is None or self._rebalance.in_callback:
            return self._positions.lag()
        try:
            self._positions.measure_lag(consumer)
        except (KafkaError, ValueError) as exc:
            self._handle_error(exc, "lag")
        return self._positions.lag()

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
                self._rebalance.raise_error(exc)
                self._handle_error(exc, "close")
            self._rebalance.raise_error(None)

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
            self._outages.unreachable(exc)
            self._next_connect = time.monotonic() + 1.0
            return None
        # kafka-python 3.0.12 does not pass allow_auto_create_topics to its metadata client,
        # so a subscription would create a missing source topic on brokers that allow it
        cluster_config = getattr(getattr(consumer, "_cluster", None), "config", None)
        if isinstance(cluster_config, dict):
            cluster_config["allow_auto_create_topics"] = False
        self._consumer = consumer
        self._budget = self._install_fast_path(consumer)
        consumer.subscribe([self.topic], listener=self._rebalance)
        self._outages.reachable()
        return consumer

    def _install_fast_path(self, consumer: KafkaConsumer) -> _Budget | None:
        if not self._fast_records:
            return None
        budget = install_fast_records(consumer)
        if budget is None:
            logger.info("%s: kafka-python %s: using its own record decoding", self.name,
                        VERSION)
        return budget

    def _watch_connection(self, consumer: KafkaConsumer, may_raise: bool) -> None:
        try:
            count = consumer.metrics().get("consumer-metrics", {}).get("connection-count")
        except Exception as exc:  # metrics are diagnostics only; never stop the source
            self._handle_error(exc, "metrics")
            return
        self._outages.observe(count, may_raise)

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

    def _start(self, partitions: list[int], offsets: dict[int, int]) -> None:
        """Seek newly assigned partitions (the listener's offsets win over :meth:`seek`'s),
        then commit what was committed before the member joined, for these partitions."""
        self._positions.start(self._consumer, partitions, offsets)
        due = {p: self._commit_on_assign.pop(p) for p in partitions
               if p in self._commit_on_assign}
        if due:
            logger.info("%s: committing the restored positions %s", self.name, due)
            self.commit(due)
