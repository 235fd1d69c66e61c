"""A tight decoder for Kafka v2 record batches (message format 2, Kafka 0.11+), bytes only.

kafka-python decodes every record into a ``DefaultRecord`` and then a ``ConsumerRecord``
(an object per record); this module decodes a batch
straight into four columns (offsets, timestamps, keys, values) with no per-record objects
but the key and value bytes. It imports nothing from kafka-python: the Kafka source passes
in the checksum and decompression functions (:mod:`streamem.sources.kafka.fetch` plugs it in).
It is the one decoding route of the source: records that kafka-python decodes itself (legacy
message formats, or a kafka-python the fast path was not checked against) become the same
:class:`RecordColumns` through :meth:`RecordColumns.of`.

Layout (``DefaultRecordBatch`` in the Kafka protocol guide)::

    baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8, crc uint32,
    attributes int16, lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64,
    producerId int64, producerEpoch int16, baseSequence int32, recordsCount int32, records

    record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
            keyLength varint, key, valueLength varint, value, headersCount varint, headers

The CRC-32C covers everything from ``attributes`` to the end of the batch; records are
compressed (attribute bits 0-2) as one block after the 61-byte header.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

__all__ = [
    "HEADER_SIZE",
    "BatchHeader",
    "RecordColumns",
    "RecordDecodeError",
    "decode_records",
    "iter_batches",
]

_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = _HEADER.size
"""Bytes of a v2 batch header (61)."""
_LOG_OVERHEAD = 12  # baseOffset + batchLength: batchLength counts the bytes after these
_CRC_START = 21  # attributes onwards are checksummed
_MAGIC_AT = 16

_CODEC_MASK = 0x07
_LOG_APPEND_TIME = 0x08
_TRANSACTIONAL = 0x10
_CONTROL = 0x20


class RecordDecodeError(ValueError):
    """The bytes are not a valid v2 record batch (corrupt, truncated, or a bad checksum)."""


class BatchHeader(NamedTuple):
    """The 61-byte header of one v2 record batch, and where the batch sits in the buffer.

    Examples
    --------
    >>> h = BatchHeader(10, 49 + 12, -1, 2, 0, 0x20, 0, 0, 0, 7, 0, 0, 1, 0, 61)
    >>> h.next_offset, h.is_control, h.is_transactional, h.compression
    (11, True, False, 0)
    """

    base_offset: int
    length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    start: int
    """Offset of the batch's first byte in the buffer."""
    end: int
    """Offset just past the batch's last byte in the buffer."""

    @property
    def next_offset(self) -> int:
        """The offset after the batch (its last offset survives compaction)."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        """Codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd."""
        return self.attributes & _CODEC_MASK

    @property
    def is_control(self) -> bool:
        """A transaction marker batch (never returned to consumers)."""
        return bool(self.attributes & _CONTROL)

    @property
    def is_transactional(self) -> bool:
        """Written by a transactional producer."""
        return bool(self.attributes & _TRANSACTIONAL)

    @property
    def log_append_time(self) -> bool:
        """Records carry the broker's append time (``maxTimestamp``), not their own."""
        return bool(self.attributes & _LOG_APPEND_TIME)

    @property
    def has_producer_id(self) -> bool:
        """True when a producer id is set (idempotent or transactional producer)."""
        return self.producer_id > -1


class RecordColumns:
    """Decoded records, column-wise: ``offsets[i]``, ``timestamps[i]`` (ms since the epoch;
    ``-1`` when the producer set none), ``keys[i]`` and ``values[i]`` (``None`` for null).

    Examples
    --------
    >>> c = RecordColumns(); c.offsets.append(5); len(c)
    1
    """

    __slots__ = ("keys", "offsets", "timestamps", "values")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.timestamps: list[int] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []

    def __len__(self) -> int:
        return len(self.offsets)

    @classmethod
    def of(cls, records: Iterable[Any], skip_below: int = 0) -> RecordColumns:
        """The records kafka-python decoded itself (its ``ConsumerRecord``), as columns.

        Parameters
        ----------
        records
            Objects with ``offset``, ``timestamp`` (ms, or None), ``key`` and ``value``.
        skip_below
            Records at lower offsets are dropped (a fetch may start inside a batch).

        Examples
        --------
        >>> from types import SimpleNamespace as Rec
        >>> c = RecordColumns.of([Rec(offset=4, timestamp=None, key=None, value=b"a"),
        ...                       Rec(offset=5, timestamp=7, key=b"k", value=None)], 5)
        >>> c.offsets, c.timestamps, c.keys, c.values
        ([5], [7], [b'k'], [None])
        """
        out = cls()
        for rec in records:
            if rec.offset < skip_below:
                continue
            out.offsets.append(rec.offset)
            out.timestamps.append(rec.timestamp if rec.timestamp is not None else -1)
            out.keys.append(rec.key)
            out.values.append(rec.value)
        return out

    def clear(self) -> None:
        """Drop every record."""
        self.offsets.clear()
        self.timestamps.clear()
        self.keys.clear()
        self.values.clear()


def iter_batches(buf: bytes) -> Iterator[BatchHeader]:
    """Yield the header of each complete batch in ``buf`` (a fetch response's record set).

    A trailing partial batch (the broker cuts the response at its size limit) is not yielded,
    as in kafka-python. The magic byte is not checked here: the caller decides what to do
    with anything but 2.

    Parameters
    ----------
    buf
        The raw record set.

    Yields
    ------
    BatchHeader
        One per complete batch, in order.

    Examples
    --------
    >>> list(iter_batches(b""))
    []
    """
    size = len(buf)
    pos = 0
    unpack = _HEADER.unpack_from
    while size - pos >= _LOG_OVERHEAD:
        (length,) = struct.unpack_from(">i", buf, pos + 8)
        if length < 0:
            raise RecordDecodeError(f"record batch at byte {pos} has a negative length")
        end = pos + _LOG_OVERHEAD + length
        if end > size:
            return
        magic = buf[pos + _MAGIC_AT] if length > _MAGIC_AT - _LOG_OVERHEAD else -1
        if magic == 2 and length >= HEADER_SIZE - _LOG_OVERHEAD:
            yield BatchHeader._make((*unpack(buf, pos), pos, end))
        elif magic == 2:
            raise RecordDecodeError(f"record batch at byte {pos} is {length} bytes long, "
                                    "shorter than its header")
        else:  # a legacy (v0/v1) message set entry: only its magic and extent are known
            yield BatchHeader(0, length, -1, magic, 0, 0, 0, 0, 0, -1, -1, -1, 0, pos, end)
        pos = end


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """Unsigned LEB128 at ``pos`` (the caller zigzag-decodes); (value, next position)."""
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise RecordDecodeError("varint longer than 10 bytes")


def decode_records(buf: bytes, header: BatchHeader, out: RecordColumns, *,
                   skip_below: int = 0,
                   checksum: Callable[[bytes], int] | None = None,
                   decompress: Callable[[int, bytes], bytes] | None = None) -> int:
    """Append the records of one v2 batch to ``out``; return how many were appended.

    Parameters
    ----------
    buf
        The buffer the batch was found in (by :func:`iter_batches`).
    header
        The batch; its magic must be 2. Control batches are decoded like any other (the
        caller skips them).
    out
        Columns to append to.
    skip_below
        Records with a smaller offset are decoded but not appended (a fetch from the middle
        of a batch returns the whole batch).
    checksum
        CRC-32C function: when given, the batch's checksum is verified first.
    decompress
        ``decompress(codec, data) -> bytes`` for compressed batches (codec 1-4).

    Returns
    -------
    int
        Records appended.

    Raises
    ------
    RecordDecodeError
        Bad checksum, a compressed batch without ``decompress``, or records that do not
        parse exactly to the batch's end.

    Examples
    --------
    A batch of two records built by hand (offsets 7 and 8, key ``k`` then null):

    >>> def varint(v):
    ...     v = (v << 1) ^ (v >> 63); out = b""
    ...     while v >= 0x80: out += bytes([v & 0x7F | 0x80]); v >>= 7
    ...     return out + bytes([v])
    >>> def record(delta, key, value):
    ...     body = b"\\x00" + varint(delta) + varint(delta)
    ...     body += varint(-1) if key is None else varint(len(key)) + key
    ...     body += varint(len(value)) + value + varint(0)
    ...     return varint(len(body)) + body
    >>> recs = record(0, b"k", b'{"a": 1}') + record(1, None, b'{"a": 2}')
    >>> head = struct.pack(">qiibIhiqqqhii", 7, 49 + len(recs), 0, 2, 0, 0, 1,
    ...                    1_700_000_000_000, 1_700_000_000_001, -1, -1, -1, 2)
    >>> buf = head + recs
    >>> out = RecordColumns()
    >>> [decode_records(buf, h, out) for h in iter_batches(buf)]
    [2]
    >>> out.offsets, out.timestamps[1] - out.timestamps[0], out.keys, out.values[1]
    ([7, 8], 1, [b'k', None], b'{"a": 2}')
    """
    start = header.start
    if checksum is not None and checksum(buf[start + _CRC_START:header.end]) != header.crc:
        raise RecordDecodeError(f"record batch at offset {header.base_offset} failed its "
                                "CRC-32C check")
    pos = start + HEADER_SIZE
    end = header.end
    codec = header.attributes & _CODEC_MASK
    if codec:
        if decompress is None:
            raise RecordDecodeError(f"record batch at offset {header.base_offset} is "
                                    f"compressed (codec {codec}) and no decompressor was given")
        buf = decompress(codec, buf[pos:end])
        pos, end = 0, len(buf)
    base = header.base_offset
    first_ts = header.first_timestamp
    append_time = header.max_timestamp if header.attributes & _LOG_APPEND_TIME else None
    offsets, stamps, keys, values = out.offsets, out.timestamps, out.keys, out.values
    n = 0
    try:
        for _ in range(header.records_count):
            # Deliberate repetition: each record has six varints, and one- and two-byte ones
            # (nearly all) are decoded inline below, the same few lines each time, because a
            # call to _uvarint per field costs more than the decoding itself; longer ones
            # fall back to _uvarint.
            v = buf[pos]
            if v < 0x80:
                pos += 1
            elif buf[pos + 1] < 0x80:
                v = (v & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            else:
                v, pos = _uvarint(buf, pos)
            rec_end = pos + ((v >> 1) ^ -(v & 1))
            if rec_end > end or rec_end <= pos:
                raise RecordDecodeError(f"record at byte {pos} overruns its batch")
            pos += 1  # attributes (int8, unused)
            v = buf[pos]
            if v < 0x80:
                pos += 1
            elif buf[pos + 1] < 0x80:
                v = (v & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            else:
                v, pos = _uvarint(buf, pos)
            ts_delta = (v >> 1) ^ -(v & 1)
            v = buf[pos]
            if v < 0x80:
                pos += 1
            elif buf[pos + 1] < 0x80:
                v = (v & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            else:
                v, pos = _uvarint(buf, pos)
            offset = base + ((v >> 1) ^ -(v & 1))
            v = buf[pos]
            if v < 0x80:
                pos += 1
            elif buf[pos + 1] < 0x80:
                v = (v & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            else:
                v, pos = _uvarint(buf, pos)
            klen = (v >> 1) ^ -(v & 1)
            if klen >= 0:
                key: bytes | None = buf[pos:pos + klen]
                pos += klen
            else:
                key = None
            v = buf[pos]
            if v < 0x80:
                pos += 1
            elif buf[pos + 1] < 0x80:
                v = (v & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            else:
                v, pos = _uvarint(buf, pos)
            vlen = (v >> 1) ^ -(v & 1)
            if vlen >= 0:
                value: bytes | None = buf[pos:pos + vlen]
                pos += vlen
            else:
                value = None
            if buf[pos] != 0 or pos + 1 != rec_end:  # headers (rare): parsed to validate
                pos = _skip_headers(buf, pos)
                if pos != rec_end:
                    raise RecordDecodeError(f"record at offset {offset} does not end where its "
                                            "length says")
            pos = rec_end
            if offset >= skip_below:
                offsets.append(offset)
                stamps.append(first_ts + ts_delta if append_time is None else append_time)
                keys.append(key)
                values.append(value)
                n += 1
    except IndexError:
        raise RecordDecodeError(f"record batch at offset {base} is truncated") from None
    if pos != end:
        raise RecordDecodeError(f"record batch at offset {base} has {end - pos} bytes after "
                                "its last record")
    return n


def _skip_headers(buf: bytes, pos: int) -> int:
    v, pos = _uvarint(buf, pos)
    count = (v >> 1) ^ -(v & 1)
    if count < 0:
        raise RecordDecodeError(f"negative record header count {count}")
    for _ in range(count):
        v, pos = _uvarint(buf, pos)
        klen = (v >> 1) ^ -(v & 1)
        if klen < 0:
            raise RecordDecodeError(f"negative record header key length {klen}")
        pos += klen
        v, pos = _uvarint(buf, pos)
        vlen = (v >> 1) ^ -(v & 1)
        if vlen > 0:
            pos += vlen
    return pos
