"""Fuzzing the input side: random bytes, random JSON and mutated good lines, through the
decoder and the whole pipeline (Hypothesis, bounded example counts), and one real
``streamem run`` over a seeded corpus.

Properties: nothing raises; every line is learned or dead-lettered exactly once; a batch
decodes exactly as its lines do one by one (so no record spans or shares lines); and the model
equals a run on the accepted lines alone.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.daemon import cli, inspect, make_stream, read_jsonl, write_config

from streamem.config import parse_config
from streamem.events import EventBatch
from streamem.features import REJECT_REASONS, FeatureExtractor
from streamem.runtime.build import new_detector
from streamem.runtime.lane import Lane
from streamem.runtime.pipeline import Pipeline

FEATURES = ["a", "b.c"]
FIELDS = {"timestamp": "ts", "key": "k", "id": "id"}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.sampled_from([10**400, 9.9e10, "1970-01-01T00:00:09Z", "", "\n",
                                       "\x00", "\ud800", "x" * 1100]))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(["a", "b", "c", "k", "ts", "id"]),
                                             kids, max_size=4)), max_leaves=12)


def _good(rng: random.Random, i: int) -> dict[str, Any]:
    return {"a": rng.gauss(0, 1), "b": {"c": rng.gauss(5, 2)}, "ts": 1_000 + i,
            "k": f"s{i % 3}", "id": f"e{i}"}


@st.composite
def lines(draw: st.DrawFn) -> list[bytes]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    out: list[bytes] = []
    for i in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["good", "good", "bytes", "json", "mutate", "object",
                                     "split", "glue"]))
        good = json.dumps(_good(rng, i)).encode()
        if kind == "good":
            out.append(good)
        elif kind == "bytes":
            out.append(draw(st.binary(min_size=1, max_size=60)))
        elif kind == "json":
            out.append(json.dumps(draw(json_value), allow_nan=True).encode())
        elif kind == "object":
            rec: dict[str, Any] = draw(st.dictionaries(
                st.sampled_from(["a", "b", "ts", "k", "id", "z"]), json_value, max_size=5))
            out.append(json.dumps(rec, allow_nan=True).encode())
        elif kind == "mutate":
            at = draw(st.integers(0, len(good) - 1))
            op = draw(st.sampled_from(["cut", "insert", "flip"]))
            junk = draw(st.binary(min_size=1, max_size=4))
            out.append(good[:at] if op == "cut" else good[:at] + junk + good[at:]
                       if op == "insert" else good[:at] + junk + good[at + len(junk):])
        elif kind == "split":
            cut = draw(st.integers(1, len(good) - 1))
            out += [good[:cut], good[cut:]]
        else:
            out.append(good + b"," + json.dumps(_good(rng, i + 1)).encode())
    return [ln for ln in out if ln.strip() and b"\n" not in ln and b"\r" not in ln]


def _fx() -> FeatureExtractor:
    return FeatureExtractor(FEATURES, max_event_bytes=4096, **FIELDS)


@SETTINGS
@given(lines())
def test_decoder_never_raises_and_a_batch_decodes_as_its_lines_do(batch: list[bytes]) -> None:
    fx = _fx()
    whole = fx.decode(batch)
    assert sorted(whole.kept + [r.index for r in whole.rejected]) == list(range(len(batch)))
    assert {r.reason for r in whole.rejected} <= set(REJECT_REASONS)
    assert whole.X.shape == (len(whole.kept), len(FEATURES))
    assert not np.isinf(whole.X).any() and (np.abs(np.nan_to_num(whole.X)) <= 1e100).all()
    for i, line in enumerate(batch):  # each record comes from exactly its own line
        one = fx.decode([line])
        if i in whole.kept:
            row = whole.kept.index(i)
            assert one.kept == [0]
            np.testing.assert_array_equal(one.X[0], whole.X[row])
            assert (one.key(0), one.id(0), one.timestamp(0)) == \
                (whole.key(row), whole.id(row), whole.timestamp(row))
        else:
            [rej] = [r for r in whole.rejected if r.index == i]
            assert [r.reason for r in one.rejected] == [rej.reason]


def _pipeline(batch_size: int) -> tuple[Pipeline, Lane, list[tuple[bytes, str, str]]]:
    cfg = parse_config({"source": {"type": "stdin"}, "fields": {"features": FEATURES, **FIELDS},
                        "model": {"n_components": 1, "warmup": 20, "random_state": 0},
                        "batch": {"max_events": batch_size}})
    lane = Lane("global", new_detector(cfg))
    dead: list[tuple[bytes, str, str]] = []

    class Dead:
        def write(self, payload: bytes, reason: str, source_id: str) -> None:
            dead.append((payload, reason, source_id))

    return Pipeline(cfg, _fx(), None, Dead(), None, lambda p: lane), lane, dead  # type: ignore[arg-type]


def _run(pipe: Pipeline, batches: list[list[bytes]]) -> list[list[int]]:
    kept, offset = [], 0
    for b in batches:
        offs = list(range(offset, offset + len(b)))
        for out in pipe.process(EventBatch(b, offs, [o + 1 for o in offs], 0, "f")):
            kept.append([offs[i] for i in out.decoded.kept])
        offset += len(b)
    return kept


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(lines(), min_size=3, max_size=6))
def test_pipeline_learns_or_dead_letters_each_line_once_and_equals_the_good_lines_run(
        chunks: list[list[bytes]]) -> None:
    rng = random.Random(len(chunks))
    warm = [json.dumps(_good(rng, i)).encode() for i in range(30)]
    batches = [warm, *chunks]
    pipe, lane, dead = _pipeline(64)
    kept = _run(pipe, batches)
    n = sum(map(len, batches))
    learned = {o for k in kept for o in k}
    dead_offsets = [int(d[2].rsplit(":", 1)[1]) for d in dead]
    assert len(dead_offsets) == len(set(dead_offsets))  # dead-lettered at most once
    assert learned.isdisjoint(dead_offsets) and len(learned) + len(dead) == n
    assert {d[1].split(":")[0] for d in dead} <= set(REJECT_REASONS)
    assert pipe.totals["events"] == n and pipe.totals["rejected"] == len(dead)
    flat = [ln for b in batches for ln in b]
    fx = _fx()  # a line is learned exactly when it is acceptable on its own
    assert learned == {o for o, ln in enumerate(flat) if fx.decode([ln]).kept}
    assert all(flat[o] == p for p, _, s in dead for o in [int(s.rsplit(":", 1)[1])])
    # the accepted lines alone, in the same batches, give the same model
    ref_pipe, ref, ref_dead = _pipeline(64)
    good = [[flat[o] for o in k] for k in kept if k]
    _run(ref_pipe, good)
    assert ref_dead == []
    a, b = lane.detector.to_state(), ref.detector.to_state()
    _assert_same(a, b)


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b or (a != a and b != b)


def test_streamem_run_over_a_seeded_fuzz_corpus(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    make_stream(good, 1200)
    rng = random.Random(7)
    mixed: list[bytes] = []
    for i, line in enumerate(good.read_bytes().splitlines()):
        mixed.append(line)
        if i % 7 == 3:
            op = rng.randrange(5)
            if op == 0:
                junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            elif op == 1:
                at = rng.randrange(len(line))
                junk = line[:at] + bytes([rng.randrange(256)]) + line[at + 1:]
            elif op == 2:
                junk = line[: rng.randrange(1, len(line))]
            elif op == 3:
                junk = line + b"," + line
            else:
                junk = line.replace(b'"ts": ', b'"ts": 9' + b"9" * rng.randrange(1, 500))
            mixed.append(junk)
    mixed = [ln for ln in mixed if ln.strip() and b"\n" not in ln and b"\r" not in ln]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(ln + b"\n" for ln in mixed))
    (tmp_path / "run").mkdir()
    out = cli("run", "-c", str(write_config(tmp_path / "run", path)), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    counters = inspect(tmp_path / "run" / "state")["counters"]
    dead = read_jsonl(tmp_path / "run" / "dead.jsonl")
    ids = [d["source_id"] for d in dead]
    assert len(ids) == len(set(ids)) == counters["events_rejected"] > 50
    assert counters["events_seen"] == len(mixed)
    learned = sum(counters.get(f"events_{k}", 0) for k in ("learned", "anomalous", "skipped"))
    assert learned + len(dead) == len(mixed)
    starts = set()
    off = 0
    for ln in mixed:
        starts.add(off)
        off += len(ln) + 1
    assert {int(i.rsplit(":", 1)[1]) for i in ids} <= starts
