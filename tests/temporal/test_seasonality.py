"""Seasonality on a 14-day synthetic stream: a night-time high and a noon low are caught by
p(x | phase) and missed by the i.i.d. detector; the fallback before one period of history."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from streamem import Detector
from streamem.errors import InvalidInputError, NotFittedError
from streamem.model._conditional import conditional_log_prob, phase_features
from streamem.model.seasonality import SeasonalModel

DAY = 86400.0


def daily_stream(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every 10 min: high at noon (14), low at midnight (6), a weekly ripple, noise 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, days * DAY, 600.0)
    x = (10.0 + 4.0 * np.cos(2 * np.pi * (t - DAY / 2) / DAY)
         + 1.0 * np.sin(2 * np.pi * t / (7 * DAY)) + rng.normal(0, 0.5, t.size))
    return x[:, None], t


def test_night_high_and_noon_low_are_caught_where_the_iid_model_sees_nothing() -> None:
    X, t = daily_stream(14, seed=0)
    night_high = int((10 * DAY + 3 * 3600) // 600)  # day 10, 03:00: a noon value
    noon_low = int((11 * DAY + 12 * 3600) // 600)   # day 11, 12:00: a midnight value
    X[night_high, 0] = 14.0
    X[noon_low, 0] = 6.0
    m = SeasonalModel(periods=["1d", "7d"], n_components=4, random_state=0)
    iid = Detector(alert_rate=1e-3, random_state=0)
    tails, flat = [], []
    per_day = int(DAY // 600)
    for i in range(0, len(X), per_day):  # score each day before learning it
        xb, tb = X[i:i + per_day], t[i:i + per_day]
        tails.append(m.tail_probability(xb, tb) if m.gmm.is_fitted else np.ones(len(xb)))
        flat.append(iid.process(xb).is_anomaly)
        m.partial_fit(xb, tb)
    tail, iid_flag = np.concatenate(tails), np.concatenate(flat)
    assert m.status == "seasonality: using 1d, 7d"
    flagged = tail < 1e-4
    assert flagged[night_high] and flagged[noon_low]
    normal = np.ones(len(X), dtype=bool)
    normal[[night_high, noon_low]] = False
    normal[: 8 * per_day] = False  # both periods in use from day 7 on
    assert flagged[normal].sum() <= 2, np.flatnonzero(flagged & normal)
    assert not iid_flag[night_high] and not iid_flag[noon_low]


def test_less_than_one_period_falls_back_and_says_so() -> None:
    X, t = daily_stream(3, seed=1)
    m = SeasonalModel(periods=["1d", "7d"], n_components=3, n_warmup=60, random_state=0)
    with pytest.raises(NotFittedError, match="n_warmup=60"):
        m.score_samples(X[:5], t[:5])
    m.partial_fit(X[:72], t[:72])  # 12 hours
    assert m.status == ("seasonality: 11.8h of history, less than one period of 1d, 7d: "
                        "scoring without phase")
    g = m.gmm
    marginal, _ = conditional_log_prob(X[:10], phase_features(t[:10], m.seconds), g.weights_,
                                       g.means_, g.covariances_, np.array([], dtype=np.intp),
                                       g.reg_covar)
    np.testing.assert_allclose(m.score_samples(X[:10], t[:10]), marginal)
    m.partial_fit(X[72:], t[72:])  # 3 days: the daily cycle is used, the weekly not yet
    assert m.status == ("seasonality: 2.99d of history, less than one period of 7d: using 1d")
    with pytest.raises(InvalidInputError, match="timestamps must be finite"):
        m.partial_fit(X[:2], np.array([0.0, np.nan]))


def test_conditional_density_equals_the_scipy_conditional_of_a_joint_gaussian() -> None:
    rng = np.random.default_rng(2)
    L = rng.normal(size=(2, 4, 4))
    covs = L @ np.transpose(L, (0, 2, 1)) + np.eye(4)
    means = rng.normal(size=(2, 4))
    w = np.array([0.3, 0.7])
    X, C = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    lp, tail = conditional_log_prob(X, C, w, means, covs, np.array([0, 1]))
    joint = np.stack([multivariate_normal(means[k], covs[k]).logpdf(np.hstack([X, C]))
                      for k in range(2)], axis=1) + np.log(w)
    marg_c = np.stack([multivariate_normal(means[k, 2:], covs[k, 2:, 2:]).logpdf(C)
                       for k in range(2)], axis=1) + np.log(w)
    ref = np.logaddexp.reduce(joint, axis=1) - np.logaddexp.reduce(marg_c, axis=1)
    np.testing.assert_allclose(lp, ref, rtol=1e-10)
    assert np.all((tail <= 0) & np.isfinite(tail))
