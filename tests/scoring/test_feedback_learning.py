"""A false positive learned at a weight: that pattern stops alarming, others still alarm, the
rest of the model is barely moved, and the learned state survives a snapshot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from streamem import Detector
from streamem.errors import InvalidInputError, NotFittedError


def _fitted(cov: str = "auto", seed: int = 0) -> tuple[Detector, np.random.Generator]:
    rng = np.random.default_rng(seed)
    det = Detector(warmup=500, covariance_type=cov, random_state=seed)  # type: ignore[arg-type]
    det.process(rng.normal(size=(1500, 3)))
    return det, rng


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_same_pattern_flagged_before_not_after(cov: str) -> None:
    det, rng = _fitted(cov)
    pattern = np.array([4.5, -4.5, 4.5])
    near = pattern + rng.normal(0, 0.2, size=(200, 3))
    assert det.process(near.copy()).is_anomaly.mean() > 0.9
    det.learn_false_positive(pattern, weight=0.02)
    assert det.process(near.copy()).is_anomaly.mean() < 0.05
    # the mirror pattern was never declared normal: still flagged
    assert det.process(-near).is_anomaly.mean() > 0.9


def test_normal_data_rate_and_weights_stay() -> None:
    det, rng = _fitted("full")
    before = det.model_.weights_.copy()
    det.learn_false_positive(np.array([5.0, 5.0, -5.0]), weight=0.02)
    w = det.model_.weights_
    # the old components share 1 - weight (naive reference: rescale by hand)
    np.testing.assert_allclose(w[: len(before)], before * 0.98, rtol=1e-2)
    X = rng.normal(size=(20_000, 3))
    rate = det.process(X).is_anomaly.mean()
    # the normal rate stays near alert_rate (1e-3): binomial bound, not a tuned number
    assert rate <= stats.binom.ppf(0.999, len(X), 3e-3) / len(X)


def test_events_waiting_to_be_learned_are_learned_first() -> None:
    det, rng = _fitted("full")
    det.process(rng.normal(size=(10, 3)))  # fewer than learn_every: they wait
    assert len(det.pending_) == 10
    learned = det.n_learned_
    det.learn_false_positive(np.array([4.5, -4.5, 4.5]))
    assert len(det.pending_) == 0 and det.n_learned_ == learned + 10
    det.process(rng.normal(size=(100, 3)))  # the next learning step sees the new component


def test_missing_feature_is_filled_and_state_round_trips() -> None:
    det, rng = _fitted("full")
    det.learn_false_positive(np.array([4.5, np.nan, 4.5]), weight=0.02)
    twin = Detector.from_state(det.to_state())
    X = np.array([[4.5, 0.0, 4.5]]) + rng.normal(0, 0.2, size=(50, 3))
    a, b = det.process(X.copy()), twin.process(X.copy())
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.is_anomaly.mean() < 0.1


def test_refusals_name_the_fix() -> None:
    with pytest.raises(NotFittedError, match="warming up"):
        Detector(warmup=500).learn_false_positive(np.zeros(3))
    det, _ = _fitted()
    with pytest.raises(InvalidInputError, match=r"try 0\.02"):
        det.learn_false_positive(np.zeros(3), weight=0.7)
    with pytest.raises(InvalidInputError):
        det.learn_false_positive(np.zeros(4))


@settings(max_examples=15, deadline=None)
@given(st.floats(1e-3, 0.3), st.lists(st.floats(-8, 8), min_size=3, max_size=3))
def test_weights_stay_a_distribution(weight: float, x: list[float]) -> None:
    det, _ = _fitted("diag", seed=1)
    det.learn_false_positive(np.array(x), weight=weight)
    w = det.model_.weights_
    assert np.all(w > 0) and abs(w.sum() - 1.0) < 1e-9
    assert det.model_.n_components_ <= max(det.model_.max_components, len(w))
