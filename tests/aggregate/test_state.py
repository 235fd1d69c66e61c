"""The snapshot: a restart at any position gives the buckets of an uninterrupted run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from testkit.aggregate import ALL_FEATURES, stream

from streamem.aggregate import Aggregator, Buckets
from streamem.errors import StateError


def _make() -> Aggregator:
    return Aggregator(ALL_FEATURES, 20, by=["svc"], allowed_lateness=15)


def _run(recs, t, lines, cuts) -> tuple[Buckets, list]:
    agg, outs, rejected, prev = _make(), [], [], 0
    for c in [*cuts, len(recs)]:
        out, rej = agg.add(recs[prev:c], t[prev:c], lines[prev:c])
        outs.append(out)
        rejected += [(prev + i, r, d) for i, r, d in rej]
        agg = Aggregator.from_state(json.loads(json.dumps(agg.to_state())))
        prev = c
    outs.append(agg.flush())
    return Buckets.concat(outs), rejected


def test_a_restart_at_every_position_gives_the_same_buckets() -> None:
    recs, t, lines = stream(5, 70)
    ref, ref_rej = _run(recs, t, lines, [])
    assert len(ref) > 10 and any(r == "late" for _, r, _ in ref_rej)
    for cut in range(len(recs) + 1):
        got, rej = _run(recs, t, lines, [cut])
        assert rej == ref_rej
        assert got.keys == ref.keys and got.samples == ref.samples
        assert np.array_equal(got.start, ref.start) and got.labels == ref.labels
        # sums and means are equal up to the rounding of adding per batch
        np.testing.assert_allclose(got.X, ref.X, rtol=1e-13, equal_nan=True)


def test_many_restarts_in_one_run() -> None:
    recs, t, lines = stream(6, 120)
    ref, _ = _run(recs, t, lines, [])
    got, _ = _run(recs, t, lines, list(range(3, 120, 7)))
    np.testing.assert_allclose(got.X, ref.X, rtol=1e-13, equal_nan=True)


def test_the_state_is_plain_json_with_base64_sketches() -> None:
    recs, t, lines = stream(7, 30)
    agg = _make()
    agg.add(recs, t, lines)
    state = agg.to_state()
    text = json.dumps(state, allow_nan=False)  # no NaN or Infinity, no pickle
    assert state["version"] == 1 and state["kind"] == "aggregate"
    assert state["open"]["ids"] and all(isinstance(s, str) for row in
                                        state["open"]["sketches"] if row for s in row)
    assert "Infinity" not in text


@pytest.mark.parametrize("damage", [
    lambda s: s.update(version=2),
    lambda s: s.update(kind="detector"),
    lambda s: s["open"].update(ids=list(reversed(s["open"]["ids"]))),
    lambda s: s["open"]["sketches"].__setitem__(0, ["not base64!", "x"]),
    lambda s: s["open"]["sketches"].__setitem__(0, ["AAAA", "AAAA"]),
    lambda s: s.update(keys=[["web"], ["web"]]),
    lambda s: s["open"].update(acc=[[1.0]]),
    lambda s: s["settings"]["features"][0].update(fn="median"),
    lambda s: s.update(vocab={"nope": ["a"]}),
])
def test_a_damaged_state_raises_state_error(damage) -> None:
    recs, t, lines = stream(8, 30)
    agg = _make()
    agg.add(recs, t, lines)
    state = json.loads(json.dumps(agg.to_state()))
    damage(state)
    with pytest.raises(StateError, match="aggregate"):
        Aggregator.from_state(state)


def test_kill_minus_9_mid_bucket_then_restart_from_the_checkpoint(tmp_path) -> None:
    """A child aggregates batch by batch, checkpointing after each, and is killed with
    SIGKILL mid-stream; a new process resumes from the checkpoint and the buckets of both
    equal an uninterrupted run."""
    import subprocess
    import sys

    recs, t, lines = stream(9, 200)
    ref, _ = _run(recs, t, lines, [])
    ck, out = tmp_path / "ck.json", tmp_path / "out.jsonl"
    child = f"""
import json, os, signal, sys
import numpy as np
from streamem.aggregate import Aggregator
from testkit.aggregate import ALL_FEATURES, stream
recs, t, lines = stream(9, 200)
ck, out = {str(ck)!r}, {str(out)!r}
if os.path.exists(ck):
    st = json.load(open(ck)); agg = Aggregator.from_state(st["agg"]); pos = st["pos"]
else:
    agg = Aggregator(ALL_FEATURES, 20, by=["svc"], allowed_lateness=15); pos = 0
kill_at = int(sys.argv[1])
while pos < len(recs):
    b, _ = agg.add(recs[pos:pos + 9], t[pos:pos + 9], lines[pos:pos + 9])
    pos += len(recs[pos:pos + 9])
    with open(out, "a") as fh:  # the sink, then the checkpoint (at least once: the dedup
        for i in range(len(b)):  # key is the bucket)
            fh.write(json.dumps([b.start[i], b.keys[i], b.X[i].tolist()]) + "\\n")
    tmp = ck + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({{"agg": agg.to_state(), "pos": pos}}, fh)
    os.replace(tmp, ck)
    if pos >= kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
b = agg.flush()
with open(out, "a") as fh:
    for i in range(len(b)):
        fh.write(json.dumps([b.start[i], b.keys[i], b.X[i].tolist()]) + "\\n")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path])}
    first = subprocess.run([sys.executable, "-c", child, "100"], env=env, capture_output=True)
    assert first.returncode == -9, first.stderr.decode()
    second = subprocess.run([sys.executable, "-c", child, "10000"], env=env,
                            capture_output=True)
    assert second.returncode == 0, second.stderr.decode()
    rows = {}
    for line in out.read_text().splitlines():
        s, k, x = json.loads(line)
        rows[(s, tuple(k))] = x
    assert list(rows) == list(zip(ref.start.tolist(), ref.keys, strict=True))
    np.testing.assert_allclose(np.array(list(rows.values()), dtype=float), ref.X, rtol=1e-13,
                               equal_nan=True)
