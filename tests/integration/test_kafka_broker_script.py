"""scripts/kafka-broker as CI uses it: idempotent start, status exit codes, log location."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from testkit.broker import run_script, unavailable

pytestmark = pytest.mark.kafka


def test_start_is_idempotent_and_status_reports_running(kafka_bootstrap: str) -> None:
    if run_script("status").returncode != 0:
        unavailable("the broker at the bootstrap address is not managed by scripts/kafka-broker")
    t0 = time.monotonic()
    again = run_script("start")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout
    assert time.monotonic() - t0 < 15
    status = run_script("status")
    assert status.returncode == 0 and kafka_bootstrap in status.stdout
    log = Path(run_script("logs").stdout.strip())
    assert "Kafka Server started" in log.read_text(errors="replace")


def test_unknown_command_is_rejected() -> None:
    proc = run_script("restart-everything")
    assert proc.returncode == 2 and "start [--fresh]" in proc.stderr
