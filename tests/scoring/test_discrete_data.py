"""Small, discrete and constant data: a resolution floor on every scale, a quantisation floor
on every variance, so such features neither dominate nor vanish and nothing goes singular."""

from __future__ import annotations

import numpy as np
import pytest

from streamem import Detector
from streamem.scoring.scaler import RobustScaler, resolution


def _discrete_set(seed: int, n: int = 400) -> np.ndarray:
    """Features with 6-10 distinct values (skewed frequencies, two correlated), one constant."""
    rng = np.random.default_rng(seed)
    cols = []
    for k in (6, 7, 8, 9, 10):
        p = rng.dirichlet(np.full(k, 2.0))
        cols.append(rng.choice(np.arange(k) * 2.5, size=n, p=p))
    cols.append(np.full(n, 7.0))  # constant
    latent = rng.normal(size=n)
    cols.append(np.clip(np.round(latent * 1.5 + 4), 0, 8))  # 6-9 levels, correlated
    cols.append(np.clip(np.round(latent + rng.normal(0, 0.5, n) + 3), 0, 6))
    return np.column_stack(cols)


def test_scale_has_a_floor_from_the_resolution_and_constants_get_their_magnitude() -> None:
    flags = np.zeros((200, 1))
    flags[::25] = 1.0  # a rare 0/1 flag: MAD 0, standard deviation 0.33
    steps = np.repeat([0.0, 0.5, 1.0], [150, 30, 20])[:, None]  # MAD 0, resolution 0.5
    const = np.full((200, 1), -40.0)
    s = RobustScaler().fit(np.hstack([flags, steps, const]))
    assert s.scale_.tolist() == [1.0, max(0.5, float(steps.std())), 40.0]
    assert np.allclose(resolution(np.hstack([flags, steps, const])), [1.0, 0.5, np.nan],
                       equal_nan=True)
    assert np.allclose(s.variance_floor(), [1 / 12, (0.5 / s.scale_[1]) ** 2 / 12, 1 / 12])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_discrete_400_event_set_gets_sensible_scores_and_its_outlier_flagged(seed: int) -> None:
    X = _discrete_set(seed)
    X[300, 6] += 6.0  # an unseen level of the correlated pair, against its partner
    X[300, 7] -= 3.0
    res = Detector(random_state=0).process(X)  # defaults: the cold start covers all 400
    assert np.isfinite(res.scores[31:]).all() and np.isfinite(res.surprise[31:]).all()
    assert res.is_anomaly[300]
    assert int(res.is_anomaly.sum()) <= 3
    # sensible: the outlier tops the ranking; no other event comes near it
    others = np.delete(res.surprise[31:], 300 - 31)
    assert res.surprise[300] > 3 * others.max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_mixture_on_discrete_data_is_finite_nonsingular_and_quiet(seed: int) -> None:
    X = _discrete_set(seed, 1500)
    X[1200, 6] += 6.0
    X[1200, 7] -= 3.0
    det = Detector(warmup=300, random_state=0)
    res = det.process(X)
    assert det.ready_ and np.isfinite(res.scores[31:]).all()
    assert res.is_anomaly[1200]
    assert res.is_anomaly.sum() <= 1 + 0.005 * len(X)
    cov = det.model_.covariances_
    diag = cov if cov.ndim == 2 else np.diagonal(cov, axis1=1, axis2=2)
    assert (diag >= det.scaler_.variance_floor() - 1e-12).all()
    if cov.ndim == 3:
        assert np.linalg.eigvalsh(cov).min() > 1e-3
    # a change of the constant feature counts (quantised at its magnitude: a change by as
    # much is 3.5 sd, about as rare as a first change after n = 1000 equal values), finitely
    row = np.repeat(X[:1], 3, axis=0)
    row[1, 5] += 7.0
    row[2, 5] += 70.0
    u = det.process(row).surprise
    assert np.isfinite(u).all() and u[0] + 1.0 < u[1] < u[2] < 1e4
