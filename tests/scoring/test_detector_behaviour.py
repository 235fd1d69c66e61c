"""Detector end to end: false-alarm calibration, protection, regime changes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture  # type: ignore[import-untyped]
from testkit.gmm import Mixture, random_mixture

from streamem import Detector, InvalidInputError, OnlineGMM
from streamem.scoring.result import DetectionResult


def _flagged_rate(alert_rate: float, seed: int, n_events: int = 1_000_000) -> float:
    rng = np.random.default_rng(seed)
    mix = random_mixture(rng, 3, 5)
    det = Detector(alert_rate=alert_rate, random_state=seed)  # default settings
    flagged = scored = 0
    for _ in range(n_events // 1024):
        res = det.process(mix.sample(rng, 1024))
        flagged += int(res.is_anomaly.sum())
        scored += int((~res.warming_up).sum())
    assert det.regime_changes_ == 0
    return flagged / scored


@pytest.mark.slow
@pytest.mark.parametrize("alert_rate", [1e-3, 1e-4])
def test_flagged_fraction_on_a_million_normal_events(alert_rate: float) -> None:
    rate = _flagged_rate(alert_rate, seed=0)
    assert alert_rate / 2 <= rate <= 2 * alert_rate, rate


def _model_ll(det: Detector, H: np.ndarray) -> float:
    """Held-out mean log-likelihood of the detector's model, in original units."""
    Z = det.scaler_.transform(H)
    return float(np.mean(det.model_.score_samples(Z) - np.log(det.scaler_.scale_).sum()))


@pytest.mark.parametrize("shift", [2.0, 10.0])
def test_protected_detector_adapts_within_three_half_lives(shift: float) -> None:
    """Moderate shift: adapts by learning the events it does not flag. Large shift: nearly
    everything is flagged, so the protected model cannot learn; the regime logic refits."""
    rng = np.random.default_rng(1)
    d, K, h = 3, 3, 5000
    old = random_mixture(rng, K, d)
    new = Mixture(old.weights, old.means + shift * rng.normal(size=(1, d)) / np.sqrt(d),
                  old.covariances * 1.5)
    det = Detector(half_life=h, n_components=K, protect_model=True, random_state=0)
    for _ in range(5 * h // 1000):
        det.process(old.sample(rng, 1000))
    H = new.sample(rng, 4000)
    reference = GaussianMixture(K, random_state=0).fit(new.sample(rng, 20_000)).score(H)
    gap0 = (reference - _model_ll(det, H)) / abs(reference)
    flags = []
    for _ in range(3 * h // 1000):
        flags.append(det.process(new.sample(rng, 1000)).is_anomaly.mean())
    gap3 = (reference - _model_ll(det, H)) / abs(reference)
    assert flags[0] > 20 * det.alert_rate  # the change is seen
    assert gap0 > 0.1
    assert gap3 < 0.03, (gap0, gap3)
    assert np.mean(flags[-5:]) < 3 * det.alert_rate  # back to normal alerting
    assert (det.regime_changes_ >= 1) == (shift > 5)


def test_without_regime_logic_a_protected_model_alarms_forever() -> None:
    """The counterfactual that motivates the regime logic: with both paths out of reach
    (regime_patience and regime_min_events), a large shift is flagged for good, because
    flagged events are never learned."""
    rng = np.random.default_rng(2)
    old = random_mixture(rng, 2, 3)
    new = Mixture(old.weights, old.means + 10.0, old.covariances)
    det = Detector(half_life=2000, n_components=2, regime_patience=10**6,
                   regime_min_events=10**6, random_state=0)
    det.process(old.sample(rng, 5000))
    rates = [det.process(new.sample(rng, 1000)).is_anomaly.mean() for _ in range(10)]
    assert min(rates) > 0.99 and det.regime_changes_ == 0


def test_flagged_events_are_not_learned() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 3))
    protected = Detector(warmup=1000, random_state=0)
    open_ = Detector(warmup=1000, protect_model=False, random_state=0)
    for det in (protected, open_):
        det.process(X)
    batch = rng.normal(size=(64, 3))
    batch[::8] = 50.0  # gross outliers
    learned_before = protected.n_learned_
    r1, r2 = protected.process(batch), open_.process(batch)
    assert r1.is_anomaly[::8].all() and r2.is_anomaly[::8].all()
    assert np.array_equal(r1.learned, ~r1.is_anomaly)
    assert r2.learned.all()
    assert protected.n_learned_ - learned_before == int((~r1.is_anomaly).sum())
    # the open detector's model moved towards the outliers, the protected one did not
    far = np.full((1, 3), 50.0)
    ll_p = protected.model_.score_samples(protected.scaler_.transform(far))[0]
    ll_o = open_.model_.score_samples(open_.scaler_.transform(far))[0]
    assert ll_o > ll_p + 10


def test_warm_up_results_and_counters() -> None:
    det = Detector(warmup=100, random_state=0)
    res = det.process(np.random.default_rng(0).normal(size=(150, 2)))
    assert isinstance(res, DetectionResult)
    assert res.warming_up[:100].all() and not res.warming_up[100:].any()
    # the cold start: the first 31 events are not scored, every later one is
    assert np.isnan(res.scores[:31]).all() and np.isfinite(res.scores[31:]).all()
    assert det.ready_ and det.n_events_ == 150
    s = slice(31, None)
    assert np.allclose(res.tail_probability[s], 10.0 ** -res.surprise[s])
    assert np.array_equal(res.is_anomaly[s], res.tail_probability[s] < res.threshold[s])
    assert np.all((res.severity[s] >= 0) & (res.severity[s] <= 100))


BAD_ROWS = [
    (np.inf, "inf"),
    (-np.inf, "inf"),
]


def _bad_batches(d: int) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(0)
    out = []
    for value, word in BAD_ROWS:
        X = rng.normal(size=(10, d))
        X[6, 1] = value
        out.append((X, word))
    X = rng.normal(size=(10, d))
    X[6] = np.nan
    out.append((X, "missing"))
    out.append((rng.normal(size=(10, d + 1)), "features"))
    return out


def _state_equal(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_state_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
    return a == b or (a != a and b != b)


@pytest.mark.parametrize("phase", ["warming", "ready", "pending"])
def test_bad_input_raises_and_leaves_the_detector_untouched(phase: str) -> None:
    rng = np.random.default_rng(1)
    det = Detector(warmup=200, random_state=0)
    det.process(rng.normal(size=(50 if phase == "warming" else 300, 3)))
    if phase == "pending":
        det.process(rng.normal(size=(5, 3)))
        assert len(det.pending_)
    for X, word in _bad_batches(3):
        before = det.to_state()
        with pytest.raises(InvalidInputError) as err:
            det.process(X)
        msg = str(err.value)
        assert word in msg
        if word != "features":
            assert "row 6" in msg  # names the row ...
        assert any(fix in msg for fix in ("replace", "drop", "send the same")), msg  # ... and a fix
        assert _state_equal(det.to_state(), before)


@pytest.mark.parametrize("fitted", [False, True])
def test_bad_input_leaves_online_gmm_untouched(fitted: bool) -> None:
    rng = np.random.default_rng(2)
    m = OnlineGMM(n_components=2, n_warmup=100, random_state=0)
    m.partial_fit(rng.normal(size=(150 if fitted else 40, 3)))
    for X, word in _bad_batches(3):
        before = m.to_state()
        with pytest.raises(InvalidInputError, match=word):
            m.partial_fit(X)
        assert _state_equal(m.to_state(), before)
        if fitted:
            with pytest.raises(InvalidInputError):
                m.score_samples(X)


def test_bad_explain_input() -> None:
    det = Detector(warmup=100, random_state=0)
    det.process(np.random.default_rng(0).normal(size=(150, 2)))
    with pytest.raises(InvalidInputError, match="row 0"):
        det.explain(np.array([np.nan, np.nan]))
    with pytest.raises(InvalidInputError, match="features"):
        det.explain(np.zeros(3))


def test_empty_batches_are_no_ops_in_every_phase() -> None:
    det = Detector(warmup=50, random_state=0)
    rng = np.random.default_rng(0)
    for X in (np.empty((0, 3)), rng.normal(size=(30, 3)), np.empty((0, 3)),
              rng.normal(size=(40, 3)), np.empty((0, 3))):
        before = det.to_state()
        res = det.process(X)
        assert len(res) == len(X)
        if len(X) == 0:
            assert _state_equal(det.to_state(), before)
    assert det.ready_ and det.n_events_ == 70
