"""Test kit of the state tests (no tests here): snapshot documents edited behind the codec."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

BodyEdit = Callable[[dict[str, Any]], object]


def reseal(blob: bytes, edit: BodyEdit) -> bytes:
    """The snapshot document ``blob`` with its body edited in place by ``edit`` and its
    checksum recomputed: it passes the checksum, so only the loader's own checks (and the
    caller's) can refuse it."""
    doc = json.loads(blob)
    edit(doc["body"])
    text = json.dumps(doc["body"], ensure_ascii=True, allow_nan=True, separators=(",", ":"))
    doc["checksum"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    head = json.dumps({k: doc[k] for k in ("format", "schema_version", "checksum")},
                      separators=(",", ":"))
    return f'{head[:-1]},"body":{text}}}\n'.encode()
