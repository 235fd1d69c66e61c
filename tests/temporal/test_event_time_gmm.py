"""Event-time forgetting in OnlineGMM and Detector: irregular gaps against a naive sum,
the state round trip, old states, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamem import Detector, InvalidInputError
from streamem.model.gmm import OnlineGMM

H = 3600.0


def _naive(X: np.ndarray, ts: np.ndarray, n0: int, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Event-time exponentially weighted mean and covariance, one event at a time: the
    warm-up events weigh 1 at the warm-up's last time; every later gap decays all."""
    clock = ts[:n0].max()
    w = np.ones(n0)
    for t in ts[n0:]:
        gap = max(t - clock, 0.0)
        clock = max(clock, t)
        w = np.append(w * 2.0 ** (-gap / h), 1.0)
    mu = (w[:, None] * X).sum(0) / w.sum()
    D = X - mu
    return mu, (w[:, None, None] * np.einsum("ni,nj->nij", D, D)).sum(0) / w.sum()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([1, 7, 32]))
def test_single_component_matches_event_time_weighted_moments(seed: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    n0, n = 40, 150
    gaps = rng.choice([0.0, 1.0, 60.0, 3 * H, 10 * H], size=n0 + n)
    ts = np.cumsum(gaps)
    X = rng.normal(size=(n0 + n, 2)) + (ts[:, None] > ts[n0 + n // 2]) * 3.0
    m = OnlineGMM(n_components=1, n_warmup=n0, half_life="1h", rho_max=1.0, random_state=0)
    m.partial_fit(X[:n0], timestamps=ts[:n0])
    for i in range(n0, n0 + n, batch):
        m.partial_fit(X[i:i + batch], timestamps=ts[i:i + batch])
    mu, C = _naive(X, ts, n0, H)
    np.testing.assert_allclose(m._mu[0], mu, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m._C[0], C, rtol=1e-7, atol=1e-9)


def test_one_quiet_hour_decays_as_much_as_a_busy_one() -> None:
    """Same events, same end time: the statistics depend on the time, not the count."""
    rng = np.random.default_rng(1)
    X0 = rng.normal(size=(200, 1))

    def run(n_between: int) -> float:
        m = OnlineGMM(n_components=1, n_warmup=200, half_life="1h", random_state=0)
        m.partial_fit(X0, timestamps=np.zeros(200))
        filler = np.full((n_between, 1), 0.0)
        m.partial_fit(filler, timestamps=np.linspace(1.0, H - 1.0, n_between))
        m.partial_fit(np.array([[5.0]]), timestamps=np.array([H]))
        return float(m._forget.mass)

    def expected(n_between: int) -> float:
        t = np.linspace(1.0, H - 1.0, n_between)
        return 200 * 0.5 + float(np.exp2(-(H - t) / H).sum()) + 1.0

    # the warm-up's 200 weigh 100 after an hour, whatever happened in between
    assert run(1) == pytest.approx(expected(1), rel=1e-12)
    assert run(50) == pytest.approx(expected(50), rel=1e-12)


def test_late_and_unknown_times_decay_nothing() -> None:
    m = OnlineGMM(n_components=1, n_warmup=50, half_life="1h", random_state=0)
    m.partial_fit(np.random.default_rng(0).normal(size=(50, 2)), timestamps=np.full(50, 10 * H))
    m.partial_fit(np.zeros((3, 2)), timestamps=np.array([0.0, np.nan, 10 * H]))
    assert m._forget.clock == 10 * H and m._forget.mass == pytest.approx(53.0)


def test_detector_event_time_state_round_trip_is_exact() -> None:
    rng = np.random.default_rng(2)
    ts = np.cumsum(rng.exponential(30.0, size=3000))
    X = rng.normal(size=(3000, 3))
    a = Detector(warmup=300, half_life="2h", random_state=0)
    a.process(X[:1500], times=ts[:1500])
    b = Detector.from_state(a.to_state())
    ra, rb = a.process(X[1500:], times=ts[1500:]), b.process(X[1500:], times=ts[1500:])
    assert np.array_equal(ra.scores, rb.scores, equal_nan=True)
    assert np.array_equal(a.model_._mu, b.model_._mu)
    assert a.model_._forget.clock == b.model_._forget.clock
    assert a.model_._forget.mass == b.model_._forget.mass


def test_detector_learns_in_event_time_and_forgets_a_quiet_day() -> None:
    """A day of silence (24 half-lives) ages the statistics by a day."""
    rng = np.random.default_rng(3)
    n = 2000
    ts = np.arange(n, dtype=float)
    X = rng.normal(size=(n, 2))
    det = Detector(warmup=500, half_life="1h", random_state=0)
    det.process(X, times=ts)
    assert ts[-100] <= det.model_._forget.clock <= ts[-1]   # learned up to the last events
    mass_before = det.model_._forget.mass
    det.process(rng.normal(size=(64, 2)), times=ts[-1] + 24 * H + np.arange(64))
    assert det.model_._forget.mass < 64 + mass_before * 2.0 ** -23   # only the new events weigh


def test_duration_half_life_without_times_names_the_fix() -> None:
    det = Detector(warmup=100, half_life="7d")
    with pytest.raises(InvalidInputError, match="pass times="):
        det.process(np.zeros((5, 2)))
    with pytest.raises(InvalidInputError, match="half_life='soon'"):
        Detector(half_life="soon")
    with pytest.raises(InvalidInputError, match="times has 2 entries for 5 events"):
        det.process(np.zeros((5, 2)), times=np.zeros(2))


def test_count_half_life_ignores_times_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1500, 2))
    a, b = Detector(warmup=300, random_state=0), Detector(warmup=300, random_state=0)
    ra = a.process(X)
    rb = b.process(X, times=np.arange(1500.0) * 1e3)
    assert np.array_equal(ra.scores, rb.scores, equal_nan=True)


def test_old_state_without_forgetting_still_loads() -> None:
    rng = np.random.default_rng(5)
    det = Detector(warmup=300, random_state=0)
    det.process(rng.normal(size=(600, 2)))
    state = det.to_state()
    assert "forgetting" not in state["model"] and "warm_clock" not in state   # the 0.1 layout
    det2 = Detector.from_state(state)
    X = rng.normal(size=(100, 2))
    assert np.array_equal(det.process(X).scores, det2.process(X).scores)
