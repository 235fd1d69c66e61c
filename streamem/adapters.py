"""Build the concrete sources, sinks, stores and metrics named by a :class:`Config`.

Kafka, httpx and prometheus_client are imported lazily here, through the one adapter module
that owns each, so ``import streamem`` stays numpy+scipy only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamem.alerting.rules import Rules
from streamem.config import Config, SinkConfig
from streamem.sinks.base import DeadLetterSink, Sink
from streamem.sources.base import Source
from streamem.state.base import CheckpointStore
from streamem.ui.app import UiApp
from streamem.ui.history import History

if TYPE_CHECKING:
    from streamem.daemon import Daemon

__all__ = [
    "attach_rebalance",
    "make_dead_letter",
    "make_metrics",
    "make_sinks",
    "make_source",
    "make_store",
]

logger = logging.getLogger(__name__)


def _security(cfg: Config) -> Any:
    from streamem.kafka.settings import KafkaSecurity

    s = cfg.source
    return KafkaSecurity(
        security_protocol=s.security_protocol, sasl_mechanism=s.sasl_mechanism,
        sasl_username=s.sasl_username,
        sasl_password=s.sasl_password.get() if s.sasl_password else None,
        ssl_cafile=s.ssl_cafile, ssl_certfile=s.ssl_certfile, ssl_keyfile=s.ssl_keyfile,
    )


def make_source(cfg: Config) -> Source:
    """The configured source (file, stdin or Kafka consumer group member)."""
    s = cfg.source
    if s.type == "kafka":
        from streamem.sources.kafka import KafkaSource

        assert s.topic is not None
        # a 10 s session (not kafka-python's 45 s): a killed member's partitions move to the
        # survivors (or to its restarted self) 10 s later; heartbeats run on kafka-python's IO
        # thread, so slow batches do not expire it (max_poll_interval_ms bounds those)
        src: Source = KafkaSource(list(s.bootstrap_servers), s.topic, s.group_id,
                                  security=_security(cfg),
                                  auto_offset_reset=s.auto_offset_reset,
                                  session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
        return src
    from streamem.sources.file import FileSource

    path = "-" if s.type == "stdin" else str(s.path)
    return FileSource(path, format=s.format, follow=s.follow,
                      max_event_bytes=s.max_event_bytes, poll_interval=s.poll_interval_ms / 1e3)


def _kafka_sink(cfg: Config, spec: SinkConfig) -> Sink:
    from streamem.sinks.kafka import KafkaSink

    assert spec.topic is not None
    sink: Sink = KafkaSink(list(cfg.source.bootstrap_servers), spec.topic,
                           name=spec.name or "kafka", security=_security(cfg))
    return sink


def make_sinks(cfg: Config, state_dir: Path) -> Sink:
    """All configured sinks behind one fan-out that isolates their failures."""
    from streamem.sinks.factory import build_sink
    from streamem.sinks.fanout import FanoutSink

    sinks: list[Sink] = []
    try:
        for i, spec in enumerate(cfg.sinks):
            if spec.type == "kafka":
                sinks.append(_kafka_sink(cfg, spec))
            else:
                sinks.append(build_sink(spec, state_dir, index=i))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return FanoutSink(sinks)


def make_dead_letter(cfg: Config) -> DeadLetterSink:
    """The dead-letter sink (a JSON-lines file, or a Kafka topic)."""
    d = cfg.dead_letter
    if d.type == "kafka":
        from streamem.sinks.kafka import KafkaDeadLetterSink

        assert d.topic is not None
        kd: DeadLetterSink = KafkaDeadLetterSink(list(cfg.source.bootstrap_servers), d.topic,
                                                 security=_security(cfg))
        return kd
    from streamem.sinks.deadletter import FileDeadLetterSink

    fd: DeadLetterSink = FileDeadLetterSink("dead-letter", d.path)
    return fd


def make_store(cfg: Config) -> CheckpointStore:
    """The checkpoint store (a local directory, or a compacted Kafka topic)."""
    c = cfg.checkpoint
    if c.store == "kafka":
        from streamem.state.kafka_store import KafkaCheckpointStore

        assert c.topic is not None
        ks: CheckpointStore = KafkaCheckpointStore(list(cfg.source.bootstrap_servers), c.topic,
                                                   security=_security(cfg))
        return ks
    from streamem.state.directory import DirectoryCheckpointStore

    ds: CheckpointStore = DirectoryCheckpointStore(c.dir, keep=c.keep)
    return ds


def make_metrics(cfg: Config, registry: Any, sinks: Sink,
                 history: History | None = None) -> tuple[Any, Any]:
    """``(Metrics, MetricsServer | None)`` for the ``metrics`` section; with a ``history``
    the server also serves the operator page and ``/api/v1`` (the ``ui`` section)."""
    from streamem.metrics.recorder import Metrics
    from streamem.metrics.server import MetricsServer

    metrics = Metrics(registry)
    metrics.attach_sinks(getattr(sinks, "sinks", [sinks]))
    metrics.update_health({"alert_rate_target": cfg.detector.alert_rate})
    metrics.declare_rules([r.name for r in Rules.from_config(cfg.rules, cfg.fields.features).rules])
    ui = None if history is None else make_ui(cfg, metrics, history)
    server = MetricsServer(metrics, cfg.metrics.host, cfg.metrics.port, ui=ui)
    return metrics, server


def make_ui(cfg: Config, metrics: Any, history: History) -> UiApp:
    """The operator page and its API for the ``ui`` section."""
    from streamem.ui.status import status

    u = cfg.ui
    scope = {"scope": cfg.model.scope, "source": cfg.source.type}
    return UiApp(
        history,
        lambda: status(metrics, history, alert_rate=cfg.detector.alert_rate,
                       extra=lambda: scope),
        token=u.token.get() if u.token is not None else None,
        read_token=u.read_token.get() if u.read_token is not None else None,
        count_feedback=metrics.count_feedback, max_body_bytes=u.max_body_bytes,
    )


def attach_rebalance(daemon: Daemon, source: Source) -> None:
    """Checkpoint on revocation, restore and seek on assignment (Kafka consumer groups).

    ``model.scope: partition``: a gained partition's lane is restored from the store (its
    positions are where the source seeks); a revoked partition's lane is checkpointed, then
    dropped with its buffered, unprocessed events (the new owner reads them again).
    ``global``: the one lane is checkpointed on revocation, the buffered events of the revoked
    partitions are dropped, and gained partitions resume at the lane's positions.

    Parameters
    ----------
    daemon
        The daemon whose lanes (model states) follow the assignment.
    source
        The source that calls the listener (sources without rebalances ignore it).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> from streamem.daemon import Daemon
    >>> from streamem.sources.file import FileSource
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}})
    >>> with FileSource("-") as src:
    ...     attach_rebalance(Daemon(cfg, install_signal_handlers=False), src)
    """
    partition_scope = daemon.cfg.model.scope == "partition"

    class Listener:
        def on_partitions_revoked(self, partitions: Sequence[int]) -> None:
            if partition_scope:
                lanes = [daemon.lanes[f"p{p}"] for p in partitions if f"p{p}" in daemon.lanes]
                daemon.checkpoint(lanes)
                for p in partitions:
                    daemon.lanes.pop(f"p{p}", None)
                return
            lane = daemon.lanes.get("global")
            if lane is None:
                return
            daemon.checkpoint([lane])
            gone = set(partitions)
            lane.buffer.drop(gone)
            if not lane.buffer:
                lane.buffered_at = None

        def on_partitions_assigned(self, partitions: Sequence[int]) -> Mapping[int, int]:
            out: dict[int, int] = {}
            for p in partitions:
                lane = daemon._lane_for(p)
                if p in lane.positions:
                    out[p] = lane.positions[p]
            logger.info("partitions %s assigned; resuming at %s (others: committed offset "
                        "or source.auto_offset_reset)", list(partitions), out)
            return out

    source.set_rebalance_listener(Listener())
