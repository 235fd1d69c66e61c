"""Detector snapshots: exact round trips that continue bit for bit from any point."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.gmm import assert_state_equal, same_result

from streamem import Detector, StateError


def _stream(seed: int, sizes: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(sizes):
        X = rng.normal(size=(n, 3)) + (6.0 if i > len(sizes) // 2 else 0.0)  # a shift
        X[rng.random(X.shape) < 0.05] = np.nan
        X[np.isnan(X).all(axis=1), 0] = 0.0
        out.append(X)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.sampled_from([1, 1, 3, 17, 40, 150]), min_size=4, max_size=30),
    split=st.integers(0, 30),
    seed=st.integers(0, 3),
)
def test_restored_detector_continues_bit_for_bit(sizes: list[int], split: int, seed: int) -> None:
    """Split anywhere: mid warm-up, with deferred (pending) learning, around regime changes."""
    batches = _stream(seed, sizes)
    kw = dict(warmup=60, regime_patience=40, learn_every=8, drift_window=50, max_components=2,
              regime_min_events=20 + 4 * seed, random_state=seed)
    a = Detector(**kw)  # type: ignore[arg-type]
    cut = min(split, len(batches))
    for X in batches[:cut]:
        a.process(X)
    state = a.to_state()
    b = Detector.from_state(state)
    assert_state_equal(b.to_state(), state)
    for X in batches[cut:]:
        same_result(a.process(X), b.process(X))
    assert_state_equal(a.to_state(), b.to_state())
    assert a.health().keys() == b.health().keys()


def test_round_trip_covers_pending_and_regime_changes() -> None:
    """The deterministic cases the property test is meant to reach, asserted explicitly."""
    batches = _stream(0, [1] * 30 + [7] * 20 + [50] * 20)
    a = Detector(warmup=20, regime_patience=40, learn_every=16, random_state=0)
    mid_warmup = pending = False
    for X in batches:
        state = a.to_state()
        mid_warmup |= not a.ready_ and len(state["cold"]["buffer"]) > 0
        pending |= bool(state["pending"])
        b = Detector.from_state(state)
        same_result(a.process(X), b.process(X))
        assert_state_equal(a.to_state(), b.to_state())
    assert mid_warmup and pending and a.regime_changes_ >= 1


def test_round_trip_across_an_early_regime_change() -> None:
    """Snapshots before, during and after a coherent regime is accepted early (the tracker's
    counters, the coherence probe's draw from the model's generator, the added components)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1500, 3))
    X[700:] += 8.0
    batches = [X[i : i + 13] for i in range(0, len(X), 13)]
    a = Detector(warmup=300, regime_patience=600, regime_min_events=80, learn_every=16,
                 max_components=3, random_state=0)
    changes_at = []
    for X_b in batches:
        state = a.to_state()
        b = Detector.from_state(state)
        assert_state_equal(b.to_state(), state)
        same_result(a.process(X_b), b.process(X_b))
        assert_state_equal(a.to_state(), b.to_state())
        changes_at.append(a.regime_changes_)
    first = changes_at.index(1) * 13
    assert a.regime_changes_ == 1 and 700 + 80 <= first < 700 + 200  # early, not at 300 flags
    assert a.model_.n_components_ <= 3


def test_from_state_rejects_other_versions_and_missing_keys() -> None:
    det = Detector(warmup=20, random_state=0)
    det.process(np.random.default_rng(0).normal(size=(30, 2)))
    state = det.to_state()
    try:
        Detector.from_state({**state, "version": 999})
    except StateError as exc:
        assert "999" in str(exc)
    else:
        raise AssertionError("version 999 accepted")
    broken = dict(state)
    del broken["threshold"]
    try:
        Detector.from_state(broken)
    except StateError as exc:
        assert "threshold" in str(exc)
    else:
        raise AssertionError("incomplete state accepted")
