"""The fast record path: kafka-python's fetcher decoding with :mod:`.records`.

:func:`install_fast_records` swaps the per-fetch record holder of a ``KafkaConsumer``'s fetcher
for :class:`_FastRecords`, which decodes whole record batches into columns with the pure decoder
of :mod:`streamem.sources.kafka.records` instead of building one ``ConsumerRecord`` per record.
It does so only for the kafka-python versions whose fetcher internals it was checked against
(:func:`fast_path_supported`); otherwise the source keeps kafka-python's own decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamem.kafka.client import (
    VERSION,
    CorruptRecordError,
    Fetcher,
    IsolationLevel,
    KafkaConsumer,
    TopicPartition,
    UnsupportedCodecError,
    calc_crc32c,
    codecs,
)
from streamem.sources.kafka.records import (
    BatchHeader,
    RecordColumns,
    RecordDecodeError,
    decode_records,
    iter_batches,
)

__all__ = ["fast_path_supported", "install_fast_records"]

_FAST_PATH_VERSIONS = ("3.0.",)
"""kafka-python versions whose fetcher internals the fast record path was checked against
(``Fetcher.PartitionRecords``: its constructor, ``take``, ``drain``, ``_unpack_records`` and
the position bookkeeping of ``Fetcher._append``). Other versions use the public path."""

_ABORT_MARKER = b"\x00\x00\x00\x00"  # control record key: version 0, type 0 (abort)


def fast_path_supported(version: str | None = None) -> bool:
    """True when the installed kafka-python (or ``version``) can use the fast record path.

    Examples
    --------
    >>> fast_path_supported("3.0.12"), fast_path_supported("2.0.2")
    (True, False)
    """
    version = VERSION if version is None else version
    if not version.startswith(_FAST_PATH_VERSIONS):
        return False
    cls = getattr(Fetcher, "PartitionRecords", None)
    return cls is not None and all(
        callable(getattr(cls, name, None))
        for name in ("_unpack_records", "take", "drain", "_maybe_raise_next_inline_exception",
                     "_consume_aborted_transactions_up_to"))


def _decompress(codec: int, data: bytes) -> bytes:
    """kafka-python's codecs, as its own ``DefaultRecordBatch`` calls them."""
    if codec == 1:
        out = codecs.gzip_decode(data)
    elif codec == 2 and codecs.has_snappy():
        out = codecs.snappy_decode(data)
    elif codec == 3 and codecs.has_lz4():
        out = codecs.lz4_decode(data)
    elif codec == 4 and codecs.has_zstd():
        out = codecs.zstd_decode(data)
    else:
        raise UnsupportedCodecError(f"no library for compression codec {codec} is installed "
                                    "(kafka-python needs python-snappy, lz4 or zstandard)")
    return bytes(out)


class _Budget:
    """How many records the next ``take`` may return (set by :meth:`KafkaSource.poll`)."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records = 1


class _FastRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's per-fetch record holder, decoding with :mod:`.records`.

    The consumer keeps doing everything else (group membership, fetch requests, positions,
    seeks, commits). The differences: the record iterator yields one
    :class:`~streamem.sources.kafka.records.RecordColumns` per record batch instead of one
    ``ConsumerRecord`` per record, and :meth:`take` returns a single ``RecordColumns`` of at
    most ``budget.records`` records, splitting a batch when needed. ``next_fetch_offset``
    (which ``Fetcher._append`` copies to the consumer's position) is the offset after the
    last record returned, moved past control, aborted and compacted-away batches exactly
    as kafka-python does, so positions are the same as on the public path.
    """

    next_fetch_offset: int

    def __init__(self, budget: _Budget, *args: Any, **kwargs: Any) -> None:
        self._budget = budget
        self._pending = RecordColumns()
        self._cursor = 0
        super().__init__(*args, **kwargs)

    def _maybe_skip_record(self, record: Any) -> bool:
        return False  # decode_records drops offsets below the fetch offset itself

    def _unpack_records(self, tp: TopicPartition, records: Any, key_deserializer: None,
                        value_deserializer: None) -> Iterator[RecordColumns]:
        # streamem never configures deserializers (raw bytes only), so both are always None
        raw = getattr(records, "_buffer", None)
        buf = b"" if raw is None else bytes(raw)  # no copy when it already is bytes
        try:
            headers = list(iter_batches(buf))
        except RecordDecodeError as exc:
            raise CorruptRecordError(f"partition {tp}: {exc}") from exc
        if raw is None or any(h.magic != 2 for h in headers):
            yield from self._public(tp, records)
            return
        read_committed = self.isolation_level == IsolationLevel.READ_COMMITTED
        checksum = calc_crc32c if self.check_crcs else None
        last: BatchHeader | None = None
        for h in headers:
            last = h
            self.leader_epoch = h.leader_epoch
            if read_committed and h.has_producer_id:
                self._consume_aborted_transactions_up_to(h.base_offset + h.last_offset_delta)
                if h.is_control:
                    if self._is_abort_marker(buf, h, checksum, tp):
                        self.aborted_producer_ids.discard(h.producer_id)
                elif h.is_transactional and h.producer_id in self.aborted_producer_ids:
                    self.next_fetch_offset = max(self.next_fetch_offset, h.next_offset)
                    continue
            if h.is_control:
                self.next_fetch_offset = max(self.next_fetch_offset, h.next_offset)
                continue
            cols = RecordColumns()
            try:
                n = decode_records(buf, h, cols, skip_below=self.fetch_offset,
                                   checksum=checksum, decompress=_decompress)
            except RecordDecodeError as exc:
                raise CorruptRecordError(f"partition {tp}: {exc}") from exc
            self.records_read += n
            self.bytes_read += h.end - h.start
            if n:
                yield cols
        # a batch's last offset survives compaction: resume after it (as kafka-python does)
        if last is not None:
            self.next_fetch_offset = max(self.next_fetch_offset, last.next_offset)
        self.drain()

    def _is_abort_marker(self, buf: bytes, h: BatchHeader, checksum: Any,
                         tp: TopicPartition) -> bool:
        cols = RecordColumns()
        try:
            decode_records(buf, h, cols, checksum=checksum, decompress=_decompress)
        except RecordDecodeError as exc:
            raise CorruptRecordError(f"partition {tp}: {exc}") from exc
        return bool(cols.keys) and (cols.keys[0] or b"")[:4] == _ABORT_MARKER

    def _public(self, tp: TopicPartition, records: Any) -> Iterator[RecordColumns]:
        """kafka-python's own decoding, for legacy message formats (magic 0 and 1): one
        record at a time, since kafka-python yields them lazily."""
        for rec in super()._unpack_records(tp, records, None, None):
            cols = RecordColumns.of((rec,), self.fetch_offset)
            if cols:
                yield cols

    def take(self, n: int | None = None) -> list[RecordColumns]:
        """Up to ``budget.records`` records as one ``RecordColumns`` (``[]`` when drained)."""
        self._maybe_raise_next_inline_exception()
        it = self.record_iterator
        limit = max(1, self._budget.records)
        out = RecordColumns()
        try:
            while len(out) < limit:
                pending, cursor = self._pending, self._cursor
                if cursor >= len(pending):
                    nxt = None if it is None else next(it, None)
                    if nxt is None:
                        break
                    self._pending, self._cursor = nxt, 0
                    continue
                stop = min(len(pending), cursor + limit - len(out))
                if not out and cursor == 0 and stop == len(pending):
                    out = pending  # the whole batch: no copy
                    self._pending = RecordColumns()
                    stop = 0
                else:
                    out.offsets.extend(pending.offsets[cursor:stop])
                    out.timestamps.extend(pending.timestamps[cursor:stop])
                    out.keys.extend(pending.keys[cursor:stop])
                    out.values.extend(pending.values[cursor:stop])
                self._cursor = stop
                self.next_fetch_offset = out.offsets[-1] + 1
        except Exception as exc:
            if not out:
                raise
            self._next_inline_exception = exc  # raised by the next take, as kafka-python does
        return [out] if out else []


def install_fast_records(consumer: KafkaConsumer) -> _Budget | None:
    """Make ``consumer`` decode fetched records with :class:`_FastRecords`.

    After this, ``consumer.poll(max_records=1)`` returns ``{tp: [RecordColumns]}`` with at
    most ``budget.records`` records (set it before each poll). Returns None, and changes
    nothing, when this kafka-python is not one the fast path was checked against.

    Examples
    --------
    Anything without a kafka-python fetcher inside is left alone:

    >>> install_fast_records(object()) is None
    True
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not fast_path_supported():
        return None
    budget = _Budget()

    def records(*args: Any, **kwargs: Any) -> _FastRecords:
        return _FastRecords(budget, *args, **kwargs)

    fetcher.PartitionRecords = records  # the fetcher builds them as self.PartitionRecords
    return budget
