"""The blocked forward filter against the sequential reference; decay over irregular gaps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamem.model._decay import event_time_decay, remaining_weights
from streamem.model._forward import forward_filter, forward_filter_naive


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 6), st.integers(0, 2**31 - 1), st.sampled_from([4, 32]))
def test_blocked_filter_equals_sequential_and_rows_sum_to_one(n: int, K: int, seed: int,
                                                              block: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(K), size=K)
    lb = rng.normal(scale=30.0, size=(n, K))
    a1, l1 = forward_filter(lb, A, np.ones(K) / K, block=block)
    a2, l2 = forward_filter_naive(lb, A, np.ones(K) / K)
    np.testing.assert_allclose(a1, a2, atol=1e-10)
    np.testing.assert_allclose(l1, l2, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(a1.sum(axis=1), 1.0)


def test_one_hour_gap_decays_by_one_hour_however_many_events() -> None:
    dense = np.arange(0.0, 3600.0 + 1, 60.0)  # 61 events over one hour
    f_dense, _ = event_time_decay(dense, 3600.0)
    f_sparse, _ = event_time_decay(np.array([0.0, 3600.0]), 3600.0)
    _, total_dense = remaining_weights(f_dense)
    _, total_sparse = remaining_weights(f_sparse)
    assert np.isclose(total_dense, 0.5) and np.isclose(total_sparse, 0.5)
    # a late event decays nothing and does not move the clock back
    f, clock = event_time_decay(np.array([100.0, 50.0, np.nan, 200.0]), 100.0, last=0.0)
    assert np.allclose(f, [0.5, 1.0, 1.0, 0.5]) and clock == 200.0


@settings(max_examples=30, deadline=None)
@given(st.integers(100, 400), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_blocked_filter_survives_extreme_emissions_and_rare_transitions(n: int, K: int,
                                                                       seed: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.full(K, 0.05), size=K) + 1e-12  # near-zero transitions
    A /= A.sum(axis=1, keepdims=True)
    lb = rng.normal(scale=400.0, size=(n, K))  # emissions e^-700 apart and more
    a1, l1 = forward_filter(lb, A, np.ones(K) / K, block=8)
    a2, l2 = forward_filter_naive(lb, A, np.ones(K) / K)
    np.testing.assert_allclose(a1, a2, atol=1e-8)
    np.testing.assert_allclose(l1, l2, rtol=1e-8, atol=1e-6)
    assert np.all(np.isfinite(a1)) and np.allclose(a1.sum(axis=1), 1.0)
