"""The v2 record-batch decoder and the source's fast record path, checked against
kafka-python's own decoding on batches built by kafka-python's ``DefaultRecordBatchBuilder``.

No broker: the batches are bytes. What is compared:

- :func:`decode_records` against ``DefaultRecordBatch`` iteration (offsets, timestamps,
  keys, values) for random records, codecs, timestamp types and headers;
- ``_FastRecords`` (what the Kafka source plugs into kafka-python's fetcher) against
  kafka-python's ``Fetcher.PartitionRecords`` on the same fetched bytes: same records in the
  same order, and positions (``next_fetch_offset``) that never skip a record and end where
  kafka-python's end — with compacted gaps, control batches, aborted transactions
  (``read_committed``), fetches that start inside a batch and random take sizes.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka.codec import has_lz4, has_zstd
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c

from streamem.sources.kafka.fetch import _Budget, _FastRecords, fast_path_supported
from streamem.sources.kafka.records import (
    RecordColumns,
    RecordDecodeError,
    decode_records,
    iter_batches,
)

TP = TopicPartition("t", 0)
CODECS = [0, 1] + ([3] if has_lz4() else []) + ([4] if has_zstd() else [])
Aborted = namedtuple("Aborted", "producer_id first_offset")
_HEADER = struct.Struct(">qiibIhiqqqhii")

keys = st.one_of(st.none(), st.binary(max_size=20))
values = st.one_of(st.none(), st.binary(max_size=300))
headers = st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=8))),
                   max_size=2)
record = st.tuples(st.integers(0, 3), st.integers(-(2**40), 2**40), keys, values, headers)


def build(records: list[tuple[int, int, Any, Any, Any]], *, base_offset: int = 0,
          codec: int = 0, log_append_time: bool = False, control: bool = False,
          producer_id: int = -1, transactional: bool = False, extra_tail: int = 0,
          leader_epoch: int = 0) -> bytes:
    """One batch: ``records`` are (offset gap, timestamp delta, key, value, headers); gaps
    make compacted-away offsets, ``extra_tail`` compacted offsets after the last record."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=transactional,
                                  producer_id=producer_id, producer_epoch=0 if producer_id >= 0
                                  else -1, base_sequence=0 if producer_id >= 0 else -1,
                                  batch_size=1 << 30)
    delta = -1
    for gap, ts, key, value, hdrs in records:
        delta += 1 + gap
        b.append(delta, timestamp=1_700_000_000_000 + ts, key=key, value=value, headers=hdrs)
    buf = bytearray(b.build())
    fields = list(_HEADER.unpack_from(buf))
    fields[0] = base_offset
    fields[2] = leader_epoch
    fields[5] |= (0x08 if log_append_time else 0) | (0x20 if control else 0)
    fields[6] = max(delta, 0) + extra_tail
    if log_append_time:
        fields[8] = 1_800_000_000_000
    _HEADER.pack_into(buf, 0, *fields)
    struct.pack_into(">I", buf, 17, calc_crc32c(bytes(buf[21:])))
    return bytes(buf)


def kafka_decode(buf: bytes) -> list[tuple[int, int, bytes | None, bytes | None]]:
    out = []
    mr = MemoryRecords(buf)
    while (batch := mr.next_batch()) is not None:
        assert isinstance(batch, DefaultRecordBatch) and batch.validate_crc()
        out.extend((r.offset, r.timestamp, r.key, r.value) for r in batch)
    return out


def ours(buf: bytes, skip_below: int = 0) -> list[tuple[int, int, bytes | None, bytes | None]]:
    cols = RecordColumns()
    for h in iter_batches(buf):
        decode_records(buf, h, cols, skip_below=skip_below, checksum=calc_crc32c,
                       decompress=_decompress)
    return list(zip(cols.offsets, cols.timestamps, cols.keys, cols.values, strict=True))


def _decompress(codec: int, data: bytes) -> bytes:
    from streamem.sources.kafka.fetch import _decompress as real

    return real(codec, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.tuples(st.lists(record, min_size=1, max_size=30),
                                  st.sampled_from(CODECS), st.booleans(), st.integers(0, 5)),
                        min_size=1, max_size=4))
def test_decoder_matches_kafka_python(batches: list[Any]) -> None:
    buf, base = b"", 0
    for recs, codec, append_time, tail in batches:
        one = build(recs, base_offset=base, codec=codec, log_append_time=append_time,
                    extra_tail=tail)
        buf += one
        base = next(iter_batches(one)).next_offset + 3  # a gap between batches too
    assert ours(buf) == kafka_decode(buf)


def test_decoder_skips_offsets_below_the_fetch_offset_and_keeps_big_varints() -> None:
    recs = [(0, 0, b"k", b"v" * 5000, [("h", b"x" * 300)]), (200, -(2**35), None, None, []),
            (0, 2**33, b"", b"", [("", None)])]
    buf = build(recs, base_offset=2**40)
    assert ours(buf) == kafka_decode(buf)
    assert [o for o, *_ in ours(buf, skip_below=2**40 + 1)] == [2**40 + 201, 2**40 + 202]


def test_decoder_rejects_corruption_and_truncation() -> None:
    buf = build([(0, 0, b"k", b"value", [])] * 3)
    bad = bytearray(buf)
    bad[-3] ^= 0xFF
    with pytest.raises(RecordDecodeError, match="CRC"):
        ours(bytes(bad))
    assert list(iter_batches(buf[:-1])) == []  # a partial trailing batch is not a batch
    head = next(iter_batches(buf))
    # a length that overruns the batch (checksum not checked: the structure is)
    bad = bytearray(buf)
    bad[61] = 0x7E
    with pytest.raises(RecordDecodeError):
        decode_records(bytes(bad), head, RecordColumns())
    with pytest.raises(RecordDecodeError, match="compressed"):
        gz = build([(0, 0, None, b"x" * 100, [])], codec=1)
        decode_records(gz, next(iter_batches(gz)), RecordColumns())


def test_legacy_message_sets_are_reported_not_decoded() -> None:
    legacy = struct.pack(">qiIbbqi", 5, 22, 0, 1, 0, 0, -1) + struct.pack(">i", -1)
    (h,) = list(iter_batches(legacy))
    assert h.magic == 1 and (h.start, h.end) == (0, len(legacy))


# -- _FastRecords vs Fetcher.PartitionRecords ----------------------------------------------


def partition_records(cls: Any, fetch_offset: int, buf: bytes, committed: bool,
                      aborted: list[Aborted], budget: _Budget | None = None) -> Any:
    kw: dict[str, Any] = {
        "check_crcs": True, "aborted_transactions": list(aborted),
        "isolation_level": IsolationLevel.READ_COMMITTED if committed
        else IsolationLevel.READ_UNCOMMITTED}
    if budget is None:
        return cls(fetch_offset, TP, MemoryRecords(buf), **kw)
    return cls(budget, fetch_offset, TP, MemoryRecords(buf), **kw)


def control(base: int, pid: int, abort: bool) -> bytes:
    key = struct.pack(">hh", 0, 0 if abort else 1)
    return build([(0, 0, key, struct.pack(">hi", 0, 0), [])], base_offset=base, control=True,
                 producer_id=pid, transactional=True)


@st.composite
def fetches(draw: Any) -> tuple[bytes, list[Aborted], int]:
    """A fetch response's bytes: plain, compacted and transactional batches with markers."""
    buf, base, aborted = b"", draw(st.integers(0, 50)), []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["plain", "plain", "txn-commit", "txn-abort", "empty-tail"]))
        recs = draw(st.lists(record, min_size=1, max_size=12))
        codec = draw(st.sampled_from(CODECS))
        pid = draw(st.integers(1, 3))
        if kind == "plain":
            one = build(recs, base_offset=base, codec=codec, extra_tail=draw(st.integers(0, 3)),
                        leader_epoch=draw(st.integers(0, 2)))
        elif kind == "empty-tail":  # compaction left only the last record of a long batch
            one = build(recs[:1], base_offset=base, codec=codec, extra_tail=7)
        else:
            one = build(recs, base_offset=base, codec=codec, producer_id=pid, transactional=True)
            if kind == "txn-abort":
                aborted.append(Aborted(pid, base))
            end = next(iter_batches(one)).next_offset
            one += control(end, pid, abort=kind == "txn-abort")
        buf += one
        base = list(iter_batches(buf))[-1].next_offset + draw(st.integers(0, 2))
    first = next(iter_batches(buf)).base_offset
    last = list(iter_batches(buf))[-1].next_offset
    return buf, aborted, draw(st.integers(first, last))


def drain(part: Any, take: Any) -> tuple[list[tuple[Any, ...]], list[tuple[int, int]]]:
    """Take until empty; every record, and (position, last record offset) after each take."""
    got: list[tuple[Any, ...]] = []
    steps: list[tuple[int, int]] = []
    while part:
        chunk = take()
        got.extend(chunk)
        steps.append((part.next_fetch_offset, got[-1][0] if got else -1))
    return got, steps


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fetch=fetches(), committed=st.booleans(), sizes=st.lists(st.integers(1, 9), min_size=1))
def test_fast_records_match_kafka_python(fetch: tuple[bytes, list[Aborted], int],
                                         committed: bool, sizes: list[int]) -> None:
    buf, aborted, fetch_offset = fetch
    ref = partition_records(Fetcher.PartitionRecords, fetch_offset, buf, committed, aborted)
    want, _ = drain(ref, lambda: [(r.offset, r.timestamp, r.key, r.value) for r in ref.take(4)])

    budget = _Budget()
    fast = partition_records(_FastRecords, fetch_offset, buf, committed, aborted, budget)
    turn = iter(sizes * 1000)

    def take() -> list[tuple[Any, ...]]:
        budget.records = next(turn)
        chunks = fast.take(1)
        assert len(chunks) <= 1 and sum(map(len, chunks)) <= budget.records
        return [row for c in chunks for row in zip(c.offsets, c.timestamps, c.keys, c.values,
                                                   strict=True)]

    got, steps = drain(fast, take)
    assert got == want
    assert fast.next_fetch_offset == ref.next_fetch_offset  # where both resume
    offsets = [r[0] for r in got]
    for position, last in steps:  # never before a returned record, never past an unreturned one
        later = [o for o in offsets if o > last]
        assert position > last and (not later or position <= later[0])
    assert fast.leader_epoch == ref.leader_epoch


def test_fast_records_raise_kafka_python_errors_for_corrupt_batches() -> None:
    buf = bytearray(build([(0, 0, b"k", b"v", [])] * 3))
    buf[-2] ^= 0x01
    fast = partition_records(_FastRecords, 0, bytes(buf), False, [], _Budget())
    with pytest.raises(CorruptRecordError):
        fast.take(1)


def test_this_kafka_python_gets_the_fast_path() -> None:
    # a kafka-python upgrade that breaks the hook must be noticed (and re-checked), not
    # silently fall back to the slow path
    assert fast_path_supported()
