"""Chunked lanes (the daemon's mode for Kafka sources), without a broker: a lane's state
depends on its own event sequence only, never on how polls cut it, and its positions cover
exactly the events it learned."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from testkit.kafka_daemon import FEATURES, assert_same_state, events

from streamem.config import Config, parse_config
from streamem.events import EventBatch, Position, RawEvent
from streamem.features import FeatureExtractor
from streamem.runtime.build import new_detector
from streamem.runtime.chunking import Chunker
from streamem.runtime.lane import Lane
from streamem.runtime.pipeline import Pipeline

CHUNK = 64


def _cfg(scope: str = "global") -> Config:
    return parse_config({
        "source": {"type": "kafka", "topic": "t", "bootstrap_servers": ["127.0.0.1:9"]},
        "fields": {"features": FEATURES, "key": "sensor", "id": "id"},
        "batch": {"max_events": CHUNK},
        "model": {"n_components": 2, "warmup": 200, "random_state": 0, "scope": scope},
    })


def _raw(n: int, partitions: int) -> list[RawEvent]:
    """``n`` events spread round-robin over ``partitions``, offsets per partition."""
    out, nxt = [], [0] * partitions
    for i, doc in enumerate(events(n, anomalies=(700, 1500))):
        p = i % partitions
        out.append(RawEvent(json.dumps(doc).encode(), Position(p, nxt[p], "t"),
                            next_offset=nxt[p] + 1))
        nxt[p] += 1
    return out


class _Lanes(dict[str, Lane]):
    chunker: Chunker


def _pipeline(cfg: Config, chunked: bool = True) -> tuple[Pipeline, _Lanes]:
    lanes = _Lanes()
    lanes.chunker = Chunker(CHUNK, max_wait=0.5)

    def lane_for(p: int) -> Lane:
        key = "global" if cfg.model.scope == "global" else f"p{p}"
        if key not in lanes:
            lanes[key] = Lane(key, new_detector(cfg))
        return lanes[key]

    ex = FeatureExtractor(cfg.fields.features, key="sensor", id="id")
    return Pipeline(cfg, ex, None, None, None, lane_for,
                    chunker=lanes.chunker if chunked else None), lanes


def _feed(cfg: Config, raw: list[RawEvent], seed: int, chunked: bool = True,
          ) -> _Lanes:
    """Feed ``raw`` in random poll sizes (per partition order kept, partitions interleaved
    in random runs, as a Kafka fetcher does)."""
    rng = random.Random(seed)
    by_part: dict[int, list[RawEvent]] = {}
    for ev in raw:
        by_part.setdefault(ev.position.partition, []).append(ev)
    pipeline, lanes = _pipeline(cfg, chunked)
    while any(by_part.values()):
        p = rng.choice([q for q, evs in by_part.items() if evs])
        k = rng.randint(1, 3 * CHUNK)
        pipeline.process(EventBatch.of(by_part[p][:k]))
        by_part[p] = by_part[p][k:]
    return lanes


def _columns(evs: list[RawEvent]) -> EventBatch:
    pos = evs[0].position
    return EventBatch([e.payload for e in evs], [e.position.offset for e in evs],
                      [e.next_offset for e in evs], pos.partition, pos.topic)


def _state(lane: Lane) -> dict[str, object]:
    s = lane.detector.to_state()
    return json.loads(json.dumps(s, default=lambda x: np.asarray(x).tolist()))  # type: ignore[no-any-return]


def test_partition_lanes_do_not_depend_on_poll_sizes() -> None:
    cfg = _cfg("partition")
    raw = _raw(3000, partitions=3)
    a, b = _feed(cfg, raw, seed=1), _feed(cfg, raw, seed=2)
    assert sorted(a) == ["p0", "p1", "p2"]
    for key in a:
        # learned: whole chunks only; the rest waits in the buffer, not in the positions
        learned = a[key].counters["events_seen"]
        assert learned == 1000 // CHUNK * CHUNK
        assert len(a.chunker.buffered(key)) == 1000 - learned
        assert a[key].positions == {int(key[1:]): learned}
        assert a[key].counters == b[key].counters
        assert_same_state(_state(a[key]), _state(b[key]), key)


def test_unchunked_pipeline_does_depend_on_poll_sizes() -> None:
    # the reason chunking exists: without it the same events give different models
    cfg = _cfg("partition")
    raw = _raw(3000, partitions=3)
    a, b = _feed(cfg, raw, seed=1, chunked=False), _feed(cfg, raw, seed=2, chunked=False)
    differs = False
    for key in a:
        try:
            assert_same_state(_state(a[key]), _state(b[key]), key)
        except AssertionError:
            differs = True
    assert differs


def test_flush_partial_learns_the_rest_and_moves_the_positions() -> None:
    cfg = _cfg("partition")
    raw = _raw(1000, partitions=2)
    pipeline, lanes = _pipeline(cfg)
    pipeline.process(EventBatch.of(raw))
    assert {k: ln.counters["events_seen"] for k, ln in lanes.items()} == {"p0": 448, "p1": 448}
    out = pipeline.flush_partial([lanes["p0"]])
    assert [len(o.events) for o in out] == [52]
    assert len(lanes.chunker.buffered("p0")) == 0 and lanes.chunker.due(1e18, {}) == ["p1"]
    assert lanes["p0"].positions == {0: 500}
    assert lanes["p1"].positions == {1: 448} and len(lanes.chunker.buffered("p1")) == 52


def test_global_lane_positions_cover_only_processed_events_per_partition() -> None:
    cfg = _cfg("global")
    raw = _raw(1000, partitions=2)
    lanes = _feed(cfg, raw, seed=3)
    lane = lanes["global"]
    seen = lane.counters["events_seen"]
    assert seen == 1000 // CHUNK * CHUNK
    # positions + buffered events per partition account for every event exactly once
    for p in (0, 1):
        buffered = [ev.position.offset for ev in lanes.chunker.buffered("global")
                    if ev.position.partition == p]
        assert buffered == list(range(lane.positions.get(p, 0), 500))


@pytest.mark.parametrize("scope", ["partition", "global"])
def test_column_wise_polls_give_the_same_lanes_as_event_lists(scope: str) -> None:
    cfg = _cfg(scope)
    raw = _raw(2000, partitions=3)
    rng = random.Random(5)
    by_part: dict[int, list[RawEvent]] = {}
    for ev in raw:
        by_part.setdefault(ev.position.partition, []).append(ev)
    polls: list[list[list[RawEvent]]] = []  # polls of 1-3 runs of one partition each
    while any(by_part.values()):
        runs = []
        for _ in range(rng.randint(1, 3)):
            live = [q for q, evs in by_part.items() if evs]
            if live:
                p = rng.choice(live)
                k = rng.randint(1, 3 * CHUNK)
                runs.append(by_part[p][:k])
                by_part[p] = by_part[p][k:]
        polls.append(runs)
    (pa, a), (pb, b) = _pipeline(cfg), _pipeline(cfg)
    for runs in polls:
        pa.process(EventBatch.of([ev for run in runs for ev in run]))
        pb.process(EventBatch.join([_columns(r) for r in runs]))  # as the Kafka source polls
    assert sorted(a) == sorted(b) and len(a) == (3 if scope == "partition" else 1)
    for key in a:
        assert a[key].counters == b[key].counters and a[key].counters["events_seen"] > 0
        assert a[key].positions == b[key].positions
        assert [e.position.id for e in a.chunker.buffered(key)] == [
            e.position.id for e in b.chunker.buffered(key)]
        assert_same_state(_state(a[key]), _state(b[key]), key)
