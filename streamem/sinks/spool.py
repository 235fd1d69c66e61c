"""A durable on-disk FIFO of deliveries that could not be made yet (pure: stdlib only).

Layout of a spool directory::

    seg-000000000001.jsonl   append-only segments, one JSON line per delivery
    seg-000000000002.jsonl
    ack.json                 {"segment": 2, "offset": 1234}: everything before is delivered
    rejected.jsonl           the sink's dead letters: deliveries that can never be made,
                             each with its reason, for an operator

Deliveries hold raw payloads, so the directory is created 0700 and every file in it 0600,
whatever the umask (an existing directory is narrowed to 0700, and its files to 0600, when
it is opened).

One spool belongs to one sink instance at a time: an exclusive ``flock`` on ``lock`` makes a
second user (a duplicate sink name, a second daemon on the same state directory) fail fast.

Crash safety: :meth:`Spool.append` returns only after the lines are fsync'd; the
acknowledged position is replaced atomically (temp file, fsync, rename) and only after the
peer accepted the delivery. A crash can therefore repeat a delivery (at-least-once; each
carries its id so receivers can de-duplicate) but never lose one. A line cut by a crash
during an append (never acknowledged to the caller) is truncated when the spool reopens.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamem.errors import SinkError
from streamem.sinks.files import open_private, private_dir

__all__ = ["Delivery", "Spool", "SpooledDelivery"]

logger = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^seg-(\d{12})\.jsonl$")


@dataclass(frozen=True)
class Delivery:
    """One message for a network peer: the exact body and the id receivers de-duplicate on.

    Parameters
    ----------
    id
        Delivery id (the anomaly id, or ``incident-id/status``).
    kind
        ``"anomaly"`` or ``"incident"`` (or a sink-specific kind such as ``"refresh"``).
    key
        Entity key, if any.
    body
        The exact request body (signatures are computed over these bytes).

    Examples
    --------
    >>> Delivery("f:0:1", "anomaly", "k", b"{}").id
    'f:0:1'
    """

    id: str
    kind: str
    key: str | None
    body: bytes


@dataclass(frozen=True)
class SpooledDelivery:
    """A delivery read from the spool, with the position just after it (for :meth:`Spool.ack`).

    Examples
    --------
    >>> SpooledDelivery(Delivery("a", "anomaly", None, b"{}"), 1, 40).end_offset
    40
    """

    delivery: Delivery
    segment: int
    end_offset: int


def _encode(delivery: Delivery) -> bytes:
    document: dict[str, Any] = {"id": delivery.id, "kind": delivery.kind, "key": delivery.key}
    try:
        document["body"] = delivery.body.decode("utf-8")
    except UnicodeDecodeError:
        document["body_b64"] = base64.b64encode(delivery.body).decode("ascii")
    return (json.dumps(document, separators=(",", ":")) + "\n").encode("utf-8")


def _decode(line: bytes) -> Delivery:
    document = json.loads(line)
    if "body_b64" in document:
        body = base64.b64decode(document["body_b64"])
    else:
        body = str(document["body"]).encode("utf-8")
    key = document.get("key")
    return Delivery(str(document["id"]), str(document["kind"]),
                    None if key is None else str(key), body)


class Spool:
    """Durable FIFO of :class:`Delivery` items in append-only segment files.

    Thread-safe: one thread may append while another peeks and acknowledges.

    Parameters
    ----------
    directory
        The spool directory (created if missing); one per sink.
    segment_bytes
        A new segment starts when the current one reaches this size.

    Raises
    ------
    SinkError
        If the directory cannot be created or read.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with Spool(d) as spool:
    ...     spool.append([Delivery("a", "anomaly", "k", b'{"n":1}'),
    ...                   Delivery("b", "anomaly", "k", b'{"n":2}')])
    ...     head = spool.peek(1)[0]
    ...     spool.ack(head)
    ...     head.delivery.id, spool.size()
    ('a', 1)
    >>> with Spool(d) as reopened:          # survives a restart
    ...     [s.delivery.id for s in reopened.peek(10)]
    ['b']
    """

    def __init__(self, directory: str | os.PathLike[str], *,
                 segment_bytes: int = 8 << 20) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._closed = False
        try:
            private_dir(self.directory)
            self._lock_file = open_private(self.directory / "lock", "a+b")
        except OSError as exc:
            raise SinkError(f"cannot open spool directory {str(self.directory)!r}: {exc}; "
                            "make the state directory writable") from exc
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_file.close()
            raise SinkError(f"spool {str(self.directory)!r} is in use by another sink or "
                            "process; give every sink a unique name and every daemon its own "
                            "state directory") from exc
        try:
            self._recover()
        except OSError as exc:
            self._lock_file.close()
            raise SinkError(f"cannot open spool directory {str(self.directory)!r}: {exc}; "
                            "make the state directory writable") from exc

    # -- recovery -------------------------------------------------------------------------

    def _segment_path(self, index: int) -> Path:
        return self.directory / f"seg-{index:012d}.jsonl"

    def _segments(self) -> list[int]:
        found = (_SEGMENT.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _recover(self) -> None:
        for entry in self.directory.iterdir():  # written under an older umask: narrow them
            if entry.is_file() and not entry.is_symlink():
                os.chmod(entry, 0o600)
        segments = self._segments() or [1]
        ack_segment, ack_offset = segments[0], 0
        ack_path = self.directory / "ack.json"
        if ack_path.exists():
            try:
                saved = json.loads(ack_path.read_text(encoding="utf-8"))
                ack_segment, ack_offset = int(saved["segment"]), int(saved["offset"])
            except (ValueError, KeyError, TypeError) as exc:
                logger.error("spool %s: unreadable ack.json (%s); redelivering from the "
                             "oldest segment", self.directory, exc)
        later = [s for s in segments if s >= ack_segment]
        if not later:
            ack_segment, ack_offset = segments[-1] + 1, 0
            segments.append(ack_segment)
        elif later[0] != ack_segment:
            ack_segment, ack_offset = later[0], 0
        for index in segments:
            if index < ack_segment:
                self._segment_path(index).unlink(missing_ok=True)
        self._segments_live = [s for s in segments if s >= ack_segment]
        self._ack = (ack_segment, ack_offset)
        active = self._segments_live[-1]
        path = self._segment_path(active)
        data = path.read_bytes() if path.exists() else b""
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            logger.warning("spool %s: dropping %d bytes of a line cut by a crash in %s",
                           self.directory, len(data) - keep, path.name)
            with open(path, "r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())
        self._size = 0
        for index in self._segments_live:
            seg = self._segment_path(index)
            if seg.exists():
                content = seg.read_bytes()
                start = ack_offset if index == ack_segment else 0
                self._size += content.count(b"\n", start)
        self._active = active
        self._writer = open_private(path, "ab", buffering=0)  # closed in close()
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- operations -----------------------------------------------------------------------

    def size(self) -> int:
        """Number of deliveries waiting (for the ``streamem_sink_spool_size`` gauge)."""
        return self._size

    def append(self, deliveries: list[Delivery]) -> None:
        """Append deliveries durably (one write and one fsync for the whole list).

        Parameters
        ----------
        deliveries
            In delivery order.

        Raises
        ------
        SinkError
            If the disk write fails (the caller must keep them in memory or count them lost).
            Nothing of a failed append stays in the segment (a short write is cut off), so
            a retry of the same list appends it once.
        """
        if not deliveries:
            return
        data = memoryview(b"".join(_encode(d) for d in deliveries))
        with self._lock:
            self._check_open()
            try:
                if self._writer.tell() >= self.segment_bytes:
                    self._roll()
            except OSError as exc:
                raise SinkError(f"cannot write spool {str(self.directory)!r}: {exc}; free "
                                "disk space or fix permissions") from exc
            start = os.fstat(self._writer.fileno()).st_size
            try:
                while data:
                    written = self._writer.write(data)
                    if not written:
                        raise OSError(f"no progress writing {self._segment_path(self._active)}")
                    data = data[written:]
                os.fsync(self._writer.fileno())
            except OSError as exc:
                try:
                    os.ftruncate(self._writer.fileno(), start)
                except OSError as cut:
                    logger.error("spool %s: cannot cut a failed append (%s); a restart "
                                 "drops the cut line", self.directory, cut)
                raise SinkError(f"cannot write spool {str(self.directory)!r}: {exc}; free "
                                "disk space or fix permissions") from exc
            self._size += len(deliveries)

    def _roll(self) -> None:
        self._writer.close()
        self._active += 1
        self._segments_live.append(self._active)
        self._writer = open_private(self._segment_path(self._active), "ab", buffering=0)
        self._fsync_dir()

    def peek(self, limit: int = 1) -> list[SpooledDelivery]:
        """The oldest waiting deliveries, without removing them.

        Parameters
        ----------
        limit
            At most this many.

        Returns
        -------
        list of SpooledDelivery
            Oldest first; unreadable lines are moved to ``rejected.jsonl`` and skipped.
        """
        out: list[SpooledDelivery] = []
        with self._lock:
            self._check_open()
            segment, offset = self._ack
            for index in [s for s in self._segments_live if s >= segment]:
                path = self._segment_path(index)
                if not path.exists():
                    continue
                with open(path, "rb") as handle:
                    handle.seek(offset if index == segment else 0)
                    while len(out) < limit:
                        line = handle.readline()
                        if not line.endswith(b"\n"):
                            break
                        try:
                            out.append(SpooledDelivery(_decode(line), index, handle.tell()))
                        except (ValueError, KeyError, TypeError) as exc:
                            if out:  # handled once it is the head, so sizes stay exact
                                return out
                            logger.error("spool %s: unreadable entry in %s (%s); moved to "
                                         "rejected.jsonl", self.directory, path.name, exc)
                            try:
                                self._append_rejected({
                                    "reason": "unreadable spool entry",
                                    "line": line.decode("utf-8", "replace")})
                            except SinkError as failure:
                                logger.error("%s", failure)
                            self._advance(index, handle.tell())
                if len(out) >= limit:
                    break
        return out

    def ack(self, item: SpooledDelivery, count: int = 1) -> None:
        """Remove the oldest deliveries, through ``item``, after the peer took them.

        One fsync however many are acknowledged: a caller that delivers a run of entries
        acknowledges the run once (a crash in between repeats them, never loses them).

        Parameters
        ----------
        item
            The last of the acknowledged entries, as returned by :meth:`peek`.
        count
            How many entries that is (``item`` is the ``count``-th from the head).
        """
        with self._lock:
            self._check_open()
            if (item.segment, item.end_offset) <= self._ack:
                return
            self._advance(item.segment, item.end_offset, count)

    def _advance(self, segment: int, offset: int, count: int = 1) -> None:
        self._ack = (segment, offset)
        self._size = max(0, self._size - count)
        try:
            if self._size == 0 and self._writer.tell() > 0:
                self._roll()
                self._ack = (self._active, 0)
            self._write_ack()
            for index in [s for s in self._segments_live if s < self._ack[0]]:
                self._segment_path(index).unlink(missing_ok=True)
                self._segments_live.remove(index)
        except OSError as exc:
            raise SinkError(f"cannot update spool {str(self.directory)!r}: {exc}; free disk "
                            "space or fix permissions") from exc

    def _write_ack(self) -> None:
        tmp = self.directory / "ack.json.tmp"
        with open_private(tmp, "wb") as handle:
            handle.write(json.dumps({"segment": self._ack[0],
                                     "offset": self._ack[1]}).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "ack.json")

    def reject(self, delivery: Delivery, reason: str) -> None:
        """Record a delivery the peer refused for good in ``rejected.jsonl`` (fsync'd).

        Parameters
        ----------
        delivery
            The refused delivery.
        reason
            Why (status code and the start of the answer).

        Raises
        ------
        SinkError
            If the file cannot be written (the caller keeps the delivery).
        """
        with self._lock:
            self._check_open()
            self._append_rejected({"id": delivery.id, "kind": delivery.kind,
                                   "key": delivery.key, "reason": reason,
                                   "body": delivery.body.decode("utf-8", "replace")})

    def _append_rejected(self, document: dict[str, Any]) -> None:
        document["at"] = time.time()
        try:
            with open_private(self.directory / "rejected.jsonl", "ab") as handle:
                handle.write((json.dumps(document, separators=(",", ":")) + "\n").encode())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SinkError(f"spool {str(self.directory)!r}: cannot record a dead letter in "
                            f"rejected.jsonl: {exc}; free disk space or fix permissions") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise SinkError(f"spool {str(self.directory)!r} is closed")

    def close(self) -> None:
        """Close the active segment; safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()
                self._lock_file.close()  # releases the flock

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Spool(directory={str(self.directory)!r}, size={self._size})"
