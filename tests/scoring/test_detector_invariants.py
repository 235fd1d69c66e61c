"""Hypothesis: whatever finite data arrives (|x| <= 1e6, NaN allowed), outputs stay sane."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from testkit.gmm import check_parameters

from streamem import Detector

BOUND = 1e6


@st.composite
def streams(draw: st.DrawFn) -> list[np.ndarray]:
    d = draw(st.integers(1, 3))
    elems = st.one_of(
        st.floats(-BOUND, BOUND, allow_nan=False),
        st.sampled_from([0.0, 1.0, BOUND, -BOUND, np.nan]),
    )
    out = []
    for _ in range(draw(st.integers(1, 8))):
        X = draw(hnp.arrays(np.float64, (draw(st.integers(1, 30)), d), elements=elems))
        X[np.isnan(X).all(axis=1), 0] = 0.0
        out.append(X)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=streams(), protect=st.booleans())
def test_outputs_are_finite_and_in_range(batches: list[np.ndarray], protect: bool) -> None:
    det = Detector(warmup=20, max_components=2, regime_patience=15, learn_every=4,
                   protect_model=protect, random_state=0)
    for X in batches:
        res = det.process(X)
        s = ~res.warming_up
        assert np.all(np.isfinite(res.scores[s]))
        assert np.all((res.tail_probability[s] >= 0) & (res.tail_probability[s] <= 1))
        assert np.all((res.severity[s] >= 0) & (res.severity[s] <= 100))
        assert np.array_equal(res.is_anomaly[s], res.tail_probability[s] < res.threshold[s])
        if det.ready_:
            check_parameters(det.model_)
            assert np.isfinite(det.health()["drift_cusum"])
