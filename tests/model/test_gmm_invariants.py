"""Hypothesis invariants of OnlineGMM and exact state round trips.

Inputs are any finite floats with magnitude at most 1e6 (plus NaN = missing); the library
itself accepts up to 1e100 but the invariants are stated for the documented 1e6 bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from testkit.gmm import assert_state_equal, check_parameters

from streamem.model import OnlineGMM

BOUND = 1e6


@st.composite
def batches(draw: st.DrawFn) -> tuple[int, list[np.ndarray]]:
    d = draw(st.integers(1, 4))
    elems = st.one_of(
        st.floats(-BOUND, BOUND, allow_nan=False),
        st.sampled_from([0.0, 1.0, -1.0, 1e-9, BOUND, -BOUND, np.nan]),
    )
    out = []
    for _ in range(draw(st.integers(2, 5))):
        n = draw(st.integers(1, 25))
        X = draw(hnp.arrays(np.float64, (n, d), elements=elems))
        X[np.isnan(X).all(axis=1), 0] = 1.0  # all-NaN rows are rejected (tested elsewhere)
        out.append(X)
    return d, out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=batches(), cov_type=st.sampled_from(["full", "diag"]), k=st.integers(1, 3))
def test_parameters_stay_finite_pd_and_normalised(
    data: tuple[int, list[np.ndarray]], cov_type: str, k: int
) -> None:
    _, chunks = data
    m = OnlineGMM(n_components=k, covariance_type=cov_type,  # type: ignore[arg-type]
                  n_warmup=8, half_life=20, refresh_every=1, random_state=0)
    for X in chunks:
        m.partial_fit(X)
        if m.is_fitted:
            check_parameters(m)
            lp = m.score_samples(X)
            assert np.all(np.isfinite(lp))
            assert np.allclose(m.predict_proba(X).sum(axis=1), 1.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=batches(), split=st.integers(0, 5))
def test_restored_model_continues_bit_for_bit(
    data: tuple[int, list[np.ndarray]], split: int
) -> None:
    """Round trip at any point (mid warm-up included), then both models see the same data."""
    _, chunks = data
    a = OnlineGMM(n_components="auto", max_components=2, n_warmup=12, half_life=15,
                  refresh_every=4, reservoir_size=5, random_state=1)
    cut = min(split, len(chunks))
    for X in chunks[:cut]:
        a.partial_fit(X)
    state = a.to_state()
    b = OnlineGMM.from_state(state)
    assert_state_equal(b.to_state(), state)
    for X in chunks[cut:]:
        a.partial_fit(X)
        b.partial_fit(X)
        if a.is_fitted:
            assert np.array_equal(a.score_samples(X), b.score_samples(X))
    assert_state_equal(a.to_state(), b.to_state())


def test_round_trip_after_reseeding_and_pending_refresh() -> None:
    rng = np.random.default_rng(0)
    a = OnlineGMM(n_components=4, n_warmup=400, half_life=200, refresh_every=64,
                  reservoir_size=50, random_state=3)
    a.partial_fit(np.vstack([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))]))
    for _ in range(30):  # one mode disappears: its components die and are re-seeded
        a.partial_fit(rng.normal(5, 1, (40, 2)))
    a.partial_fit(rng.normal(5, 1, (10, 2)))  # leaves learned-but-not-refreshed events
    assert a.n_reseeds_ > 0 and a._pending > 0
    b = OnlineGMM.from_state(a.to_state())
    for _ in range(10):
        X = rng.normal(0, 3, (25, 2))
        assert np.array_equal(a.score_samples(X), b.score_samples(X))
        a.partial_fit(X)
        b.partial_fit(X)
    assert_state_equal(a.to_state(), b.to_state())


def test_state_is_plain_data() -> None:
    rng = np.random.default_rng(0)
    m = OnlineGMM(n_components=2, n_warmup=50, random_state=0).partial_fit(rng.normal(size=(80, 3)))

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v)
        else:
            assert x is None or isinstance(x, (bool, int, float, str, np.ndarray, np.generic)), x

    walk(m.to_state())
