"""JSON-lines sinks: :class:`StdoutSink` and :class:`FileSink`.

One line per anomaly (``"type": "anomaly"``) or incident transition (``"type": "incident"``),
in the shapes of :mod:`streamem.sinks.payload`. :meth:`FileSink.flush` fsyncs the file, so a
checkpoint taken after a flush never points past anomalies that a crash could lose.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from streamem.errors import SinkError
from streamem.sinks.base import Incident, SinkStats
from streamem.sinks.payload import anomaly_document, dumps, incident_document
from streamem.types import AnomalyRecord

__all__ = ["FileSink", "StdoutSink"]

logger = logging.getLogger(__name__)


class _LineSink:
    """Shared body of the JSON-lines sinks: a locked text stream and the counters."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self.stats = SinkStats()
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False

    def emit(self, record: AnomalyRecord) -> None:
        """Write one anomaly as a JSON line."""
        self._write(anomaly_document(record))

    def emit_incident(self, incident: Incident) -> None:
        """Write one incident transition as a JSON line."""
        self._write(incident_document(incident))

    def _write(self, document: dict[str, Any]) -> None:
        line = dumps(document) + "\n"
        with self._lock:
            if self._closed:
                raise SinkError(f"sink {self.name!r} is closed; emit before close()")
            try:
                self._stream.write(line)
            except (OSError, ValueError) as exc:  # counted by the caller (FanoutSink)
                raise SinkError(f"sink {self.name!r} cannot write: {exc}; check the "
                                "output (disk space, permissions, closed pipe)") from exc
            self.stats.delivered += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Push buffered lines to the operating system (and to disk for files)."""
        with self._lock:
            if self._closed:
                return True
            try:
                self._stream.flush()
                self._sync()
            except (OSError, ValueError) as exc:
                raise SinkError(f"sink {self.name!r} cannot flush: {exc}; check the "
                                "output (disk space, permissions, closed pipe)") from exc
        return True

    def _sync(self) -> None:
        """Make flushed data durable (files only)."""

    def _release(self) -> None:
        """Release the stream (files only)."""

    def close(self) -> None:
        """Flush and release; safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                if not self._closed:
                    self._closed = True
                    self._release()

    def __enter__(self) -> _LineSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class StdoutSink(_LineSink):
    """Anomalies and incidents as JSON lines on standard output.

    Parameters
    ----------
    name
        Sink name (the ``sink`` label of the metrics).
    stream
        Where to write; standard output by default. It is flushed, never closed.

    Examples
    --------
    >>> r = AnomalyRecord(id="f:0:1", key="k", timestamp=None, score=9.5,
    ...                   tail_probability=3e-10, severity=95.0, threshold=6.0)
    >>> with StdoutSink() as sink:
    ...     sink.emit(r)
    {"detected_at":0.0,"extra":{},"id":"f:0:1","key":"k","model_generation":0,...,"type":"anomaly"}
    >>> sink.stats.delivered
    1
    """

    def __init__(self, name: str = "stdout", stream: TextIO | None = None) -> None:
        super().__init__(name, stream if stream is not None else sys.stdout)


class FileSink(_LineSink):
    """Anomalies and incidents appended to a JSON-lines file; ``flush`` fsyncs it.

    Parameters
    ----------
    name
        Sink name (the ``sink`` label of the metrics).
    path
        The file; created with its parent directories, appended to if it exists.

    Raises
    ------
    SinkError
        If the file cannot be opened.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from streamem.sinks.base import Incident
    >>> path = Path(tempfile.mkdtemp()) / "out" / "anomalies.jsonl"
    >>> r = AnomalyRecord(id="f:0:1", key="k", timestamp=None, score=9.5,
    ...                   tail_probability=3e-10, severity=95.0, threshold=6.0)
    >>> with FileSink("file", path) as sink:
    ...     sink.emit(r)
    ...     sink.emit_incident(Incident(id="k:1", key="k", status="firing", started_at=1.0,
    ...                                 ended_at=None, max_severity=95.0, last=r))
    >>> [json.loads(line)["type"] for line in path.read_text().splitlines()]
    ['anomaly', 'incident']
    """

    def __init__(self, name: str, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise SinkError(f"cannot open sink file {str(self.path)!r}: {exc}; choose a "
                            "writable path for the file sink") from exc
        super().__init__(name, stream)

    def _sync(self) -> None:
        os.fsync(self._stream.fileno())

    def _release(self) -> None:
        self._stream.close()

    def __repr__(self) -> str:
        return f"FileSink(name={self.name!r}, path={str(self.path)!r})"
