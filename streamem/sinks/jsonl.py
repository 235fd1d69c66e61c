"""JSON-lines sinks: :class:`StdoutSink` and :class:`FileSink`.

One line per anomaly (``"type": "anomaly"``) or incident transition (``"type": "incident"``),
in the shapes of :mod:`streamem.sinks.payload`. :meth:`FileSink.flush` fsyncs the file, so a
checkpoint taken after a flush never points past anomalies that a crash could lose. A write
that fails (a full disk) keeps the lines in memory and ``flush`` raises until they are
written, so the daemon never checkpoints past them (see :class:`JsonLinesWriter`). The file
is created 0600 whatever the umask.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TextIO

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.errors import SinkError
from streamem.sinks.base import ClosingSink, SinkStats
from streamem.sinks.files import open_private, private_dir
from streamem.sinks.payload import anomaly_document, dumps, incident_document

__all__ = ["FileSink", "JsonLinesWriter", "StdoutSink"]

logger = logging.getLogger(__name__)


_MAX_PENDING_BYTES = 64 << 20


class JsonLinesWriter:
    """A thread-safe JSON-lines output that never loses a line silently.

    Lines are kept in memory until the operating system took them. A write that fails (a
    full disk, a file size limit, a closed pipe) or takes only part of a line leaves the
    rest pending; the next :meth:`write` or :meth:`flush` carries on where it stopped, so
    lines are never torn or repeated on a file. :meth:`flush` raises while anything is
    pending, so a checkpoint never moves past lines that did not reach the output. Memory is
    bounded: beyond ``max_pending_bytes`` new lines are refused (and every later ``flush``
    raises, since they are lost; a restart replays them from the last checkpoint).

    Parameters
    ----------
    stream
        Where lines go: a binary unbuffered file (each write one system call), or a text
        stream (``io.StringIO``; a failed write there is retried whole).
    label
        What to call the stream in error messages (a sink name or a path).
    durable
        fsync the stream's file descriptor on flush, and close the stream on close.
    line_flush
        Hand each line to the operating system as soon as it is written (no fsync), so a
        reader (``tail -f``, a pipe into ``jq``) sees every alert at once instead of when
        the next 64 KiB or checkpoint comes. Anomalies are rare, so this costs little.
    max_pending_bytes
        Most bytes held in memory while the output fails.

    Examples
    --------
    >>> import io
    >>> buffer = io.StringIO()
    >>> with JsonLinesWriter(buffer, "demo") as writer:
    ...     writer.write({"b": 1, "a": float("nan")})
    >>> buffer.getvalue()
    '{"a":null,"b":1}\\n'
    """

    def __init__(self, stream: IO[Any], label: str, *, durable: bool = False,
                 line_flush: bool = False, max_pending_bytes: int = _MAX_PENDING_BYTES) -> None:
        self.label = label
        self._stream = stream
        self._binary = isinstance(stream, io.RawIOBase)
        self._durable = durable
        self._line_flush = line_flush
        self._max_pending = max_pending_bytes
        self._pending = bytearray()
        self._error: BaseException | None = None
        self._lost = 0
        self._lock = threading.Lock()
        self.closed = False

    @classmethod
    def open(cls, path: Path, what: str, *, line_flush: bool = False,
             narrow: bool = True) -> JsonLinesWriter:
        """Open ``path`` for appending (with its parent directories) as a durable writer.

        The file is created 0600 (its new directories 0700) whatever the umask; ``narrow``
        also sets 0600 on a file that exists already.

        Raises
        ------
        SinkError
            If it cannot be opened; ``what`` names the config key to fix.
        """
        try:
            private_dir(path.parent, narrow=False)
            stream = open_private(path, "ab", buffering=0, narrow=narrow)
        except OSError as exc:
            raise SinkError(f"cannot open {str(path)!r}: {exc}; choose a writable "
                            f"{what}") from exc
        return cls(stream, str(path), durable=True, line_flush=line_flush)

    @property
    def pending_bytes(self) -> int:
        """Bytes not yet taken by the operating system."""
        return len(self._pending)

    def write(self, document: Mapping[str, Any]) -> None:
        """Append one document as a line (kept in memory if the output fails now).

        Raises
        ------
        SinkError
            If the writer is closed, or the output failed for so long that the line does not
            fit in memory any more (the line is lost; :meth:`flush` raises from then on).
        """
        line = (dumps(document) + "\n").encode("utf-8")
        with self._lock:
            if self.closed:
                raise SinkError(f"{self.label!r} is closed; write before close()")
            if len(self._pending) + len(line) > self._max_pending:
                self._lost += 1
                raise SinkError(f"cannot write {self.label!r}: {self._error}; "
                                f"{len(self._pending)} bytes wait in memory already, line "
                                "dropped (it is replayed from the last checkpoint)")
            self._pending += line
            if self._line_flush or len(self._pending) >= 1 << 16:
                self._drain()

    def _drain(self) -> bool:
        """Hand pending bytes to the stream until done or it fails (lock held)."""
        try:
            while self._pending:
                if self._binary:
                    n = self._stream.write(self._pending)
                    if not n:
                        raise OSError(f"wrote nothing to {self.label!r}")
                    del self._pending[:n]
                else:
                    self._stream.write(self._pending.decode("utf-8"))
                    self._stream.flush()
                    self._pending.clear()
        except (OSError, ValueError) as exc:
            self._error = exc
            return False
        self._error = None
        return True

    def flush(self) -> None:
        """Push pending lines to the operating system, and to disk if durable.

        Raises
        ------
        SinkError
            If lines are still pending (the output fails), the fsync failed, or lines were
            lost; the writer keeps them and the next call tries again.
        """
        with self._lock:
            if self.closed:
                return
            if not self._drain():
                raise SinkError(f"cannot write {self.label!r}: {self._error}; "
                                f"{len(self._pending)} bytes wait in memory; check the output "
                                "(disk space, file size limit, permissions, closed pipe)")
            try:
                if self._durable:
                    _fsync(self._stream.fileno())
                elif not self._binary:
                    self._stream.flush()
            except (OSError, ValueError) as exc:
                raise SinkError(f"cannot flush {self.label!r}: {exc}; check the output "
                                "(disk space, permissions, closed pipe)") from exc
            if self._lost:
                raise SinkError(f"{self.label!r}: {self._lost} lines were dropped while the "
                                "output failed; restart to replay them from the last "
                                "checkpoint")

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
                    if self._pending:
                        logger.error("%s: %d bytes could not be written before close; they "
                                     "are replayed from the last checkpoint", self.label,
                                     len(self._pending))
                    if self._durable:
                        self._stream.close()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync(fd: int) -> None:
    """fsync, except where the file cannot be synced (a pipe or a device such as
    ``/dev/stdout``): there the written bytes are all the durability there is."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):
            raise


class _LineSink(ClosingSink):
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
        out: IO[Any] = stream if stream is not None else sys.stdout
        try:  # a real file descriptor: write bytes to it, so a failed write resumes exactly
            fd = out.fileno()
            out.flush()
            out = io.FileIO(fd, "wb", closefd=False)
        except (OSError, ValueError, AttributeError):
            pass  # an in-memory stream (tests, doctests): text writes
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
    >>> from streamem.alerting.records import Incident
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
                                                    line_flush=True, narrow=False))

    def __repr__(self) -> str:
        return f"FileSink(name={self.name!r}, path={str(self.path)!r})"
