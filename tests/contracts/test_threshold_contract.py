"""Contract suite for every ``Threshold`` implementation in ``streamem.scoring.threshold``.

To add an implementation, append a factory to ``IMPLEMENTATIONS``. Scores are surprises
``u = -log10(tail probability)``; for a calibrated model ``u ~ Exp(ln 10)``, so the right
threshold for alert rate ``q`` is ``-log10(q)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from streamem.errors import InvalidInputError
from streamem.scoring.threshold import FixedThreshold, SpotThreshold, Threshold

Factory = Callable[[float], Any]
IMPLEMENTATIONS: dict[str, Factory] = {
    "spot": lambda q: SpotThreshold(q=q),
    "fixed": lambda q: FixedThreshold(q=q),
}
LN10 = math.log(10.0)


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make(request: pytest.FixtureRequest) -> Factory:
    return IMPLEMENTATIONS[request.param]


def _calibrated(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.exponential(1.0 / LN10, n)


def _run(th: Any, rng: np.random.Generator, n_batches: int, batch: int = 1000) -> float:
    """Stream calibrated scores through the contract loop; returns the flagged fraction."""
    flagged = 0
    for _ in range(n_batches):
        u = _calibrated(rng, batch)
        flags = u > th.threshold_
        flagged += int(flags.sum())
        th.update(u, flags)
    return flagged / max(n_batches * batch, 1)


def test_satisfies_the_protocol(make: Factory) -> None:
    th = make(1e-3)
    assert isinstance(th, Threshold)
    assert isinstance(th.threshold_, float)


def test_threshold_before_fit_is_the_model_calibrated_value(make: Factory) -> None:
    assert make(1e-3).threshold_ == pytest.approx(3.0)
    assert make(1e-4).threshold_ == pytest.approx(4.0)


@pytest.mark.parametrize("q", [0.0, -1e-3, 0.7, float("nan")])
def test_rejects_invalid_rate(make: Factory, q: float) -> None:
    with pytest.raises(InvalidInputError, match="q="):
        make(q)


@pytest.mark.parametrize("q", [1e-2, 1e-3])
def test_fit_on_calibrated_scores_gives_minus_log10_q(make: Factory, q: float) -> None:
    th = make(q)
    th.fit(_calibrated(np.random.default_rng(0), 20_000))
    assert abs(th.threshold_ - (-math.log10(q))) < 0.35


@pytest.mark.parametrize("q", [1e-2, 1e-3])
def test_stream_flags_about_q(make: Factory, q: float) -> None:
    th = make(q)
    rate = _run(th, np.random.default_rng(1), 300)
    assert q / 2 <= rate <= 2 * q, rate


def test_gross_anomalies_do_not_move_the_threshold(make: Factory) -> None:
    rng = np.random.default_rng(2)
    th = make(1e-3)
    _run(th, rng, 50)
    before = th.threshold_
    huge = np.full(500, 1e3)
    th.update(huge, huge > th.threshold_)
    assert th.threshold_ == before


def test_tail_follows_a_heavier_score_distribution() -> None:
    """SPOT (unlike the fixed threshold) adapts when the scores are not calibrated."""
    rng = np.random.default_rng(3)
    th = SpotThreshold(q=1e-3)
    flagged = 0
    n = 0
    for _ in range(400):
        u = rng.exponential(2.0 / LN10, 1000)  # twice as heavy: true quantile is 6
        flags = u > th.threshold_
        th.update(u, flags)
        if th.fitted_:
            flagged += int(flags.sum())
            n += len(u)
    assert th.threshold_ == pytest.approx(6.0, abs=0.8)
    assert 0.5e-3 <= flagged / n <= 2e-3


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k


@pytest.mark.parametrize("n_batches", [0, 1, 7])  # before, during and after live calibration
def test_state_round_trip_continues_identically(make: Factory, n_batches: int) -> None:
    th = make(1e-3)
    _run(th, np.random.default_rng(4), n_batches, batch=700)
    state = th.to_state()
    clone = type(th).from_state(state)
    _same_state(clone.to_state(), state)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(10):
        assert _run(th, rng_a, 1, 700) == _run(clone, rng_b, 1, 700)
        assert th.threshold_ == clone.threshold_
    _same_state(clone.to_state(), th.to_state())


def test_state_is_plain_data(make: Factory) -> None:
    th = make(1e-3)
    _run(th, np.random.default_rng(6), 5)
    for v in th.to_state().values():
        assert v is None or isinstance(v, (bool, int, float, str, np.ndarray)), type(v)


def test_health_names_the_tail_figures(make: Factory) -> None:
    th = make(1e-3)
    _run(th, np.random.default_rng(7), 3)
    health = th.health()
    assert set(health) == {"tail_shape", "tail_scale", "tail_peaks"}
    assert all(isinstance(v, float) for v in health.values())
    assert th.q == 1e-3


class _Median:
    """The smallest threshold that honours the protocol and nothing more: the q-quantile of
    every score seen so far (a test double for the detector's side of the seam)."""

    def __init__(self, q: float = 1e-3) -> None:
        self.q = q
        self._seen: list[np.ndarray] = []
        self.calls: list[str] = []

    @property
    def threshold_(self) -> float:
        if not self._seen:
            return -math.log10(self.q)
        return float(np.quantile(np.concatenate(self._seen), 1.0 - self.q))

    def fit(self, scores: np.ndarray) -> None:
        self._seen = [np.asarray(scores, dtype=float)]

    def update(self, scores: np.ndarray, is_anomaly: np.ndarray) -> None:
        self.calls.append("update")
        self._seen.append(np.asarray(scores)[~is_anomaly])

    def health(self) -> dict[str, float]:
        return {"tail_shape": math.nan, "tail_scale": math.nan, "tail_peaks": math.nan}

    def to_state(self) -> dict[str, Any]:
        return {"kind": "median", "q": self.q}


def _detector(th: Any) -> Any:
    from streamem import Detector

    return Detector(warmup=300, threshold=th, random_state=0)


def test_detector_uses_any_protocol_implementation() -> None:
    rng = np.random.default_rng(8)
    th = _Median(1e-2)
    det = _detector(th)
    X = rng.normal(size=(3000, 2))
    flags = np.concatenate([det.process(X[i : i + 100]).is_anomaly for i in range(0, 3000, 100)])
    assert det.threshold_model_ is th and det.alert_rate == 1e-2
    assert len(th.calls) == 27  # every live batch reported back (learn_every=32 < 100)
    assert 0.002 < flags[300:].mean() < 0.05
    assert det.health()["tail_shape"] != det.health()["tail_shape"]  # NaN from health()


@pytest.mark.parametrize("name", ["spot", "fixed"])
def test_detector_state_restores_the_threshold_kind(name: str) -> None:
    from streamem import Detector

    rng = np.random.default_rng(9)
    det = _detector(IMPLEMENTATIONS[name](1e-2))
    det.process(rng.normal(size=(2500, 2)))
    back = Detector.from_state(det.to_state())
    assert type(back.threshold_model_) is type(det.threshold_model_)
    X = rng.normal(size=(700, 2))
    np.testing.assert_array_equal(det.process(X).is_anomaly, back.process(X).is_anomaly)
    assert back.threshold_model_.threshold_ == det.threshold_model_.threshold_


def test_unknown_threshold_kind_is_a_state_error_with_the_fix() -> None:
    from streamem import Detector, StateError

    state = _detector(_Median()).to_state()
    with pytest.raises(StateError, match=r"kind 'median' is not one of \['fixed', 'spot'\]"):
        Detector.from_state(state)


def test_threshold_and_alert_rate_must_agree() -> None:
    from streamem import Detector

    assert Detector(threshold=SpotThreshold(q=1e-2), alert_rate=1e-2).alert_rate == 1e-2
    with pytest.raises(InvalidInputError, match=r"contradicts the threshold's q=0\.01"):
        Detector(threshold=SpotThreshold(q=1e-2), alert_rate=1e-3)
    with pytest.raises(InvalidInputError, match="is not a Threshold"):
        Detector(threshold=0.01)  # type: ignore[arg-type]
    assert type(Detector(alert_rate=1e-4).threshold_model_) is SpotThreshold
    assert Detector(alert_rate=1e-4).threshold_model_.q == 1e-4
