"""Put tests/model on sys.path for the shared ``gmm_testkit`` helpers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
