"""Drift tolerance for slow features (``detrend_half_life``) and score smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from testkit.gmm import assert_state_equal, same_result

from streamem import Detector, InvalidInputError
from streamem.evaluation.scenarios import null_stream
from streamem.scoring.baseline import SlowBaseline, fit_half_life, lag1_autocorrelation

N, WARM = 21_000, 1000


def _slow_stream(seed: int) -> np.ndarray:
    """Three noise-like features (two correlated) and one slow random walk (a temperature)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 4))
    X[:, 1] += 0.6 * X[:, 0]
    X[:, 3] = np.cumsum(rng.normal(0, 0.05, N)) + rng.normal(0, 0.02, N)
    return X


def _with_abrupt_anomalies(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 100)
    idx = np.sort(rng.choice(np.arange(2 * WARM, N), 50, replace=False))
    Xa = X.copy()
    Xa[idx, :3] += 6.0  # an abrupt multi-feature anomaly
    return Xa, idx


@pytest.mark.parametrize("seed", [0, 1])
def test_slow_feature_drift_does_not_explode_the_false_alarm_rate(seed: int) -> None:
    X = _slow_stream(seed)
    Xa, idx = _with_abrupt_anomalies(X, seed)
    normal = np.ones(N, dtype=bool)
    normal[:WARM] = False
    normal[idx] = False
    off = Detector(warmup=WARM, alert_rate=1e-3, random_state=0, detrend_half_life=None)
    on = Detector(warmup=WARM, alert_rate=1e-3, random_state=0, detrend_half_life=10)
    r_off, r_on = off.process(Xa), on.process(Xa)
    assert on.baseline_ is not None and on.baseline_.slow_.tolist() == [False] * 3 + [True]
    assert r_off.is_anomaly[normal].mean() > 0.05  # the walk leaves the warm-up range
    assert r_on.is_anomaly[normal].mean() < 3e-3  # about alert_rate
    assert r_on.is_anomaly[idx].mean() >= 0.95  # abrupt anomalies are still caught


def test_an_abrupt_jump_of_a_slow_feature_is_still_flagged() -> None:
    X = _slow_stream(0)
    X[15_000:, 3] += 5.0  # a step of 100 random-walk steps at once
    r = Detector(warmup=WARM, alert_rate=1e-3, random_state=0, detrend_half_life=10).process(X)
    assert r.is_anomaly[15_000:15_010].all()
    assert r.is_anomaly[15_100:16_000].mean() < 3e-3  # the baseline has caught up


def test_streams_without_slow_features_are_not_affected() -> None:
    X = null_stream(5000, 4, 0).X
    a = Detector(warmup=WARM, random_state=0, detrend_half_life=10)
    b = Detector(warmup=WARM, random_state=0)  # the default: off
    same_result(a.process(X), b.process(X))
    assert a.baseline_ is not None and not a.baseline_.active


def test_baseline_batches_agree_with_one_event_at_a_time() -> None:
    rng = np.random.default_rng(0)
    X = np.cumsum(rng.normal(size=(300, 2)), axis=0)
    X[rng.random(X.shape) < 0.05] = np.nan
    a, b = SlowBaseline(), SlowBaseline()
    Ra = a.fit_transform(X[:100])
    Rb = b.fit_transform(X[:100])
    assert np.array_equal(Ra, Rb, equal_nan=True)
    Ra = a.transform(X[100:])
    Rb = np.vstack([b.transform(X[i : i + 1]) for i in range(100, 300)])
    np.testing.assert_allclose(Ra, Rb, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.level_, b.level_, rtol=1e-12)


def test_lag1_autocorrelation_separates_noise_from_smooth_signals() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(1000)
    X = np.column_stack([rng.normal(size=1000), np.sin(t / 100) + rng.normal(0, 0.01, 1000),
                         np.full(1000, 3.0)])
    rho = lag1_autocorrelation(X)
    assert abs(rho[0]) < 0.1 and rho[1] > 0.99 and rho[2] == 0.0


def test_explain_judges_a_slow_feature_against_its_baseline() -> None:
    X = _slow_stream(0)
    det = Detector(warmup=WARM, random_state=0, feature_names=["a", "b", "c", "temp"],
                   detrend_half_life=10)
    det.process(X[:5000])
    assert det.baseline_ is not None
    level = float(det.baseline_.level_[3])
    top = {c.name: c for c in det.explain(np.array([0.0, 0.0, 0.0, level]), top=4)}
    assert abs(top["temp"].z) < 3 and abs(top["temp"].expected - level) < 1.0
    jump = det.explain(np.array([0.0, 0.0, 0.0, level + 5.0]))
    assert jump[0].name == "temp"


@pytest.mark.parametrize("alert_rate", [1e-2, 1e-3])
def test_smoothing_keeps_the_null_calibration(alert_rate: float) -> None:
    n = 200_000 if alert_rate == 1e-2 else 500_000
    X = null_stream(n, 5, 0).X
    det = Detector(warmup=WARM, alert_rate=alert_rate, random_state=0, smooth_window=5)
    flagged = [det.process(X[i : i + 1024]).is_anomaly for i in range(0, n, 1024)]
    rate = np.concatenate(flagged)[WARM:].mean()
    assert 0.7 * alert_rate < rate < 1.5 * alert_rate


def test_smoothing_is_a_trailing_mean_across_batches() -> None:
    X = null_stream(3000, 3, 0).X
    raw = Detector(warmup=WARM, random_state=0, learn_every=10_000)  # never learns: same model
    sm = Detector(warmup=WARM, random_state=0, learn_every=10_000, smooth_window=4)
    # from the first scored event on (the cold start's surprises are on the same scale and
    # the smoothing runs through the switch to the mixture)
    u = raw.process(X).surprise[31:]
    s = np.concatenate([sm.process(X[:1500]).surprise, sm.process(X[1500:1501]).surprise,
                        sm.process(X[1501:]).surprise])[31:]
    expected = np.convolve(u, np.ones(4))[: u.size] / np.minimum(np.arange(1, u.size + 1), 4)
    np.testing.assert_allclose(s, expected, rtol=1e-12)
    # a single extreme event is still flagged
    big = sm.process(np.array([[40.0, -40.0, 40.0]]))
    assert big.is_anomaly[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_half_life_follows_a_walk_closely_and_keeps_the_calibration(seed: int) -> None:
    X = _slow_stream(seed)
    Xa, idx = _with_abrupt_anomalies(X, seed)
    normal = np.ones(N, dtype=bool)
    normal[:WARM] = False
    normal[idx] = False
    det = Detector(warmup=WARM, alert_rate=1e-3, random_state=0, detrend_half_life="auto")
    r = det.process(Xa)
    b = det.baseline_
    assert b is not None and b.slow_.tolist() == [False] * 3 + [True]
    # the walk's steps (sd 0.05) dominate its measurement noise (sd 0.02): a short half-life
    assert b.half_lives_[3] <= 3.0
    assert r.is_anomaly[normal].mean() < 3e-3
    assert r.is_anomaly[idx].mean() >= 0.95


def test_auto_half_life_is_the_least_squares_one_step_forecast() -> None:
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 0.05, 2000))
    noisy = walk + rng.normal(0, 0.5, 2000)  # noise dominates: average over more events
    assert fit_half_life(walk) <= 1.0
    assert fit_half_life(noisy) >= 10.0
    b = SlowBaseline(half_life="auto")
    R = b.fit_transform(np.column_stack([walk, noisy]))
    assert b.slow_.tolist() == [True, True]
    assert b.half_lives_.tolist() == [fit_half_life(walk), fit_half_life(noisy)]
    for j, x in enumerate((walk, noisy)):  # each column filtered with its own half-life
        lam = 2.0 ** (-1.0 / b.half_lives_[j])
        level, expected = x[0], np.zeros_like(x)
        for t in range(1, x.size):
            expected[t] = x[t] - level
            level = lam * level + (1.0 - lam) * x[t]
        np.testing.assert_allclose(R[:, j], expected, rtol=1e-9, atol=1e-12)


def test_a_held_jump_alarms_for_fewer_events_with_auto_than_with_half_life_10() -> None:
    X = _slow_stream(0)
    X[15_000:, 3] += 5.0
    flags = {}
    for hl in (10.0, "auto"):
        det = Detector(warmup=WARM, alert_rate=1e-3, random_state=0, detrend_half_life=hl)
        flags[hl] = det.process(X).is_anomaly[15_000:15_200]
    assert flags["auto"][0] and flags[10.0][0]
    assert 0 < flags["auto"].sum() < flags[10.0].sum()


@pytest.mark.parametrize("half_life", [10, "auto"])
def test_round_trip_with_a_slow_feature_and_smoothing(half_life: float | str) -> None:
    X = _slow_stream(0)[:3000]
    X[np.random.default_rng(0).random(X.shape) < 0.03] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    sizes = [1] * 40 + [7] * 30 + [60] * 40
    a = Detector(warmup=200, learn_every=8, random_state=0, smooth_window=3,
                 detrend_half_life=half_life)  # type: ignore[arg-type]
    pos = 0
    for n in sizes:
        state = a.to_state()
        b = Detector.from_state(state)
        assert_state_equal(b.to_state(), state)
        batch = X[pos : pos + n]
        pos += n
        same_result(a.process(batch), b.process(batch))
        assert_state_equal(a.to_state(), b.to_state())
    assert a.baseline_ is not None and a.baseline_.active


def test_snapshots_from_before_drift_tolerance_load_with_it_off() -> None:
    det = Detector(warmup=50, random_state=0, detrend_half_life=None)
    det.process(null_stream(200, 2, 0).X)
    old = det.to_state()
    del old["baseline"], old["recent_surprise"]
    for key in ("detrend_half_life", "detrend_min_autocorr", "smooth_window"):
        del old["params"][key]
    restored = Detector.from_state(old)
    assert restored.baseline_ is None and restored.smooth_window == 1
    X = null_stream(100, 2, 1).X
    same_result(det.process(X), restored.process(X))


@pytest.mark.parametrize(
    "kw", [{"detrend_half_life": 0.0}, {"detrend_half_life": "automatic"},
           {"detrend_min_autocorr": 2.0}, {"smooth_window": 0}, {"smooth_window": 2.5}]
)
def test_bad_parameters_raise(kw: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        Detector(**kw)  # type: ignore[arg-type]


def test_drift_tolerance_is_off_by_default_and_the_daemon_config_turns_it_on() -> None:
    from streamem.config import parse_config
    from streamem.runtime.build import new_detector

    X = _slow_stream(0)[:3000]
    det = Detector(warmup=WARM, random_state=0)
    det.process(X)
    assert det.baseline_ is None
    base = {"source": {"type": "stdin"}, "fields": {"features": ["a", "b", "c", "d"]},
            "model": {"warmup": WARM, "random_state": 0}}
    assert new_detector(parse_config(base)).baseline_ is None
    on = new_detector(parse_config({**base, "detector": {"detrend_half_life": 10,
                                                          "smooth_window": 3}}))
    on.process(X)
    assert on.smooth_window == 3
    assert on.baseline_ is not None and on.baseline_.slow_.tolist() == [False] * 3 + [True]
    auto = new_detector(parse_config({**base, "detector": {"detrend_half_life": "auto"}}))
    auto.process(X)
    assert auto.baseline_ is not None and auto.baseline_.half_life == "auto"
    assert auto.baseline_.half_lives_[3] <= 3.0


def test_baseline_snapshots_from_before_per_feature_half_lives_load() -> None:
    X = _slow_stream(0)[:600]
    a = SlowBaseline(half_life=10.0)
    a.fit_transform(X[:300])
    old = a.to_state()
    del old["half_lives"]
    b = SlowBaseline.from_state(old)
    np.testing.assert_array_equal(a.transform(X[300:]), b.transform(X[300:]))
