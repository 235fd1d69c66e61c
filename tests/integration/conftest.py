"""Fixtures for the integration tests that run against the real Kafka test broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import testkit.broker as kafka_support


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the running test broker (started by the script when needed).

    In CI (``CI=true``) an unreachable broker fails the tests; on a machine without Java or
    Maven they are skipped with a loud reason. A broker this fixture started is left running
    for the next session; CI stops it with ``scripts/kafka-broker stop``.
    """
    yield kafka_support.ensure_broker()


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap(kafka_bootstrap: str) -> str:
    """The SASL_PLAINTEXT listener of the test broker (PLAIN user streamem/streamem-secret)."""
    import socket

    host, _, port = kafka_support.SASL_BOOTSTRAP.rpartition(":")
    with socket.socket() as s:
        s.settimeout(1.0)
        if s.connect_ex((host, int(port))) != 0:
            kafka_support.unavailable(
                f"no SASL listener on {kafka_support.SASL_BOOTSTRAP}; the running broker predates "
                "it: restart with `scripts/kafka-broker stop && scripts/kafka-broker start`")
    return kafka_support.SASL_BOOTSTRAP
