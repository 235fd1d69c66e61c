"""A Kafka state store that cannot save (no broker at its address) does not stop the daemon:
the lane stays dirty with its sequence unchanged, nothing is committed, and the daemon gives
up only after failing for five minutes. No broker needed: the store talks to a closed port."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from testkit.kafka_daemon import FEATURES

from streamem.config import parse_config
from streamem.errors import StateError
from streamem.runtime import checkpoint as checkpoint_module
from streamem.runtime.build import new_detector
from streamem.runtime.checkpoint import Checkpointer
from streamem.runtime.lane import Lane
from streamem.sinks.gate import SinkGate
from streamem.state.kafka_store import KafkaCheckpointStore


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_failed_kafka_save_is_retried_then_given_up(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    dead = _closed_port()
    cfg = parse_config({
        "source": {"type": "kafka", "topic": "t", "bootstrap_servers": [dead]},
        "fields": {"features": FEATURES},
        "checkpoint": {"store": "kafka", "topic": "state", "every_seconds": 5},
    })
    committed: list[dict[int, int]] = []
    with KafkaCheckpointStore(dead, "state", timeout=0.5) as store:
        ckpt = Checkpointer(store, committed.append, SinkGate(60.0), every_seconds=5,
                            retry_saves=cfg.checkpoint.store == "kafka")
        lane = Lane("p0", new_detector(cfg), {0: 10}, {"events_seen": 10}, sequence=3)
        lane.progress.advance({0: 12}, {"events_seen": 2})  # learned since checkpoint 3
        with caplog.at_level(logging.WARNING, logger="streamem.daemon"):
            ckpt.checkpoint([lane])  # does not raise
        assert "checkpoint not saved" in caplog.text
        assert lane.dirty and lane.sequence == 3 and ckpt.checkpoints == 0
        assert committed == []
        assert not ckpt.due([lane])  # retried after every_seconds, not in a busy loop
        assert ckpt.failing_since is not None
        ckpt.failing_since -= checkpoint_module.SAVE_RETRY_SECONDS + 1
        with pytest.raises(StateError, match="not acknowledged"):
            ckpt.checkpoint([lane])
        assert lane.dirty and lane.sequence == 3
