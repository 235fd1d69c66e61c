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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError

from streamem.errors import ConfigError, SourceError
from streamem.logs import RateLimitedLog
from streamem.sources.base import RebalanceListener
from streamem.types import Position, RawEvent

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
                 unavailable_timeout: float = 300.0,
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
            "reconnect_backoff_max_ms": reconnect_backoff_max_ms, **self.security.client_kwargs()}
        self._unavailable_timeout = unavailable_timeout
        self._consumer: KafkaConsumer | None = None
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

    def poll(self, max_events: int, timeout: float) -> list[RawEvent]:
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
        consumer.subscribe([self.topic], listener=_Listener(self))
        self._mark_connected()
        return consumer

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
