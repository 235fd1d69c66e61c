"""Fixtures of the daemon tests (helpers live in testkit/daemon.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from testkit.sinks import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()
