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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from streamem.errors import SinkError
from streamem.sinks.base import Incident, SinkStats
from streamem.sinks.payload import anomaly_document, dumps, incident_document
from streamem.types import AnomalyRecord

__all__ = ["FileSink", "JsonLinesWriter", "StdoutSink"]

logger = logging.getLogger(__name__)


class JsonLinesWriter:
    """A thread-safe JSON-lines text stream; ``flush`` also fsyncs when it is a file.

    Parameters
    ----------
    stream
        Where lines go.
    label
        What to call the stream in error messages (a sink name or a path).
    durable
        fsync the stream's file descriptor on flush, and close the stream on close.
    line_flush
        Hand each line to the operating system as soon as it is written (no fsync), so a
        reader (``tail -f``, a pipe into ``jq``) sees every alert at once instead of when
        the next 8 KiB or checkpoint comes. Anomalies are rare, so this costs little.

    Examples
    --------
    >>> import io
    >>> buffer = io.StringIO()
    >>> with JsonLinesWriter(buffer, "demo") as writer:
    ...     writer.write({"b": 1, "a": float("nan")})
    >>> buffer.getvalue()
    '{"a":null,"b":1}\\n'
    """

    def __init__(self, stream: TextIO, label: str, *, durable: bool = False,
                 line_flush: bool = False) -> None:
        self.label = label
        self._stream = stream
        self._durable = durable
        self._line_flush = line_flush
        self._lock = threading.Lock()
        self.closed = False

    @classmethod
    def open(cls, path: Path, what: str, *, line_flush: bool = False) -> JsonLinesWriter:
        """Open ``path`` for appending (with its parent directories) as a durable writer.

        Raises
        ------
        SinkError
            If it cannot be opened; ``what`` names the config key to fix.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise SinkError(f"cannot open {str(path)!r}: {exc}; choose a writable "
                            f"{what}") from exc
        return cls(stream, str(path), durable=True, line_flush=line_flush)

    def write(self, document: Mapping[str, Any]) -> None:
        """Append one document as a line.

        Raises
        ------
        SinkError
            If the writer is closed or the write fails.
        """
        line = dumps(document) + "\n"
        with self._lock:
            if self.closed:
                raise SinkError(f"{self.label!r} is closed; write before close()")
            try:
                self._stream.write(line)
                if self._line_flush:
                    self._stream.flush()
            except (OSError, ValueError) as exc:
                raise SinkError(f"cannot write {self.label!r}: {exc}; check the output "
                                "(disk space, permissions, closed pipe)") from exc

    def flush(self) -> None:
        """Push buffered lines to the operating system, and to disk if durable."""
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.flush()
                if self._durable:
                    os.fsync(self._stream.fileno())
            except (OSError, ValueError) as exc:
                raise SinkError(f"cannot flush {self.label!r}: {exc}; check the output "
                                "(disk space, permissions, closed pipe)") from exc

    def close(self) -> None:
        """Flush, and close the stream if durable; safe to call twice."""
        if self.closed:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                if not self.closed:
                    self.closed = True
                    if self._durable:
                        self._stream.close()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LineSink:
    """Shared body of the JSON-lines sinks: a writer and the counters."""

    def __init__(self, name: str, writer: JsonLinesWriter) -> None:
        self.name = name
        self.stats = SinkStats()
        self._writer = writer

    def emit(self, record: AnomalyRecord) -> None:
        """Write one anomaly as a JSON line (errors are counted by the caller)."""
        self._writer.write(anomaly_document(record))
        self.stats.delivered += 1

    def emit_incident(self, incident: Incident) -> None:
        """Write one incident transition as a JSON line."""
        self._writer.write(incident_document(incident))
        self.stats.delivered += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Push buffered lines to the operating system (and to disk for files)."""
        self._writer.flush()
        return True

    def close(self) -> None:
        """Flush and release; safe to call twice."""
        self._writer.close()

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
        out = stream if stream is not None else sys.stdout
        super().__init__(name, JsonLinesWriter(out, name, line_flush=True))


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
        super().__init__(name, JsonLinesWriter.open(self.path, "path for the file sink",
                                                    line_flush=True))

    def __repr__(self) -> str:
        return f"FileSink(name={self.name!r}, path={str(self.path)!r})"
