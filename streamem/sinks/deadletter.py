"""The file dead-letter sink: events that could not be used, one JSON line each.

Each line is ``{"reason", "source_id", "payload" | "payload_b64", "at"}``: the payload as
text when it is valid UTF-8, else base64 in ``payload_b64``. Writing never raises on bad
bytes, and memory stays bounded: lines go straight to the file's buffer and payloads longer
than ``max_payload_bytes`` are cut (``"truncated": true`` and ``"payload_size"`` say so).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamem.errors import ConfigError
from streamem.sinks.base import ClosingSink
from streamem.sinks.jsonl import JsonLinesWriter

__all__ = ["FileDeadLetterSink", "dead_letter_document"]

logger = logging.getLogger(__name__)


def dead_letter_document(payload: bytes, reason: str, source_id: str, at: float,
                         max_payload_bytes: int = 1 << 20) -> dict[str, Any]:
    """The JSON document of one dead letter.

    Parameters
    ----------
    payload
        The raw event bytes.
    reason
        Why it was rejected (``parse_error``, ``too_large``, ...).
    source_id
        Where it came from (a position id such as ``events:0:42``).
    at
        When it was rejected, in seconds since the epoch.
    max_payload_bytes
        Longer payloads are cut to this many bytes.

    Returns
    -------
    dict
        ``payload`` (text) or ``payload_b64`` (base64 of bytes that are not UTF-8).

    Examples
    --------
    >>> dead_letter_document(b'{"a": ', "parse_error", "f:0:0", 1.5)
    {'reason': 'parse_error', 'source_id': 'f:0:0', 'at': 1.5, 'payload': '{"a": '}
    >>> dead_letter_document(b"\\xff\\x00", "parse_error", "f:0:9", 2.0)["payload_b64"]
    '/wA='
    >>> d = dead_letter_document(b"abcdef", "too_large", "f:0:3", 3.0, max_payload_bytes=2)
    >>> d["payload"], d["truncated"], d["payload_size"]
    ('ab', True, 6)
    """
    document: dict[str, Any] = {"reason": str(reason), "source_id": str(source_id), "at": at}
    data = bytes(payload)
    if len(data) > max_payload_bytes:
        document["truncated"] = True
        document["payload_size"] = len(data)
        data = data[:max_payload_bytes]
    try:
        document["payload"] = data.decode("utf-8")
    except UnicodeDecodeError:
        document["payload_b64"] = base64.b64encode(data).decode("ascii")
    return document


class FileDeadLetterSink(ClosingSink):
    """Rejected events appended to a JSON-lines file; ``flush`` fsyncs it.

    Parameters
    ----------
    name
        Sink name.
    path
        The file; created with its parent directories, appended to if it exists.
    max_payload_bytes
        Payloads longer than this are cut (the line records the original size).
    clock
        Wall clock for the ``at`` field (``time.time`` by default).

    Raises
    ------
    SinkError
        If the file cannot be opened or written.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "dead-letter.jsonl"
    >>> with FileDeadLetterSink("dlq", path, clock=lambda: 7.0) as dlq:
    ...     dlq.write(b"\\xfe not utf-8", "parse_error", "f:0:12")
    ...     dlq.write(b"{}", "no_features", "f:0:20")
    >>> [json.loads(line) for line in path.read_text().splitlines()][1]
    {'at': 7.0, 'payload': '{}', 'reason': 'no_features', 'source_id': 'f:0:20'}
    >>> dlq.written
    2
    """

    def __init__(self, name: str, path: str | os.PathLike[str], *,
                 max_payload_bytes: int = 1 << 20,
                 clock: Callable[[], float] = time.time) -> None:
        if max_payload_bytes < 1:
            raise ConfigError("max_payload_bytes", f"{max_payload_bytes} is too small; use "
                              "at least 1 (the default keeps 1 MiB of each payload)")
        self.name = name
        self.path = Path(path)
        self.max_payload_bytes = max_payload_bytes
        self.written = 0
        self._clock = clock
        self._writer = JsonLinesWriter.open(self.path, "dead_letter.path")

    def write(self, payload: bytes, reason: str, source_id: str) -> None:
        """Append one bad event with the reason it was rejected (never raises on bad bytes).

        Parameters
        ----------
        payload
            The raw event.
        reason
            Why it was rejected.
        source_id
            Where it came from.

        Raises
        ------
        SinkError
            If the sink is closed or the disk write fails.
        """
        self._writer.write(dead_letter_document(payload, reason, source_id, self._clock(),
                                                self.max_payload_bytes))
        self.written += 1

    def flush(self) -> None:
        """Make everything written so far durable (flush and fsync)."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the file; safe to call twice."""
        self._writer.close()

    def __repr__(self) -> str:
        return f"FileDeadLetterSink(name={self.name!r}, path={str(self.path)!r})"
