"""A Kafka state store that cannot save (no broker at its address) does not stop the daemon:
the lane stays dirty with its sequence unchanged, nothing is committed, and the daemon gives
up only after failing for five minutes. No broker needed: the store talks to a closed port."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from testkit.kafka_daemon import FEATURES

from streamem import daemon as daemon_module
from streamem.config import parse_config
from streamem.daemon import Daemon
from streamem.errors import StateError
from streamem.pipeline import Lane, new_detector
from streamem.sources.file import FileSource
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
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    d = Daemon(cfg, install_signal_handlers=False)
    with KafkaCheckpointStore(dead, "state", timeout=0.5) as store, FileSource(str(empty)) as src:
        d._store, d._source = store, src
        lane = Lane("p0", new_detector(cfg), {0: 10}, {"events_seen": 10}, sequence=3,
                    dirty=True)
        d.lanes["p0"] = lane
        with caplog.at_level(logging.WARNING, logger="streamem.daemon"):
            d.checkpoint()  # does not raise
        assert "checkpoint not saved" in caplog.text
        assert lane.dirty and lane.sequence == 3 and d.checkpoints == 0
        assert not d._checkpoint_due()  # retried after every_seconds, not in a busy loop
        assert d._save_failing_since is not None
        d._save_failing_since -= daemon_module._SAVE_RETRY_SECONDS + 1
        with pytest.raises(StateError, match="not acknowledged"):
            d.checkpoint()
        assert lane.dirty and lane.sequence == 3
