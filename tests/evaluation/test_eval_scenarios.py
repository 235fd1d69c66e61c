"""Scenario generators: reproducible, and each alters the stream the way it says."""

from __future__ import annotations

import numpy as np
import pytest

from streamem.errors import ConfigError
from streamem.evaluation.scenarios import (
    SCENARIOS,
    abrupt_drift,
    gradual_drift,
    growing_variance,
    make_scenario,
    null_stream,
    outlier_burst,
    recurring_drift,
    sensor_dropout,
)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_seed_same_stream_other_seed_differs(name: str) -> None:
    a = make_scenario(name, n=3000, d=4, seed=7)
    b = make_scenario(name, n=3000, d=4, seed=7)
    c = make_scenario(name, n=3000, d=4, seed=8)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(np.nan_to_num(a.X), np.nan_to_num(c.X))
    assert a.X.shape == (3000, 4) and a.labels.shape == (3000,)
    assert a.name == name and a.description


def test_abrupt_shift_moves_the_mean_by_the_shift() -> None:
    s = abrupt_drift(n=40_000, d=3, seed=0, shift=6.0)
    cp = s.change_points[0]
    delta = s.X[cp:].mean(axis=0) - s.X[:cp].mean(axis=0)
    assert np.linalg.norm(delta) == pytest.approx(6.0, abs=0.3)
    assert s.labels[cp : cp + 200].all() and not s.labels[:cp].any()


def test_gradual_drift_is_linear_then_flat() -> None:
    s = gradual_drift(n=40_000, d=3, seed=0, shift=6.0, ramp=10_000)
    x = s.X
    before = x[:20_000].mean(axis=0)
    mid = x[24_000:26_000].mean(axis=0)  # ramp centre -> half the shift
    after = x[30_000:].mean(axis=0)
    assert np.linalg.norm(after - before) == pytest.approx(6.0, abs=0.4)
    assert np.linalg.norm(mid - before) == pytest.approx(3.0, abs=0.6)
    assert s.labels[20_000:30_000].all() and not s.labels[30_000:].any()


def test_recurring_drift_returns_to_the_first_regime() -> None:
    s = recurring_drift(n=16_000, d=3, seed=0, period=4000)
    x = s.X
    a1, b1, a2 = x[:4000].mean(0), x[4000:8000].mean(0), x[8000:12000].mean(0)
    assert np.linalg.norm(a2 - a1) < 0.5 < 5.0 < np.linalg.norm(b1 - a1)
    assert s.change_points == (4000, 8000, 12000)


def test_dropout_hides_feature_zero_and_outliers_sit_inside() -> None:
    s = sensor_dropout(n=3000, d=4, seed=0, missing_rate=0.05, n_outliers=10)
    start, stop = s.change_points
    assert np.isnan(s.X[start:stop, 0]).all()
    outside = np.concatenate([s.X[:start], s.X[stop:]])
    assert np.isnan(outside).mean() == pytest.approx(0.05, abs=0.01)
    idx = np.flatnonzero(s.labels)
    assert idx.size == 10 and ((idx >= start) & (idx < stop)).all()
    with pytest.raises(ConfigError, match="d >= 2"):
        sensor_dropout(n=100, d=1)


def test_outlier_burst_is_far_from_the_rest() -> None:
    s = outlier_burst(n=4000, d=3, seed=0, burst=30, size=10.0)
    start, stop = s.change_points
    assert stop - start == 30 and s.labels.sum() == 30
    normal = s.X[~s.labels]
    burst = s.X[s.labels]
    # every burst point is further from its nearest normal point than typical neighbours
    nearest = np.sqrt(((burst[:, None, :] - normal[None, :, :]) ** 2).sum(-1)).min(1)
    assert np.median(nearest) > 2.0


def test_growing_variance_triples_the_spread() -> None:
    s = growing_variance(n=40_000, d=3, seed=0, final_scale=3.0)
    cp = s.change_points[0]
    # within-component noise is what scales; compare spread via successive differences
    d0 = np.diff(s.X[:cp], axis=0)
    d1 = np.diff(s.X[-2000:], axis=0)
    assert d1.std() > d0.std() * 1.3
    assert s.labels[cp:].all() and not s.labels[:cp].any()


def test_null_stream_is_stationary() -> None:
    s = null_stream(n=40_000, d=3, seed=0)
    assert not s.labels.any() and s.change_points == ()
    np.testing.assert_allclose(s.X[:20_000].mean(0), s.X[20_000:].mean(0), atol=0.25)


def test_bad_sizes_and_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="n >= 10"):
        null_stream(n=5)
    with pytest.raises(ConfigError, match="unknown scenario"):
        make_scenario("sideways")
