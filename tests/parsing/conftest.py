"""Fixtures of the text-log tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit.logs import loghub_dir


@pytest.fixture(scope="session")
def loghub() -> Path:
    """The Loghub 2k folder (missing data fails the test)."""
    return loghub_dir()
