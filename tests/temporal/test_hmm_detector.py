"""HMMDetector: out-of-sequence events caught that the i.i.d. detector misses; explanation,
warm-up, missing rows, state round trip."""

from __future__ import annotations

import numpy as np
import pytest

from streamem import Detector
from streamem.errors import InvalidInputError
from streamem.scoring.temporal import HMMDetector, TemporalResult
from streamem.state.codec import dumps, loads


def cycle_stream(seed: int, n_cycles: int = 600) -> np.ndarray:
    """Stages 0 -> 5 -> 10 -> 0, ten events each, noise 0.5."""
    rng = np.random.default_rng(seed)
    stages = np.repeat(np.tile([0.0, 5.0, 10.0], n_cycles), 10)
    return np.column_stack([stages + rng.normal(0, 0.5, stages.size),
                            rng.normal(0, 1.0, stages.size)])


def run(det: HMMDetector, X: np.ndarray, batch: int = 500) -> list[TemporalResult]:
    return [det.process(X[i:i + batch]) for i in range(0, len(X), batch)]


def test_skipped_stage_is_caught_and_explained_where_the_iid_detector_sees_nothing() -> None:
    X = cycle_stream(0)
    skips = [12_005, 14_105, 16_205]  # inside stage 0: jump to stage 10, skipping 5
    for s in skips:
        X[s:s + 5, 0] = 10.0 + np.random.default_rng(s).normal(0, 0.5, 5)
    det = HMMDetector(n_components=3, alert_rate=1e-3, random_state=0)
    res = run(det, X)
    flagged = np.concatenate([r.is_anomaly for r in res])
    assert all(flagged[s] for s in skips)
    assert flagged[3000:12_000].sum() <= 9 * 3  # ~1e-3 of 9000 normal events, a margin of 3
    r = res[12_005 // 500]
    text = det.explain(r, 12_005 % 500)
    src, dst = int(r.source[5]), int(r.target[5])
    assert text.startswith(f"state {src} -> state {dst}, probability ")
    assert r.transition_probability[5] < 1e-3
    assert abs(det.hmm.means_[src, 0]) < 1 and abs(det.hmm.means_[dst, 0] - 10) < 1
    iid = Detector(alert_rate=1e-3, random_state=0)
    flat = np.concatenate([iid.process(X[i:i + 500]).is_anomaly for i in range(0, len(X), 500)])
    assert not any(flat[s] for s in skips)  # every value is normal by itself


def test_warm_up_then_scores_and_all_nan_rows_are_not_scored() -> None:
    X = cycle_stream(1, 100)
    X[1500, :] = np.nan
    det = HMMDetector(n_components=3, n_warmup=1000, random_state=0)
    first = det.process(X[:1000])
    assert first.warming_up.all() and np.isnan(first.scores).all()
    assert det.explain(first, 0) == "warming up: no transition yet"
    second = det.process(X[1000:2000])
    assert not second.warming_up.any() and not second.is_anomaly[500]
    assert np.isnan(second.scores[500]) and not second.learned[500]
    assert np.isfinite(np.delete(second.scores, 500)).all()
    np.testing.assert_array_equal(second.is_anomaly, second.tail_probability < second.threshold)


def test_detector_state_round_trip_continues_exactly() -> None:
    X = cycle_stream(2, 200)
    a = HMMDetector(n_components=3, random_state=0)
    run(a, X[:3000])
    b = HMMDetector.from_state(loads(dumps(a.to_state())))
    ra, rb = run(a, X[3000:]), run(b, X[3000:])
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_array_equal(x.scores, y.scores)
        np.testing.assert_array_equal(x.is_anomaly, y.is_anomaly)


def test_hostile_values_do_not_poison_the_carried_filter() -> None:
    X = cycle_stream(3, 200)
    det = HMMDetector(n_components=3, random_state=0)
    run(det, X[:3000])
    bad = X[3000:3500].copy()
    bad[10] = [np.inf, 0.0]   # read as missing
    bad[20] = [1e300, -1e300]  # absurd but finite: flagged, not learned
    bad[30] = [np.nan, -np.inf]
    r = det.process(bad)
    assert r.is_anomaly[20] and not r.learned[20]
    assert np.isnan(r.scores[30]) and np.isfinite(r.scores[10])
    assert np.isfinite(det.hmm.means_).all() and np.isfinite(det.hmm.transmat_).all()
    after = det.process(X[3500:4000])
    assert np.isfinite(after.scores).all() and after.is_anomaly.sum() <= 5


def test_hmm_with_seasonality_scores_readings_given_the_time_of_day() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(0.0, 14 * 86400.0, 300.0)
    x = 10.0 + 4.0 * np.cos(2 * np.pi * (t - 43200.0) / 86400.0) + rng.normal(0, 0.5, t.size)
    X = np.column_stack([x, rng.normal(0, 1, t.size)])
    night, noon = (10 * 86400 + 3 * 3600) // 300, (11 * 86400 + 12 * 3600) // 300
    X[night, 0], X[noon, 0] = 14.0, 6.0
    seasonal = HMMDetector(n_components=4, n_warmup=1000, random_state=0, seasonality=["1d"])
    res = [seasonal.process(X[i:i + 288], t[i:i + 288]) for i in range(0, len(X), 288)]
    flagged = np.concatenate([r.is_anomaly for r in res])
    assert flagged[night] and flagged[noon]
    assert flagged[1000:].sum() <= 2 + 0.003 * (len(X) - 1000)
    with pytest.raises(InvalidInputError, match="needs timestamps"):
        seasonal.process(X[:5])
    back = HMMDetector.from_state(loads(dumps(seasonal.to_state())))
    a, b = seasonal.process(X[:288], t[:288] + 14 * 86400), back.process(X[:288],
                                                                     t[:288] + 14 * 86400)
    np.testing.assert_array_equal(a.scores, b.scores)
