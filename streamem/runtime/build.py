"""Config -> objects: the one place that builds what a :class:`~streamem.config.Config` names.

The source (file, stdin or Kafka), the sinks behind their fan-out (Kafka sinks included), the
dead-letter sink, the checkpoint store, the metrics recorder and its server with the operator
page, the detector and the feature extractor, for the daemon and ``streamem replay`` alike.
Kafka, httpx and prometheus_client stay behind the one adapter module that owns each; this
module imports those adapters only when the config names them, so ``import streamem`` stays
numpy+scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamem import parsing
from streamem.alerting.rules import Rules
from streamem.config import Config
from streamem.features import FeatureExtractor
from streamem.kafka.settings import KafkaSecurity
from streamem.runtime.feedback import SUPPRESSED_BY, FeedbackLoop
from streamem.scoring.detector import Detector
from streamem.sinks.base import DeadLetterSink, Sink
from streamem.sinks.fanout import FanoutSink
from streamem.sources.base import Rebalancing, Source
from streamem.state.base import CheckpointStore
from streamem.ui.app import UiApp
from streamem.ui.history import History

if TYPE_CHECKING:
    from streamem.metrics.recorder import Metrics
    from streamem.metrics.server import MetricsServer
    from streamem.runtime.aggregation import BucketStage

__all__ = ["Input", "make_dead_letter", "make_metrics", "make_page", "make_sinks",
           "make_source", "make_store", "make_ui", "new_detector", "new_extractor", "new_stage"]


def new_detector(cfg: Config) -> Detector:
    """A fresh detector from the ``model`` and ``detector`` sections.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"]}})
    >>> new_detector(cfg).warmup
    1000
    """
    m, d = cfg.model, cfg.detector
    return Detector(
        n_components=m.n_components, covariance_type=m.covariance_type,
        half_life=m.half_life, alert_rate=d.alert_rate, warmup=m.warmup,
        max_components=m.max_components, reg_covar=m.reg_covar,
        protect_model=d.protect_model, regime_patience=d.regime_patience,
        regime_min_events=d.regime_min_events,
        detrend_half_life=d.detrend_half_life, detrend_min_autocorr=d.detrend_min_autocorr,
        smooth_window=d.smooth_window, cold_start=d.cold_start,
        feature_names=list(cfg.fields.features), random_state=m.random_state,
        categorical=list(cfg.fields.categorical) or None,
    )


def new_extractor(cfg: Config, header: bytes | None = None,
                  lines: parsing.LineDecoder | None = None) -> FeatureExtractor:
    """The payload decoder of the ``fields`` and ``source`` sections.

    Parameters
    ----------
    cfg
        The configuration.
    header
        The CSV header row of the input (CSV only).
    lines
        The text-format decoder (``parsing.from_config(cfg)``), shared with the checkpoints.

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin", "format": "csv"},
    ...                     "fields": {"features": ["a"]}})
    >>> new_extractor(cfg, b"a,b").decode([b"1.5,2"]).X.tolist()
    [[1.5]]
    """
    f = cfg.fields
    # a composite key (a list) is read and checked by streamem.runtime.keying under scope key
    key = f.key if isinstance(f.key, str) else None
    fx = FeatureExtractor(f.features, timestamp=f.timestamp, key=key, id=f.id,
                          format=cfg.source.format, max_event_bytes=cfg.source.max_event_bytes,
                          lines=lines, max_clock_skew=f.max_clock_skew_seconds,
                          categorical=f.categorical)
    if cfg.source.format == "csv" and header is not None:
        fx.set_csv_header(header)
    return fx


def kafka_security(cfg: Config) -> KafkaSecurity:
    """The Kafka security settings of the ``source`` section (every Kafka client's)."""
    return _security(cfg)


def new_stage(cfg: Config, extractor: FeatureExtractor) -> BucketStage | None:
    """The bucket stage of the ``aggregate`` section (None without one).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> cfg = parse_config({"source": {"type": "stdin", "format": "nginx"},
    ...     "aggregate": {"features": [{"name": "requests", "fn": "count"}]}})
    >>> new_stage(cfg, new_extractor(cfg)).aggregator("global").columns
    ('requests',)
    """
    if cfg.aggregate is None:
        return None
    from streamem.runtime.aggregation import BucketStage

    return BucketStage(cfg, extractor)


def _security(cfg: Config) -> KafkaSecurity:
    s = cfg.source
    return KafkaSecurity(
        security_protocol=s.security_protocol, sasl_mechanism=s.sasl_mechanism,
        sasl_username=s.sasl_username,
        sasl_password=s.sasl_password.get() if s.sasl_password else None,
        ssl_cafile=s.ssl_cafile, ssl_certfile=s.ssl_certfile, ssl_keyfile=s.ssl_keyfile,
    )


@dataclass(frozen=True)
class Input:
    """The configured source and what the daemon needs to know of it.

    Attributes
    ----------
    source
        The source.
    header
        The CSV header row (file and stdin sources with ``format: csv``), else None.
    rebalancing
        The source again when it has partitions assigned dynamically (Kafka), else None.
    """

    source: Source
    header: bytes | None = None
    rebalancing: Rebalancing | None = None


def make_source(cfg: Config) -> Input:
    """The configured source (file, stdin or Kafka consumer group member)."""
    s = cfg.source
    if s.type == "kafka":
        from streamem.sources.kafka import KafkaSource

        assert s.topic is not None
        # a 10 s session (not kafka-python's 45 s): a killed member's partitions move to the
        # survivors (or to its restarted self) 10 s later; heartbeats run on kafka-python's IO
        # thread, so slow batches do not expire it (max_poll_interval_ms bounds those)
        kafka = KafkaSource(list(s.bootstrap_servers), s.topic, s.group_id,
                            security=_security(cfg), auto_offset_reset=s.auto_offset_reset,
                            session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
        return Input(kafka, None, kafka)
    from streamem.sources.file import FileSource

    path = "-" if s.type == "stdin" else str(s.path)
    src = FileSource(path, format=s.format, follow=s.follow, max_event_bytes=s.max_event_bytes,
                     poll_interval=s.poll_interval_ms / 1e3)
    return Input(src, src.header)


def make_sinks(cfg: Config, state_dir: Path) -> FanoutSink:
    """All configured sinks behind one fan-out that isolates their failures."""
    from streamem.sinks.factory import build_sink

    sinks: list[Sink] = []
    try:
        for i, spec in enumerate(cfg.sinks):
            if spec.type == "kafka":
                from streamem.sinks.kafka import KafkaSink

                assert spec.topic is not None
                sinks.append(KafkaSink(list(cfg.source.bootstrap_servers), spec.topic,
                                       name=spec.name or "kafka", security=_security(cfg)))
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


def make_page(cfg: Config) -> tuple[History | None, FeedbackLoop | None]:
    """The operator page's history (restored from beside the checkpoints) and the loop that
    acts on its verdicts (``ui.feedback_*``); ``(None, None)`` with ``ui.enabled: false``."""
    from streamem.ui.store import load_history

    if not cfg.ui.enabled:
        return None, None
    history = load_history(cfg.checkpoint.dir, max_anomalies=cfg.ui.max_anomalies)
    return history, FeedbackLoop(history, weight=cfg.ui.feedback_weight,
                                 suppress_seconds=cfg.ui.feedback_suppress_seconds)


def make_metrics(cfg: Config, registry: Any, sinks: FanoutSink,
                 feedback: FeedbackLoop | None = None) -> tuple[Metrics, MetricsServer]:
    """``(Metrics, MetricsServer)`` for the ``metrics`` section; with ``feedback`` (see
    :func:`make_page`) the server also serves the operator page and ``/api/v1`` (the ``ui``
    section) over ``feedback.history``, and verdicts go to ``feedback``."""
    from streamem.metrics.recorder import Metrics
    from streamem.metrics.server import MetricsServer

    metrics = Metrics(registry)
    metrics.attach_sinks(sinks.sinks)
    metrics.update_health({"alert_rate_target": cfg.detector.alert_rate})
    rules = [r.name for r in Rules.from_config(cfg.rules, cfg.fields.features).rules]
    metrics.declare_rules(rules if feedback is None else [*rules, SUPPRESSED_BY])
    ui = None if feedback is None else make_ui(cfg, metrics, feedback.history, feedback)
    server = MetricsServer(metrics, cfg.metrics.host, cfg.metrics.port, ui=ui)
    return metrics, server


def make_ui(cfg: Config, metrics: Metrics, history: History,
            feedback: FeedbackLoop | None = None) -> UiApp:
    """The operator page and its API for the ``ui`` section."""
    from streamem.ui.status import status

    u = cfg.ui
    scope = {"scope": cfg.model.scope, "source": cfg.source.type}

    def extra() -> dict[str, Any]:
        return scope if feedback is None else {**scope, **feedback.status()}

    return UiApp(
        history,
        lambda: status(metrics, history, alert_rate=cfg.detector.alert_rate, extra=extra),
        on_feedback=None if feedback is None else feedback.submit,
        token=u.token.get() if u.token is not None else None,
        read_token=u.read_token.get() if u.read_token is not None else None,
        count_feedback=metrics.count_feedback, max_body_bytes=u.max_body_bytes,
    )
