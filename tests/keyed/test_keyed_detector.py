"""KeyedDetector behaviour: fleet quality against a global model, the population prior for
new keys, alert rates, bounded memory (LRU to the spill, TTL), bad keys, and the state
round trip that continues bit for bit."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamem
from streamem.errors import InvalidInputError, StateError
from streamem.evaluation.fleet import fleet
from streamem.evaluation.metrics import roc_auc
from streamem.scoring.keyed import KeyedDetector, check_keys
from streamem.state.codec import dumps, loads


def _run(det: KeyedDetector, X: np.ndarray, keys: np.ndarray, batch: int = 512
         ) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(X), batch):
        r = det.process(X[i:i + batch], keys[i:i + batch])
        for name in ("scores", "surprise", "threshold", "severity", "is_anomaly", "learned",
                     "warming_up"):
            out.setdefault(name, []).append(getattr(r, name))
    return {k: np.concatenate(v) for k, v in out.items()}


def test_fleet_keyed_auc_is_high_where_the_global_model_is_near_chance() -> None:
    f = fleet(60, 300, 4, seed=3)
    res = _run(KeyedDetector(warmup=1000, random_state=0), f.X, f.keys)
    live = np.arange(len(f.X)) >= 2000
    keyed_auc = roc_auc(f.labels[live], res["surprise"][live])
    glob = streamem.Detector(warmup=2000, random_state=0)
    g = np.concatenate([glob.process(f.X[i:i + 512]).surprise for i in range(0, len(f.X), 512)])
    global_auc = roc_auc(f.labels[live], np.nan_to_num(g[live]))
    assert f.labels[live].sum() > 30
    assert keyed_auc >= 0.95
    assert abs(global_auc - 0.5) < 0.15
    # the anomalies are found at a false-alarm rate near alert_rate (1e-3)
    flagged = res["is_anomaly"][live]
    assert flagged[f.labels[live]].mean() > 0.8
    assert flagged[~f.labels[live]].mean() < 3e-3


def test_a_new_key_scores_from_its_first_events_and_its_own_level_does_not_alarm() -> None:
    f = fleet(40, 200, 3, anomaly_rate=0.0, seed=1)
    det = KeyedDetector(warmup=500, key_prior_events=30, random_state=0)
    _run(det, f.X, f.keys)
    rng = np.random.default_rng(5)
    level = np.array([500.0, -300.0, 40.0])            # far from every other key
    X = level + rng.normal(size=(60, 3))
    r = det.process(X[:1], [999])
    assert np.isfinite(r.surprise).all() and r.warming_up.all() and not r.is_anomaly.any()
    r = det.process(X[1:], np.full(59, 999))
    assert not r.is_anomaly.any()
    assert r.warming_up[:28].all() and not r.warming_up[-1]
    # leaving its own level by 8 of its own scales alarms
    r = det.process(level + np.array([8.0, 0, 0]), [999])
    assert r.is_anomaly[0] and r.severity[0] > 90


def test_alert_rate_holds_per_key_and_overall_on_normal_data() -> None:
    f = fleet(50, 800, 2, anomaly_rate=0.0, seed=2)
    det = KeyedDetector(warmup=1000, alert_rate=1e-2, random_state=0)
    res = _run(det, f.X, f.keys)
    live = np.arange(len(f.X)) >= 10_000
    overall = res["is_anomaly"][live].mean()
    assert 2e-3 < overall < 2e-2
    per_key = np.bincount(f.keys[live], weights=res["is_anomaly"][live]) / np.bincount(
        f.keys[live])
    assert np.percentile(per_key, 90) < 0.05


def test_bounded_memory_gives_the_same_results_as_unbounded() -> None:
    f = fleet(300, 40, 4, seed=4)
    big = _run(KeyedDetector(warmup=500, random_state=0), f.X, f.keys, batch=256)
    small_det = KeyedDetector(warmup=500, max_keys_in_memory=256, random_state=0)
    small = _run(small_det, f.X, f.keys, batch=256)
    for name, value in big.items():
        np.testing.assert_array_equal(small[name], value, err_msg=name)
    c = small_det.counters()
    assert c["keys_in_memory"] <= 256 and c["keys_evicted"] > 0 and c["keys_loaded"] > 0
    assert c["keys_created"] == 300


def test_idle_keys_are_forgotten_after_the_ttl() -> None:
    det = KeyedDetector(warmup=50, key_idle_ttl=100.0, random_state=0)
    rng = np.random.default_rng(0)
    det.process(rng.normal(size=(60, 2)), np.repeat(["a", "b"], 30), now=np.arange(60.0))
    assert det.n_keys_in_memory == 2
    det.process(rng.normal(size=(1, 2)), ["a"], now=160.0)   # b last seen at 59
    assert det.n_keys_in_memory == 1 and det.counters()["keys_forgotten"] == 1


def test_memory_per_key_is_under_4_kib_at_d4_k2() -> None:
    f = fleet(10_000, 2, 4, anomaly_rate=0.0, seed=0)
    det = KeyedDetector(warmup=1000, random_state=0)
    det.process(f.X[:4096], f.keys[:4096])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _run(det, f.X[4096:], f.keys[4096:], batch=4096)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    t = det.table_
    assert t is not None and t.n_keys == 10_000
    per_key = (t.rec.nbytes + t.dirty.nbytes + t.sorted_keys.nbytes + t.sorted_slots.nbytes
               + t.free.nbytes) / t.n_keys
    assert per_key <= 4096
    assert (after - before) / 10_000 <= 4096


def test_bad_keys_and_rows_are_refused_with_the_fix() -> None:
    det = KeyedDetector(warmup=10)
    with pytest.raises(InvalidInputError, match="key of row 1 is empty; dead-letter"):
        det.process(np.zeros((2, 2)), ["a", ""])
    with pytest.raises(InvalidInputError, match="control character"):
        det.process(np.zeros((1, 2)), ["a\x07"])
    with pytest.raises(InvalidInputError, match="row 1 is infinite or has every feature"):
        det.process(np.array([[np.nan, 1.0], [np.nan, np.nan]]), ["a", "a"])
    with pytest.raises(InvalidInputError, match="row 0 is infinite"):
        det.process(np.array([[np.inf, 1.0]]), ["a"])
    ok, why = check_keys(["x" * 1025, "ok"])
    assert ok.tolist() == [False, True] and why[0].startswith("longer than 1024")
    det.process(np.zeros((1, 2)), ["a"])
    with pytest.raises(InvalidInputError, match="keep one key type"):
        det.process(np.zeros((1, 2)), [3])


def test_restored_detector_continues_bit_for_bit() -> None:
    f = fleet(120, 60, 4, seed=6)
    half = len(f.X) // 2
    a = KeyedDetector(warmup=800, max_keys_in_memory=100, random_state=0)
    _run(a, f.X[:half], f.keys[:half], batch=64)
    assert a.table_ is not None and a.table_.spill   # evicted keys not yet checkpointed
    b = KeyedDetector.from_state(loads(dumps(a.to_state())))
    ra = _run(a, f.X[half:], f.keys[half:], batch=64)
    rb = _run(b, f.X[half:], f.keys[half:], batch=64)
    for name, value in ra.items():
        np.testing.assert_array_equal(rb[name], value, err_msg=name)
    assert a.counters() == b.counters()
    # also during the population warm-up
    c = KeyedDetector(warmup=5000, random_state=0)
    _run(c, f.X[:300], f.keys[:300])
    d = KeyedDetector.from_state(loads(dumps(c.to_state())))
    np.testing.assert_array_equal(_run(c, f.X[300:], f.keys[300:])["scores"],
                                  _run(d, f.X[300:], f.keys[300:])["scores"])


def test_a_malformed_state_names_the_field() -> None:
    s = KeyedDetector(warmup=10).to_state()
    s["pool"] = [1.0]
    with pytest.raises(StateError, match="pool"):
        KeyedDetector.from_state(s)


def test_explain_names_the_feature_that_left_the_keys_own_normal_read_only() -> None:
    f = fleet(30, 200, 3, anomaly_rate=0.0, seed=8)
    det = KeyedDetector(warmup=500, max_keys_in_memory=20, feature_names=["a", "b", "c"],
                        random_state=0)
    _run(det, f.X, f.keys, batch=16)
    t = det.table_
    assert t is not None
    evicted = sorted(set(range(30)) - set(t.keys().tolist()))[0]
    for key in (int(t.keys()[0]), evicted):
        rows = f.X[f.keys == key]
        x = rows.mean(axis=0)
        x[1] += 10 * rows[:, 1].std()
        top = det.explain(x, key)
        assert top[0].name == "b" and abs(top[0].z) > 5
        assert abs(top[0].expected - rows[:, 1].mean()) < 3 * rows[:, 1].std()
    assert det.n_keys_in_memory == 20 and det.counters()["keys_loaded"] == t.loads
    assert det.explain(x, 12345) == []


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_rows_of_different_keys_may_come_in_any_order(seed: int) -> None:
    """Within a batch, only each key's own order matters: interleaving the keys differently
    permutes the results and changes nothing else."""
    f = fleet(15, 60, 3, seed=9)
    det = KeyedDetector(warmup=300, random_state=0)
    _run(det, f.X[:600], f.keys[:600], batch=200)
    state = det.to_state()
    rng = np.random.default_rng(seed)
    X, keys = f.X[600:], f.keys[600:]
    # random times, handed out to each key's rows in its own arrival order
    t = rng.random(len(keys))
    new_t = np.empty_like(t)
    new_t[np.argsort(keys, kind="stable")] = t[np.lexsort((t, keys))]
    perm = np.argsort(new_t)
    assert all((np.diff(perm[keys[perm] == k]) > 0).all() for k in np.unique(keys))
    assert not np.array_equal(perm, np.arange(len(perm)))
    a = det.process(X, keys)
    b = KeyedDetector.from_state(state).process(X[perm], keys[perm])
    for name in ("scores", "surprise", "threshold", "is_anomaly", "learned", "warming_up"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name)[perm], err_msg=name)
