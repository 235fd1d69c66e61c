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
