"""Fixtures for the integration tests that run against the real Kafka test broker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for kafka_support

import kafka_support


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the running test broker (started by the script when needed).

    In CI (``CI=true``) an unreachable broker fails the tests; on a machine without Java or
    Maven they are skipped with a loud reason. A broker this fixture started is left running
    for the next session; CI stops it with ``scripts/kafka-broker stop``.
    """
    yield kafka_support.ensure_broker()
