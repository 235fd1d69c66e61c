"""Regime changes: a coherent new regime is accepted early and added to the mixture (a
recurring regime stays known), while bursts, incidents and drifting faults keep alarming."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem import Detector, OnlineGMM
from streamem.evaluation.scenarios import abrupt_drift, null_stream, outlier_burst, recurring_drift

WARMUP = 1000


def _flags(
    X: NDArray[np.float64], batch: int = 4, **kw: object
) -> tuple[Detector, NDArray[np.bool_]]:
    kw = {"regime_min_events": 400, **kw}  # the early path is opt-in
    det = Detector(alert_rate=1e-3, warmup=WARMUP, random_state=0, **kw)  # type: ignore[arg-type]
    out = [det.process(X[i : i + batch]).is_anomaly for i in range(0, len(X), batch)]
    return det, np.concatenate(out)


def test_abrupt_drift_readapts_within_a_few_hundred_events() -> None:
    s = abrupt_drift(n=14_000, d=5, seed=0)
    (cp,) = s.change_points
    det, f = _flags(s.X)
    assert det.regime_changes_ == 1
    assert f[cp : cp + 200].mean() > 0.95  # the change itself is flagged
    # before: ~1000 events flagged (regime_patience * regime_fraction), then a refit
    assert f[cp + 450 : cp + 950].sum() <= 5  # back to normal alerting within 450 events
    assert f[cp + 450 :].mean() < 3 * det.alert_rate


def test_outlier_burst_of_300_events_is_flagged_throughout_and_not_learned() -> None:
    s = outlier_burst(n=12_000, d=5, seed=0, burst=300)
    cp = s.change_points[0]
    det, f = _flags(s.X)
    assert f[cp : cp + 300].all()
    assert det.regime_changes_ == 0
    assert f[cp + 300 :].mean() < 3 * det.alert_rate


def test_recurring_regime_is_remembered() -> None:
    s = recurring_drift(n=17_000, d=5, seed=0, period=4000)
    det, f = _flags(s.X)
    cost = [int(f[c : c + 2000].sum()) for c in s.change_points]
    assert det.regime_changes_ == 1  # only the first visit of the new regime
    assert cost[0] >= 300  # the first switch is alarmed ...
    assert max(cost[1:]) <= 20  # ... the returns are known regimes (before: ~1000 each)


def test_drifting_fault_is_not_taken_for_a_new_regime() -> None:
    """A reading that keeps running away is incoherent (its older half does not explain its
    newer half): the early path refuses it; only the slow regime_patience path may accept."""
    s = null_stream(n=10_900, d=5, seed=0)
    X = s.X.copy()
    a = 10_000
    X[a:, 0] += 6.0 + 0.02 * np.arange(len(X) - a)
    det, f = _flags(X)
    assert f[a:].mean() > 0.98
    assert det.regime_changes_ == 0


def test_scattered_faults_are_not_taken_for_a_new_regime() -> None:
    """Stationary but far broader than any known component: not a compact new cluster."""
    s = null_stream(n=10_900, d=5, seed=0)
    X = s.X.copy()
    rng = np.random.default_rng(1)
    a = 10_000
    X[a:] += rng.normal(0.0, 15.0, size=(len(X) - a, 5))
    det, f = _flags(X)
    assert f[a:].mean() > 0.9
    assert det.regime_changes_ == 0  # (the slow path accepts it after ~1000 events)


def test_the_early_path_can_be_turned_off() -> None:
    s = abrupt_drift(n=12_000, d=5, seed=0)
    (cp,) = s.change_points
    det, f = _flags(s.X, regime_min_events=2000)  # >= regime_patience: slow path only
    assert f[cp : cp + 900].mean() > 0.95 and det.regime_changes_ == 1


def test_add_components_keeps_the_old_regime_and_respects_max_components() -> None:
    rng = np.random.default_rng(0)
    m = OnlineGMM(n_components=3, max_components=4, n_warmup=600, random_state=0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    m.partial_fit(centres[rng.integers(0, 3, 600)] + rng.normal(size=(600, 2)))
    old = m.score_samples(centres)
    new = np.array([[30.0, 30.0], [32.5, 30.0]])
    m.add_components(new[rng.integers(0, 2, 400)] + rng.normal(size=(400, 2)), weight=0.5)
    assert m.n_components_ == 4
    assert np.isclose(m.weights_.sum(), 1.0)
    # the new regime is explained, the old one lost at most the weight it gave up (and the
    # merged pair: the new regime's two modes share one component when only 4 are allowed)
    assert np.all(m.score_samples(centres) > old - np.log(2.0) - 0.5)
    assert m.score_samples(new).min() > -10.0
    m2 = OnlineGMM.from_state(m.to_state())
    X = rng.normal(size=(50, 2))
    m.partial_fit(X)
    m2.partial_fit(X)
    assert np.array_equal(m.means_, m2.means_) and np.array_equal(m.weights_, m2.weights_)


def test_the_early_path_is_off_by_default_so_a_long_coherent_fault_keeps_alarming() -> None:
    # a stuck sensor group: 900 events at one wrong operating point (shorter than the slow
    # path's regime_patience * regime_fraction)
    s = abrupt_drift(n=8_000, d=5, seed=1)
    (cp,) = s.change_points
    X = s.X[: cp + 900]
    det = Detector(alert_rate=1e-3, warmup=WARMUP, random_state=0)
    f = np.concatenate([det.process(X[i : i + 4]).is_anomaly for i in range(0, len(X), 4)])
    assert det.regime_min_events is None and det.regime_changes_ == 0
    assert f[cp : cp + 900].mean() > 0.95  # flagged throughout, never learned
    _, f_on = _flags(X)
    assert f_on[cp + 600 : cp + 900].mean() < 0.05  # opt-in: accepted as a new regime
