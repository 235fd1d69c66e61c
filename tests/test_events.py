"""EventBatch, the one batch type, and the Chunker against naive lists of RawEvent tuples:
joining, slicing, runs, counts and positions give what the plain list operations give."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamem.events import EventBatch, Position, RawEvent
from streamem.runtime.chunking import Chunker


@st.composite
def event_lists(draw: st.DrawFn) -> list[RawEvent]:
    """Events in runs of one partition each (offsets grow per partition), some with keys and
    timestamps."""
    out: list[RawEvent] = []
    nxt: dict[int, int] = {}
    for _ in range(draw(st.integers(0, 6))):
        p = draw(st.integers(0, 3))
        for _ in range(draw(st.integers(1, 8))):
            o = nxt.get(p, 0)
            key = draw(st.one_of(st.none(), st.binary(max_size=3)))
            ts = draw(st.one_of(st.none(), st.integers(0, 10**6).map(lambda ms: ms / 1000)))
            out.append(RawEvent(b"%d:%d" % (p, o), Position(p, o, "t"), key, ts, o + 1))
            nxt[p] = o + 1
    return out


def _naive_counts(evs: list[RawEvent]) -> dict[int, int]:
    out: dict[int, int] = {}
    for e in evs:
        out[e.position.partition] = out.get(e.position.partition, 0) + 1
    return out


def _naive_last(evs: list[RawEvent]) -> dict[int, int]:
    return {e.position.partition: e.next_offset for e in evs}


def _same(batch: EventBatch, evs: list[RawEvent]) -> None:
    assert list(batch) == evs
    assert [batch[i] for i in range(len(batch))] == evs
    assert batch.payloads == [e.payload for e in evs]
    assert batch.counts() == _naive_counts(evs)
    assert batch.last_positions() == _naive_last(evs)
    assert sum(map(len, batch.runs())) == len(evs)
    for run in batch.runs():
        assert len(run.partitions) == 1


@settings(max_examples=200, deadline=None)
@given(event_lists(), st.data())
def test_batches_behave_as_lists_of_events(evs: list[RawEvent], data: st.DataObject) -> None:
    batch = EventBatch.of(evs, topic="t")
    _same(batch, evs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(evs)), max_size=4)))
    bounds = [0, *cuts, len(evs)]
    parts = [batch[a:b] for a, b in itertools.pairwise(bounds)]
    for part, (a, b) in zip(parts, itertools.pairwise(bounds), strict=True):
        _same(part, evs[a:b])
    _same(EventBatch.join(parts), evs)  # slicing then joining gives the batch back


@settings(max_examples=100, deadline=None)
@given(event_lists(), st.lists(st.integers(1, 20), min_size=1, max_size=30),
       st.integers(1, 9))
def test_chunker_hands_out_the_events_in_order_in_chunks_of_exactly_size(
        evs: list[RawEvent], polls: list[int], size: int) -> None:
    ch = Chunker(size=size, max_wait=0.0)
    out: list[EventBatch] = []
    i = 0
    for n in polls:
        ch.add("lane", EventBatch.of(evs[i:i + n]), now=0.0)
        out.extend(ch.full("lane", now=0.0))
        i += n
    ch.add("lane", EventBatch.of(evs[i:]), now=0.0)
    out.extend(ch.full("lane", now=0.0))
    assert all(len(c) == size for c in out)
    rest = ch.rest("lane")
    assert all(len(c) <= size for c in rest) and len(ch.buffered("lane")) == 0
    assert [e for c in out + rest for e in c] == evs


def test_dropping_revoked_partitions_keeps_the_others_in_order() -> None:
    evs = [RawEvent(b"x", Position(p, o, "t"), next_offset=o + 1)
           for o in range(3) for p in (0, 1, 2)]
    ch = Chunker(size=100, max_wait=0.0)
    ch.add("global", EventBatch.of(evs), now=0.0)
    ch.drop("global", [1])
    assert list(ch.buffered("global")) == [e for e in evs if e.position.partition != 1]
    assert ch.counts() == {0: 3, 2: 3}
    ch.drop("global", [0, 2])
    assert ch.due(now=1.0, lag={}) == [] and ch.counts() == {}


def test_a_slice_with_a_step_is_refused() -> None:
    with pytest.raises(ValueError, match="step 1"):
        EventBatch([b"a", b"b"], [0, 1], [1, 2], 0, "t")[::2]
