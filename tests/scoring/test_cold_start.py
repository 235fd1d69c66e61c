"""The cold start: every event scored from the 32nd on, honestly calibrated, through the switch
to the mixture; only normal events are learned; a snapshot mid-way continues bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from streamem import Detector
from streamem.model._student import StudentT
from streamem.scoring.coldstart import MIN_EVENTS


def _correlated(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    A = rng.normal(size=(d, d))
    return np.asarray(rng.normal(size=(n, d)) @ A * 5.0 + 100.0)


@pytest.mark.parametrize("batch", [1, 7, 64, 1500])
def test_defaults_score_every_event_from_the_32nd_on_and_through_the_switch(batch: int) -> None:
    rng = np.random.default_rng(batch)
    X = _correlated(rng, 1500, 4)
    det = Detector(random_state=0)  # defaults: warmup=1000
    parts = [det.process(X[i : i + batch]) for i in range(0, len(X), batch)]
    scores = np.concatenate([p.scores for p in parts])
    warming = np.concatenate([p.warming_up for p in parts])
    flagged = np.concatenate([p.is_anomaly for p in parts])
    assert np.isnan(scores[: MIN_EVENTS - 1]).all()
    assert np.isfinite(scores[MIN_EVENTS - 1 :]).all()  # no gap at the hand-over either
    assert det.ready_
    # warming_up marks the events scored under the provisional model (and the 31 unscored)
    n_warm = int(warming.sum())
    assert warming[:n_warm].all() and not warming[n_warm:].any()
    assert 1000 <= n_warm <= 1000 + int(flagged[:n_warm].sum())
    assert flagged.mean() < 0.01


def test_a_25_sigma_reading_at_event_200_is_flagged_severely_and_not_learned() -> None:
    rng = np.random.default_rng(3)
    X = _correlated(rng, 400, 3)
    sd = X[:199].std(axis=0)
    X[199] = X[:199].mean(axis=0) + 25.0 * sd * np.array([1.0, 0.0, 0.0])
    det = Detector(random_state=0)
    res = det.process(X)
    assert res.warming_up[199] and res.is_anomaly[199] and not res.learned[199]
    assert res.severity[199] == 100.0
    assert res.tail_probability[199] < 1e-12
    assert int(res.is_anomaly.sum()) <= 2
    assert len(det.cold_.buffer()) == 400 - int((~res.learned).sum())


def test_a_set_smaller_than_the_warm_up_is_scored_and_ranks_its_anomalies() -> None:
    rng = np.random.default_rng(4)
    X = _correlated(rng, 300, 5)
    idx = rng.choice(np.arange(40, 300), 6, replace=False)
    X[idx] += 8.0 * X.std(axis=0)
    res = Detector(random_state=0).process(X)
    assert np.isfinite(res.scores[31:]).all()
    assert set(np.flatnonzero(res.is_anomaly)) == set(idx.tolist())


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_the_student_t_tail_is_calibrated_from_the_first_events(covariance_type: str) -> None:
    """Averaged over training sets, the predictive's tail probability is uniform: the
    fraction of new events below p is p, at n = 31 as at n = 300 (no threshold fitted)."""
    rng = np.random.default_rng(0)
    for n in (31, 300):
        rates = []
        for _ in range(100):
            st = StudentT(rng.normal(size=(n, 4)), covariance_type)
            _, log_tail = st.estimate(rng.normal(size=(4000, 4)))
            rates.append([np.mean(log_tail < np.log(q)) for q in (0.1, 0.01)])
        r = np.mean(rates, axis=0)
        assert 0.08 < r[0] < 0.12 and 0.007 < r[1] < 0.013, (n, r)


def test_cold_start_false_alarms_stay_at_or_below_the_alert_rate() -> None:
    flagged = scored = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        res = Detector(alert_rate=0.01, random_state=seed).process(_correlated(rng, 1000, 3))
        flagged += int(res.is_anomaly.sum())
        scored += int(np.isfinite(res.scores).sum())
    assert 0.003 < flagged / scored < 0.015


def test_a_new_operating_point_during_the_warm_up_is_learned_not_alarmed_forever() -> None:
    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(size=(200, 2)), rng.normal(size=(3000, 2)) + 40.0])
    det = Detector(regime_patience=400, random_state=0)
    res = det.process(X)
    assert det.ready_
    assert res.is_anomaly[-500:].mean() < 0.01


def test_mild_alarms_of_the_provisional_model_are_learned_gross_outliers_are_not() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(600, 2))
    X[300] = [4.2, 0.0]  # flagged at alert_rate 1e-2 (p ~ 1e-4), not gross (p > 1e-4)
    X[400] = [30.0, 0.0]  # gross
    res = Detector(alert_rate=1e-2, random_state=0).process(X)
    assert res.is_anomaly[300] and res.learned[300]
    assert res.is_anomaly[400] and not res.learned[400]


def test_smoothing_applies_in_the_cold_start() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(600, 3))
    X[300:306] += 4.0  # a sustained moderate shift: smoothed, it stands out
    X[200] += 2.8  # an isolated moderate outlier (p ~ 3e-5): smoothed away
    res = Detector(alert_rate=1e-3, smooth_window=5, random_state=0).process(X)
    assert res.warming_up[300] and res.is_anomaly[303:306].all()
    assert not res.is_anomaly[200]
    assert Detector(alert_rate=1e-3, random_state=0).process(X).is_anomaly[200]


def test_snapshot_mid_cold_start_continues_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    X = _correlated(rng, 1400, 3)
    X[300] += 50.0
    a = Detector(learn_every=16, random_state=0)
    a.process(X[:90])  # 59 events scored under the provisional model, mid-refresh
    b = Detector.from_state(a.to_state())
    for i in range(90, 1400, 37):
        ra, rb = a.process(X[i : i + 37]), b.process(X[i : i + 37])
        assert np.array_equal(ra.scores, rb.scores, equal_nan=True)
        assert np.array_equal(ra.is_anomaly, rb.is_anomaly)
    assert a.ready_ and b.ready_


@pytest.mark.parametrize("d", [3, 60])  # full, then diagonal (60 features: full infeasible)
def test_missing_readings_in_the_cold_start_are_marginalised(d: int) -> None:
    rng = np.random.default_rng(10)
    X = _correlated(rng, 700, d) if d < 10 else rng.normal(size=(700, d)) * 3.0 + 7.0
    X[rng.random(X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    X[500, 0] = np.nanmean(X[:, 0]) + 40.0 * np.nanstd(X[:, 0])
    det = Detector(random_state=0)
    res = det.process(X)
    assert np.isfinite(res.scores[31:]).all() and res.is_anomaly[500]
    assert res.is_anomaly.sum() <= 3


def test_an_operating_point_first_seen_mid_warm_up_is_learned_before_the_mixture() -> None:
    """A daily cycle whose busy half first shows after 150 events (NAB's art_daily_* shape):
    the provisional model calls the busy half gross, but it fills the warm-up's regime
    window (a tenth of the warm-up), so it is learned, and the mixture knows both halves.
    With a window of ``regime_patience`` (2000, longer than the warm-up) it was never learned
    and the mixture flagged the busy half for good (45 % of all events)."""
    rng = np.random.default_rng(11)
    t = np.arange(4000)
    busy = (t % 288) >= 150
    x = np.where(busy, 75.0 + 5.0 * rng.normal(size=t.size), 20.0 + rng.normal(size=t.size))
    det = Detector(random_state=0)
    flagged = np.concatenate(
        [det.process(x[i : i + 64, None]).is_anomaly for i in range(0, t.size, 64)]
    )
    assert det.ready_
    assert flagged[1500:].mean() < 0.01
    assert flagged[1500:][busy[1500:]].mean() < 0.01
