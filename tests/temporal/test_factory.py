"""make_detector: the i.i.d. or the HMM detector behind one calling contract."""

from __future__ import annotations

import numpy as np
import pytest

from streamem import Detector, InvalidInputError
from streamem.scoring.factory import detector_from_state, make_detector
from streamem.scoring.temporal import HMMDetector


def _cycle(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    stages = np.repeat(np.tile([0.0, 5.0, 10.0], n // 30 + 1), 10)[:n]
    return (stages + rng.normal(0, 0.5, n))[:, None]


def test_hmm_detector_honours_the_learn_mask_and_times_keyword() -> None:
    X = _cycle(4000)
    ts = np.arange(4000.0) * 60.0
    det = make_detector(temporal="hmm", n_components=3, warmup=1000, half_life="2d",
                        random_state=0)
    assert isinstance(det, HMMDetector)
    det.process(X[:2000], times=ts[:2000])
    seen = det.hmm.n_seen_
    allow = np.zeros(1000, dtype=bool)
    res = det.process(X[2000:3000], learn=allow, times=ts[2000:3000])
    assert not res.learned.any() and det.hmm.n_seen_ == seen + 1000
    s0 = det.hmm._s0.copy()
    det.process(X[3000:3001], learn=np.zeros(1, bool), times=ts[3000:3001])
    # nothing learned: the statistics only decay by the one-minute gap
    np.testing.assert_allclose(det.hmm._s0, s0 * 2.0 ** (-60.0 / (2 * 86400)), rtol=1e-12)
    with pytest.raises(InvalidInputError, match="learn has shape"):
        det.process(X[:3], learn=np.ones(2, bool), times=ts[:3])


def test_round_trip_through_the_factory_keeps_the_class_and_continues_exactly() -> None:
    X = _cycle(3000, 1)
    for det in (make_detector(warmup=300, random_state=0),
                make_detector(temporal="hmm", n_components=3, warmup=1000, random_state=0)):
        det.process(X[:2000])
        back = detector_from_state(det.to_state())
        assert type(back) is type(det)
        a, b = det.process(X[2000:]), back.process(X[2000:])
        assert np.array_equal(a.scores, b.scores, equal_nan=True)
    assert isinstance(make_detector(), Detector)
