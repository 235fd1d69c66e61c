"""JSON-lines / CSV file and stdin sources: the embedded default that needs no broker.

Positions are byte offsets of the next line to read (partition ``0``), so a checkpoint can
resume a file exactly where the model state left it.
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import select
import sys
import time
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from streamem.errors import SourceError
from streamem.events import EventBatch

__all__ = ["FileSource"]

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20
_BLANK = frozenset(b" \t\r\x0b\x0c")
_first_byte = operator.itemgetter(0)  # of a non-empty line; whitespace-led lines go slow


class FileSource:
    """Read events line by line from a file (or stdin with ``path="-"``).

    Parameters
    ----------
    path
        File to read, or ``"-"`` for standard input.
    format
        ``"jsonl"`` or ``"csv"``; for CSV the first line is the header (see :attr:`header`).
    follow
        Keep tailing the file at its end instead of finishing (``exhausted`` never turns true).
    max_event_bytes
        Longer lines are cut to ``max_event_bytes + 1`` bytes (so the decoder rejects them as
        too large) and the rest of the line is skipped.
    poll_interval
        Seconds between checks for new data when following.

    Standard input is read from its file descriptor once ``select`` says it has data, so
    ``poll`` returns within its ``timeout`` on an idle pipe or terminal (the daemon can flush
    partial batches, checkpoint and stop meanwhile); it is exhausted when the writer closes it.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "e.jsonl")
    >>> _ = open(p, "wb").write(b'{"a": 1}\\n{"a": 2}\\n')
    >>> with FileSource(p) as src:
    ...     evs = src.poll(10, 0.0)
    ...     [e.payload for e in evs], evs[-1].next_offset, src.exhausted
    ([b'{"a": 1}', b'{"a": 2}'], 18, True)
    """

    def __init__(
        self,
        path: str,
        *,
        format: str = "jsonl",
        follow: bool = False,
        max_event_bytes: int = 1_048_576,
        poll_interval: float = 0.2,
    ) -> None:
        self.name = "stdin" if path == "-" else "file"
        self.path = path
        self.format = format
        self.follow = follow
        self.max_event_bytes = max_event_bytes
        self.poll_interval = poll_interval
        self.header: bytes | None = None
        self._eof = False
        self._closed = False
        self._buf = b""
        self._pos = 0
        self._skipping = False
        self._line_bytes = 256  # recent mean line length, to bound how far _bulk looks
        self._stdin_fd = -1
        self._stdin_closed = False
        self._fill_timeout = 0.0  # how long the next stdin read may wait for data
        if path == "-":
            self._fh: BinaryIO = sys.stdin.buffer
            self._offset = 0
        else:
            try:
                self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise SourceError(f"cannot open source.path {path!r}: {exc.strerror}; "
                                  "check the path and permissions") from exc
            self._offset = 0
        if format == "csv":
            line = self._read_stdin_header() if path == "-" else self._fh.readline()
            self.header = line.rstrip(b"\r\n")
            self._offset = len(line)

    # ------------------------------------------------------------------ protocol
    @property
    def exhausted(self) -> bool:
        """True after the end of a file that is not followed (stdin: once it is closed)."""
        if self.path == "-":
            return self._eof and self._stdin_closed
        return self._eof and not self.follow

    def _fd(self) -> int:
        """stdin's file descriptor, looked up at the first read (not at construction)."""
        if self._stdin_fd < 0:
            self._stdin_fd = self._fh.fileno()
        return self._stdin_fd

    def _read_stdin_header(self) -> bytes:
        """The CSV header line of stdin, read byte by byte (nothing beyond it is consumed)."""
        line = bytearray()
        while not line.endswith(b"\n"):
            b = os.read(self._fd(), 1)
            if not b:
                self._stdin_closed = True
                break
            line += b
        return bytes(line)

    def _read_stdin(self) -> bytes:
        """What stdin has within ``_fill_timeout`` seconds; b"" if nothing (or closed)."""
        if self._stdin_closed:
            return b""
        fd = self._fd()
        ready, _, _ = select.select([fd], [], [], max(self._fill_timeout, 0.0))
        if not ready:
            return b""
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            self._stdin_closed = True
        return chunk

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at the (current) end of the input."""
        chunk = self._read_stdin() if self.path == "-" else self._fh.read(_CHUNK)
        if not chunk:
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _next_line(self) -> tuple[int, bytes] | None:
        """``(start offset, line)`` of the next complete line, or None if there is none yet.

        A line longer than ``max_event_bytes`` is cut to ``max_event_bytes + 1`` bytes (so the
        decoder rejects it as too large) and the rest of it is skipped without buffering it.
        """
        limit = self.max_event_bytes + 1
        while True:
            nl = self._buf.find(b"\n", self._pos)
            if nl >= 0:
                start = self._offset
                line = self._buf[self._pos : nl]
                self._offset += nl + 1 - self._pos
                self._pos = nl + 1
                if self._skipping:  # the tail of an over-long line
                    self._skipping = False
                    continue
                return start, line[:limit] if len(line) > limit else line
            pending = len(self._buf) - self._pos
            if pending > limit and not self._skipping:  # over-long: emit a prefix, skip on
                start = self._offset
                line = self._buf[self._pos : self._pos + limit]
                self._offset += pending
                self._buf, self._pos = b"", 0
                self._skipping = True
                return start, line
            if self._skipping and pending:
                self._offset += pending
                self._buf, self._pos = b"", 0
            if self._fill():
                continue
            at_end = self._stdin_closed if self.path == "-" else not self.follow
            if pending and at_end and not self._skipping:  # last line, no newline
                start = self._offset
                line = self._buf[self._pos :]
                self._offset += len(line)
                self._buf, self._pos = b"", 0
                return start, line
            return None

    def _bulk(self, need: int, out: EventBatch) -> int:
        """Split complete buffered lines in one go (the common, fast case) into ``out``.

        Returns how many events were added. Lines before an over-long one are taken; the
        over-long one is left to the careful path. CRs are stripped and blank lines skipped
        (in Python, only when the buffer has any). Every step is linear in the buffer.
        """
        if self._skipping:
            return 0
        # look only as far as ``need`` lines of the recent length reach, not the whole buffer
        reach = self._pos + need * (self._line_bytes + 1) + (need >> 3) * self._line_bytes + 4096
        end = self._buf.rfind(b"\n", self._pos, reach)
        if end < 0:
            end = self._buf.rfind(b"\n", self._pos)
            if end < 0:
                return 0
        segment = self._buf[self._pos : end]
        lines = segment.split(b"\n", need)
        if len(lines) > need:
            lines.pop()  # the unsplit rest
        lens = list(map(len, lines))
        if max(lens) > self.max_event_bytes:
            first_long = next(i for i, n in enumerate(lens) if n > self.max_event_bytes)
            lines, lens = lines[:first_long], lens[:first_long]
            if not lines:
                return 0
        bounds = list(itertools.accumulate(map((1).__add__, lens), initial=self._offset))
        self._pos += bounds[-1] - self._offset
        self._offset = bounds[-1]
        used = bounds[-1] - bounds[0]  # bytes of the lines taken; scan only those
        self._line_bytes = min(used // len(lines), self.max_event_bytes)
        if min(lens) == 0 or segment.find(b"\r", 0, used) >= 0 or not _BLANK.isdisjoint(
                bytes(map(_first_byte, lines))):  # rare: careful but linear
            n = 0
            for ln, b, e in zip(lines, bounds, bounds[1:], strict=False):
                ln = ln[:-1] if ln.endswith(b"\r") else ln
                if ln and not ln.isspace():
                    out.payloads.append(ln)
                    out.offsets.append(b)
                    out.next_offsets.append(e)
                    n += 1
            return n or -1  # -1: lines consumed, none kept (all blank)
        out.payloads.extend(lines)
        out.offsets.extend(bounds[:-1])
        out.next_offsets.extend(bounds[1:])
        return len(lines)

    def poll(self, max_events: int, timeout: float) -> EventBatch:
        """Up to ``max_events`` lines; blank lines are skipped (but counted in the offset)."""
        if self._closed:
            raise SourceError("poll() on a closed source; open a new one")
        out = EventBatch([], [], [], 0, self.path)
        deadline = time.monotonic() + timeout
        while len(out) < max_events:
            if self._bulk(max_events - len(out), out):
                self._eof = False
                continue
            # stdin waits in select (only while nothing is in hand), files never block
            self._fill_timeout = 0.0 if len(out) else deadline - time.monotonic()
            nxt = self._next_line()
            if nxt is None:
                self._eof = True
                if not self.follow or len(out) or time.monotonic() >= deadline:
                    break
                time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
                continue
            self._eof = False
            start, line = nxt
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line or line.isspace():
                continue
            out.payloads.append(line)
            out.offsets.append(start)
            out.next_offsets.append(self._offset)
        return out

    def seek(self, positions: Mapping[int, int]) -> None:
        """Resume at the byte offset stored for partition 0."""
        offset = positions.get(0)
        if offset is None or offset == self._offset:
            return
        if self.path == "-" or not self._fh.seekable():
            raise SourceError(f"cannot resume stdin at offset {offset}; stdin is not seekable "
                              "(use a file source to resume, or start with an empty state dir)")
        size = os.fstat(self._fh.fileno()).st_size
        if offset > size:
            raise SourceError(f"checkpoint offset {offset} is past the end of {self.path!r} "
                              f"({size} bytes): the file was truncated or replaced; move the "
                              "state directory away to start over")
        self._fh.seek(offset)
        self._offset = offset
        self._buf, self._pos, self._skipping = b"", 0, False
        self._eof = False

    def commit(self, positions: Mapping[int, int]) -> None:
        """Nothing to do: a file's position lives in the checkpoint."""

    def lag(self) -> dict[int, int]:
        """Bytes not yet read (files only)."""
        if self.path == "-":
            return {}
        try:
            return {0: max(0, os.fstat(self._fh.fileno()).st_size - self._offset)}
        except (OSError, ValueError):
            return {}

    def positions(self) -> dict[int, int]:
        """``{0: next byte offset}``."""
        return {0: self._offset}

    def assignment(self) -> Sequence[int]:
        """The single partition 0."""
        return [0]

    def close(self) -> None:
        """Close the file (never stdin); safe to call twice."""
        if not self._closed:
            self._closed = True
            if self.path != "-":
                self._fh.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
