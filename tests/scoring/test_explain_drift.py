"""Explanations name the feature that breaks a correlation; drift tests see shifts only."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamem import Detector, OnlineGMM
from streamem.scoring.drift import DriftMonitor


def _correlated(rng: np.random.Generator, n: int) -> np.ndarray:
    """x1 = 2 x0 + small noise, x2 = -x0 + small noise, x3 independent (original units)."""
    x0 = rng.normal(10.0, 3.0, n)
    return np.column_stack([
        x0,
        2.0 * x0 + rng.normal(0, 0.3, n),
        -x0 + rng.normal(0, 0.3, n),
        rng.normal(100.0, 20.0, n),
    ])


@pytest.mark.parametrize("broken", [1, 2])
def test_explain_ranks_the_feature_that_breaks_the_correlation(broken: int) -> None:
    rng = np.random.default_rng(broken)
    names = ["load", "power", "temp", "other"]
    det = Detector(warmup=2000, n_components=1, feature_names=names, random_state=0)
    det.process(_correlated(rng, 5000))
    x = np.array([12.0, 24.0, -12.0, 100.0])
    x[broken] += 4.0 if broken == 1 else -4.0  # plausible alone (within 1 sd), not jointly
    res = det.process(x[None, :])
    assert res.is_anomaly[0]
    top = det.explain(x)
    assert top[0].index == broken and top[0].name == names[broken]
    assert abs(top[0].z) > 5 and all(abs(t.z) <= abs(top[0].z) for t in top)
    # the expected value is what the other features predict: 2*12 = 24, -12
    predicted = 24.0 if broken == 1 else -12.0
    assert top[0].expected == pytest.approx(predicted, abs=0.3)
    assert top[0].value == x[broken]


def test_explain_with_a_missing_feature_uses_the_observed_ones() -> None:
    rng = np.random.default_rng(0)
    det = Detector(warmup=2000, n_components=1, random_state=0)
    det.process(_correlated(rng, 3000))
    x = np.array([12.0, 24.0, -8.0, np.nan])  # temp broken, "other" missing
    top = det.explain(x)
    assert top[0].index == 2
    assert top[0].expected == pytest.approx(-12.0, abs=0.3)
    assert all(t.index != 3 for t in top)
    assert len(top) == 3


def test_explain_before_warm_up_is_empty() -> None:
    assert Detector(warmup=100).explain(np.zeros(3)) == []


def _drift_setup(seed: int) -> tuple[np.random.Generator, OnlineGMM, DriftMonitor]:
    rng = np.random.default_rng(seed)
    m = OnlineGMM(n_components=2, n_warmup=2000, random_state=0)
    X = np.vstack([rng.normal(-2, 1, (1000, 3)), rng.normal(2, 1, (1000, 3))])
    m.partial_fit(rng.permutation(X))
    mon = DriftMonitor(window=500)
    mon.set_reference(m, rng.permutation(X))
    return rng, m, mon


def _sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    z = rng.random(n) < 0.5
    return np.where(z[:, None], -2.0, 2.0) + rng.normal(size=(n, 3)) + shift


def test_cusum_is_quiet_on_a_stationary_stream() -> None:
    rng, m, mon = _drift_setup(0)
    for _ in range(400):  # 200 000 events, 400 windows
        X = _sample(rng, 500)
        m.partial_fit(X)
        mon.update(X, m)
    assert mon.alarms_ == 0 and not mon.drift_detected_
    assert mon.cusum_ < mon.h


def test_cusum_alarms_on_a_mean_shift() -> None:
    rng, m, mon = _drift_setup(1)
    for _ in range(20):
        mon.update(_sample(rng, 500), m)
    assert mon.alarms_ == 0
    windows = 0
    while mon.alarms_ == 0 and windows < 50:
        X = _sample(rng, 500, shift=0.5)  # half a standard deviation
        m.partial_fit(X)
        mon.update(X, m)
        windows += 1
    assert mon.alarms_ == 1 and mon.drift_detected_
    assert windows <= 10


def test_divergence_grows_with_the_shift() -> None:
    divergences = []
    shifts = []
    for shift in (0.0, 0.5, 1.0, 2.0):
        rng, m, mon = _drift_setup(2)
        for _ in range(10):
            X = _sample(rng, 500, shift)
            m.partial_fit(X)
            mon.update(X, m)
        divergences.append(mon.divergence_)
        shifts.append(float(np.max(mon.mean_shift_)))
    assert divergences[0] < 0.05
    assert all(a < b for a, b in itertools.pairwise(divergences))
    assert all(a < b for a, b in itertools.pairwise(shifts))
