"""What online EM must achieve: batch-EM quality in one pass, tracking, missing data."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture  # type: ignore[import-untyped]
from testkit.gmm import Mixture, random_mixture, random_pd

from streamem.model import OnlineGMM


def _stream(m: OnlineGMM, X: np.ndarray, batch: int) -> None:
    for i in range(0, len(X), batch):
        m.partial_fit(X[i : i + batch])


@pytest.mark.parametrize("d", [2, 5, 10, 20])
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_one_pass_matches_sklearn_batch_em(d: int, cov_type: Literal["full", "diag"]) -> None:
    """One pass of 256-event mini-batches: held-out mean LL within 1 % of sklearn (same K)."""
    rng = np.random.default_rng(d)
    K = 3
    mix = random_mixture(rng, K, d, separation=4.0)
    X, H = mix.sample(rng, 20_000), mix.sample(rng, 5_000)
    m = OnlineGMM(n_components=K, covariance_type=cov_type, random_state=0)
    _stream(m, X, 256)
    sk = GaussianMixture(K, covariance_type=cov_type, random_state=0).fit(X)
    ours, batch = m.score(H), sk.score(H)
    assert abs(ours - batch) <= 0.01 * abs(batch), (ours, batch)
    assert m.n_seen_ + m.n0_ == 20_000  # one pass: warm-up buffer + streamed, nothing re-used


def _gap(m: OnlineGMM, H: np.ndarray, reference: float) -> float:
    return (reference - m.score(H)) / abs(reference)


@pytest.mark.parametrize("seed", [0, 1])
def test_online_gmm_adapts_within_three_half_lives(seed: int) -> None:
    """After an abrupt shift (means moved, covariances x1.5) the held-out LL on the new
    distribution is within 3 % of a model fitted to it after 3 half-lives, and the
    initial gap has shrunk at least five-fold."""
    rng = np.random.default_rng(seed)
    d, K, h = 3, 3, 2000
    old = random_mixture(rng, K, d)
    new = Mixture(old.weights, old.means + 2.0 * rng.normal(size=(1, d)) / np.sqrt(d),
                  old.covariances * 1.5)
    m = OnlineGMM(n_components=K, half_life=h, random_state=seed)
    _stream(m, old.sample(rng, 5 * h), 128)
    H = new.sample(rng, 4000)
    reference = GaussianMixture(K, random_state=0).fit(new.sample(rng, 20_000)).score(H)
    gap0 = _gap(m, H, reference)
    _stream(m, new.sample(rng, h // 2), 128)
    gap_half = _gap(m, H, reference)
    _stream(m, new.sample(rng, 3 * h - h // 2), 128)
    gap3 = _gap(m, H, reference)
    assert gap0 > 0.05  # the change is visible
    assert gap_half > gap3  # still adapting after half a half-life
    assert gap3 < 0.03 and gap3 < gap0 / 5, (gap0, gap_half, gap3)


def test_short_half_life_forgets_faster() -> None:
    rng = np.random.default_rng(3)
    old = random_mixture(rng, 2, 2)
    new = Mixture(old.weights, old.means + 3.0, old.covariances)
    H = new.sample(rng, 2000)
    gaps = []
    for h in (500, 20_000):
        m = OnlineGMM(n_components=2, half_life=h, random_state=0)
        _stream(m, old.sample(np.random.default_rng(0), 10_000), 100)
        _stream(m, new.sample(np.random.default_rng(1), 1500), 100)
        gaps.append(-m.score(H))
    assert gaps[0] < gaps[1]


def _missing_at_random(rng: np.random.Generator, X: np.ndarray, frac: float) -> np.ndarray:
    X = X.copy()
    mask = rng.random(X.shape) < frac
    mask[mask.all(axis=1), 0] = False
    X[mask] = np.nan
    return X


def _matched(m: OnlineGMM, mix: Mixture) -> np.ndarray:
    """Index of the fitted component closest to each true one."""
    dist = ((mix.means[:, None, :] - m.means_[None]) ** 2).sum(-1)
    order = dist.argmin(axis=1)
    assert len(set(order.tolist())) == mix.n_components
    return np.asarray(order)


def _correlated_mixture(rng: np.random.Generator, d: int) -> Mixture:
    covs = []
    for _ in range(2):
        c = random_pd(rng, d, 0.3)
        s = np.sqrt(np.diag(c))
        covs.append(c / np.outer(s, s) * 1.5)  # unit-ish variances, strong correlations
    return Mixture(np.array([0.4, 0.6]), np.array([np.full(d, -4.0), np.full(d, 4.0)]),
                   np.array(covs))


def test_missing_at_random_recovers_parameters() -> None:
    rng = np.random.default_rng(7)
    d = 4
    mix = _correlated_mixture(rng, d)
    X = _missing_at_random(rng, mix.sample(rng, 40_000), 0.2)
    m = OnlineGMM(n_components=2, half_life=1e9, n_warmup=2000, random_state=0)
    _stream(m, X, 500)
    idx = _matched(m, mix)
    np.testing.assert_allclose(m.weights_[idx], mix.weights, atol=0.02)
    np.testing.assert_allclose(m.means_[idx], mix.means, atol=0.06)
    for k in range(2):
        np.testing.assert_allclose(m.covariances_[idx[k]], mix.covariances[k], atol=0.12)
        # the variances are not shrunk: ratio to the truth close to 1 on every feature
        ratio = np.diag(m.covariances_[idx[k]]) / np.diag(mix.covariances[k])
        assert np.all(np.abs(ratio - 1) < 0.06), ratio


def test_second_moment_correction_prevents_shrinkage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the conditional-covariance term the missing features' variances shrink."""
    from streamem.model._missing import conditional_fill as real_fill

    rng = np.random.default_rng(7)
    d = 4
    mix = _correlated_mixture(rng, d)
    X = _missing_at_random(rng, mix.sample(rng, 40_000), 0.2)

    def fill_without_correction(*args: object, **kwargs: object) -> tuple[np.ndarray, ...]:
        X_fill, corr = real_fill(*args, **kwargs)  # type: ignore[arg-type]
        return X_fill, np.zeros_like(corr)

    # patch the module OnlineGMM really uses (doctest collection may import a second copy)
    stats_globals = OnlineGMM._learn.__globals__["sufficient_statistics"].__globals__
    monkeypatch.setitem(stats_globals, "conditional_fill", fill_without_correction)
    m = OnlineGMM(n_components=2, half_life=1e9, n_warmup=2000, random_state=0)
    _stream(m, X, 500)
    idx = _matched(m, mix)
    ratios = np.array([np.diag(m.covariances_[idx[k]]) / np.diag(mix.covariances[k])
                       for k in range(2)])
    assert ratios.mean() < 0.95  # single imputation under-disperses the model


def test_redundant_components_are_split_once_not_reseeded_forever() -> None:
    """When a mode disappears its components starve; they are revived by splitting the
    heaviest component (they then share the remaining mode) instead of being re-seeded at
    outliers again and again."""
    rng = np.random.default_rng(0)
    m = OnlineGMM(n_components=4, n_warmup=400, half_life=200, reservoir_size=50,
                  random_state=3)
    m.partial_fit(np.vstack([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))]))
    history = []
    for _ in range(60):
        m.partial_fit(rng.normal(5, 1, (40, 2)))
        history.append(m.n_reseeds_)
    assert 1 <= history[-1] <= 2 * m.n_components_
    assert history[-1] == history[len(history) // 2]  # stable: no churn in the second half
    assert np.all(m.weights_ > 0.05)
    assert m.score(rng.normal(5, 1, (2000, 2))) > -2.838 - 0.05  # true entropy -(1 + log 2pi)


def test_a_vanished_mode_gives_its_component_to_a_new_mode() -> None:
    """The -6 mode vanishes and a +8 mode appears: the starved component is revived where
    the data now is, and the new mode ends up fitted (LL at the optimum -2.84 + log 0.5)."""
    rng = np.random.default_rng(1)
    m = OnlineGMM(n_components=3, n_warmup=600, half_life=300, reservoir_size=200,
                  random_state=0)
    m.partial_fit(np.vstack([rng.normal(-6, 1, (300, 2)), rng.normal(0, 1, (300, 2))]))
    for _ in range(80):  # the -6 mode goes away, a +8 mode appears
        m.partial_fit(np.vstack([rng.normal(0, 1, (20, 2)), rng.normal(8, 1, (20, 2))]))
    assert m.n_reseeds_ >= 1
    assert np.min(np.linalg.norm(m.means_ - 8.0, axis=1)) < 0.5
    assert np.all(np.linalg.norm(m.means_ + 6.0, axis=1) > 5.0)  # nothing left at -6
    assert m.score(rng.normal(8, 1, (2000, 2))) > -3.53 - 0.15
