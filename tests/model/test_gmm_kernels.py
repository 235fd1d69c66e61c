"""Every vectorised kernel against a naive scipy.stats / per-row numpy reference.

Random parameters: PD covariances ``A A^T / d + 0.1 I`` from several seeds, full and diag.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import chi2, multivariate_normal
from testkit.gmm import naive_conditional, random_pd

from streamem.model._batch_em import map_covariances
from streamem.model._gaussian import estimate_log_gaussian_prob, precision_cholesky
from streamem.model._missing import conditional_fill, estimate_log_gaussian_prob_missing
from streamem.model._stats import estimate_weighted_log_prob, log_normalize, sufficient_statistics
from streamem.model._tail import log_chi2_sf, mixture_log_tail
from streamem.model.gmm import OnlineGMM
from streamem.scoring.drift import gaussian_kl
from streamem.scoring.explain import conditional_zscores

SEEDS = [0, 1, 2, 3]
CovType = Literal["full", "diag"]
TYPES: list[CovType] = ["full", "diag"]


def _params(
    seed: int, K: int, d: int, cov_type: str
) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2, (K, d))
    full = np.array([random_pd(rng, d) for _ in range(K)])
    cov = full if cov_type == "full" else np.array([np.diag(c) for c in full])
    weights = rng.dirichlet(np.ones(K))
    return rng, weights, means, cov


def _dense(cov: np.ndarray) -> np.ndarray:
    return cov if cov.ndim == 3 else np.array([np.diag(c) for c in cov])


def _with_missing(rng: np.random.Generator, X: np.ndarray, frac: float) -> np.ndarray:
    X = X.copy()
    mask = rng.random(X.shape) < frac
    mask[mask.all(axis=1), 0] = False  # at least one observed value per row
    X[mask] = np.nan
    return X


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cov_type", TYPES)
def test_log_gaussian_prob_matches_scipy(seed: int, cov_type: str) -> None:
    rng, _, means, cov = _params(seed, 4, 6, cov_type)
    X = rng.normal(0, 3, (50, 6))
    got = estimate_log_gaussian_prob(X, means, precision_cholesky(cov, cov_type), cov_type)
    dense = _dense(cov)
    ref = np.column_stack(
        [multivariate_normal(m, c).logpdf(X) for m, c in zip(means, dense, strict=True)]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cov_type", TYPES)
def test_log_gaussian_prob_missing_is_the_marginal(seed: int, cov_type: str) -> None:
    rng, _, means, cov = _params(seed, 3, 5, cov_type)
    X = _with_missing(rng, rng.normal(0, 3, (60, 5)), 0.3)
    got, lnc = estimate_log_gaussian_prob_missing(X, means, cov, cov_type)
    dense = _dense(cov)
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        for k in range(3):
            ref = multivariate_normal(means[k, o], dense[k][np.ix_(o, o)]).logpdf(x[o])
            assert got[i, k] == pytest.approx(ref, rel=1e-10, abs=1e-9)
            # log normalising constant of the observed block: -1/2 log|S_oo| - d_o/2 log 2 pi
            _, logdet = np.linalg.slogdet(dense[k][np.ix_(o, o)])
            assert lnc[i, k] == pytest.approx(-0.5 * logdet - 0.5 * o.sum() * np.log(2 * np.pi))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cov_type", TYPES)
def test_responsibilities_match_naive_bayes_rule(seed: int, cov_type: str) -> None:
    rng, weights, means, cov = _params(seed, 5, 4, cov_type)
    X = _with_missing(rng, rng.normal(0, 4, (80, 4)), 0.2)
    U = precision_cholesky(cov, cov_type)
    wlp, _, do = estimate_weighted_log_prob(
        X, np.log(weights), means, cov, U, cov_type, 1e-6
    )
    lpn, log_resp = log_normalize(wlp)
    dense = _dense(cov)
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        joint = np.array([
            np.log(weights[k])
            + multivariate_normal(means[k, o], dense[k][np.ix_(o, o)]).logpdf(x[o])
            for k in range(5)
        ])
        assert lpn[i] == pytest.approx(logsumexp(joint), rel=1e-10)
        np.testing.assert_allclose(np.exp(log_resp[i]), np.exp(joint - logsumexp(joint)),
                                   atol=1e-12)
        assert np.broadcast_to(do, (len(X),))[i] == o.sum()


def test_responsibilities_do_not_underflow_far_away() -> None:
    _, weights, means, cov = _params(0, 3, 3, "full")
    X = np.full((1, 3), 1e4)
    U = precision_cholesky(cov, "full")
    wlp, _, _ = estimate_weighted_log_prob(X, np.log(weights), means, cov, U, "full", 1e-6)
    lpn, log_resp = log_normalize(wlp)
    assert np.isfinite(lpn).all()
    assert np.exp(log_resp).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cov_type", TYPES)
def test_conditional_fill_matches_gaussian_conditioning(seed: int, cov_type: str) -> None:
    rng, _, means, cov = _params(seed, 3, 5, cov_type)
    X = _with_missing(rng, rng.normal(0, 2, (40, 5)), 0.35)
    X_fill, corr = conditional_fill(X, means, cov, cov_type)
    dense = _dense(cov)
    for i, x in enumerate(X):
        for k in range(3):
            ex, exx = naive_conditional(x, means[k], dense[k])
            np.testing.assert_allclose(X_fill[i, k], ex, rtol=1e-9, atol=1e-10)
            got_corr = corr[i, k] if cov_type == "full" else np.diag(corr[i, k])
            np.testing.assert_allclose(got_corr, exx - np.outer(ex, ex), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cov_type", TYPES)
def test_sufficient_statistics_with_missing_match_naive_loop(seed: int, cov_type: str) -> None:
    rng, _, means, cov = _params(seed, 3, 4, cov_type)
    X = _with_missing(rng, rng.normal(0, 2, (50, 4)), 0.25)
    resp = rng.dirichlet(np.ones(3), size=50)
    center = rng.normal(size=4)
    nk, sx, sxx = sufficient_statistics(X, resp, means, cov, cov_type, 1e-6, center)
    dense = _dense(cov)
    ref_sx = np.zeros((3, 4))
    ref_sxx = np.zeros((3, 4, 4))
    for i, x in enumerate(X):
        for k in range(3):
            ex, exx = naive_conditional(x, means[k], dense[k])
            # moments about the centre: E[(x-c)(x-c)^T] = E[xx^T] - E[x]c^T - c E[x]^T + cc^T
            ref_sx[k] += resp[i, k] * (ex - center)
            ref_sxx[k] += resp[i, k] * (
                exx - np.outer(ex, center) - np.outer(center, ex) + np.outer(center, center)
            )
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sx, ref_sx, rtol=1e-9, atol=1e-10)
    got_sxx = sxx if cov_type == "full" else np.array([np.diag(s) for s in sxx])
    ref = ref_sxx if cov_type == "full" else np.array([np.diag(np.diag(s)) for s in ref_sxx])
    np.testing.assert_allclose(got_sxx, ref, rtol=1e-9, atol=1e-10)


def test_map_covariances_is_the_niw_shrinkage_formula() -> None:
    rng = np.random.default_rng(5)
    ml = np.array([random_pd(rng, 3) for _ in range(2)])
    prior = random_pd(rng, 3)
    counts = np.array([7.0, 300.0])
    got = map_covariances(ml, counts, prior, 10.0, 1e-3)
    for k in range(2):
        ref = (counts[k] * ml[k] + 10.0 * prior) / (counts[k] + 10.0) + 1e-3 * np.eye(3)
        np.testing.assert_allclose(got[k], ref, rtol=1e-12)
    got_diag = map_covariances(np.diagonal(ml, axis1=1, axis2=2), counts, np.diag(prior), 10.0, 0)
    np.testing.assert_allclose(got_diag, np.diagonal(got, axis1=1, axis2=2) - 1e-3, rtol=1e-12)


@pytest.mark.parametrize("cov_type", TYPES)
def test_centred_update_equals_raw_moment_recursion(cov_type: CovType) -> None:
    """One online M-step (centred form) equals s <- (1-g) s + g b on raw moments."""
    rng = np.random.default_rng(11)
    X0 = np.vstack([rng.normal(-3, 1, (300, 3)), rng.normal(3, 1.5, (300, 3))])
    m = OnlineGMM(n_components=2, covariance_type=cov_type, n_warmup=600, rho_max=1.0,
                  half_life=50.0, random_state=0)
    m.partial_fit(rng.permutation(X0))
    s0, mu, C = m._s0.copy(), m._mu.copy(), m._C.copy()
    Xb = _with_missing(rng, rng.normal(0, 3, (64, 3)), 0.2)
    resp = m.predict_proba(Xb)
    means_before, cov_before = m.means_.copy(), m.covariances_.copy()
    m._learn(Xb, resp)
    B = 64
    lam = 2.0 ** (-1.0 / 50.0)
    gamma = max(B / (600 + B), 1 - lam**B)
    dense_cov = _dense(cov_before)
    b0 = resp.mean(axis=0)
    b1 = np.zeros((2, 3))
    b2 = np.zeros((2, 3, 3))
    for i, x in enumerate(Xb):
        for k in range(2):
            ex, exx = naive_conditional(x, means_before[k], dense_cov[k])
            b1[k] += resp[i, k] * ex / B
            b2[k] += resp[i, k] * exx / B
    full_C = C if cov_type == "full" else np.array([np.diag(c) for c in C])
    s1 = s0[:, None] * mu
    s2 = s0[:, None, None] * (full_C + mu[:, :, None] * mu[:, None, :])
    s0n = (1 - gamma) * s0 + gamma * b0
    s1n = (1 - gamma) * s1 + gamma * b1
    s2n = (1 - gamma) * s2 + gamma * b2
    mu_ref = s1n / s0n[:, None]
    C_ref = s2n / s0n[:, None, None] - mu_ref[:, :, None] * mu_ref[:, None, :]
    np.testing.assert_allclose(m._s0, s0n / s0n.sum(), rtol=1e-10)
    np.testing.assert_allclose(m._mu, mu_ref, rtol=1e-8, atol=1e-10)
    got_C = m._C if cov_type == "full" else np.array([np.diag(c) for c in m._C])
    if cov_type == "diag":
        C_ref = np.array([np.diag(np.diag(c)) for c in C_ref])
    np.testing.assert_allclose(got_C, C_ref, rtol=1e-8, atol=1e-10)


def _lentz_log_chi2_sf(x: float, df: float) -> float:
    """Independent reference for the far tail: Legendre continued fraction of Gamma(a, h)."""
    a, h = df / 2.0, x / 2.0
    tiny = 1e-300
    b = h + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    f = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if d != 0 else tiny)
        c = b + an / c
        f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return float(-h + a * np.log(h) - gammaln(a) + np.log(f))


@pytest.mark.parametrize("df", [1, 2, 3, 5, 8, 10, 20])
def test_log_chi2_sf_table_is_accurate(df: int) -> None:
    x = np.linspace(0.0, 400.0, 200_001)
    got = log_chi2_sf(x, float(df))
    ref = chi2(df).logsf(x)
    assert np.max(np.abs(got - ref)) < 1e-5
    # off-grid points between table knots too
    xr = np.random.default_rng(df).uniform(0, 60, 5000)
    assert np.max(np.abs(log_chi2_sf(xr, float(df)) - chi2(df).logsf(xr))) < 1e-5


@pytest.mark.parametrize("df", [1, 4, 10, 20])
def test_log_chi2_sf_far_tail_is_finite_and_accurate(df: int) -> None:
    xs = np.array([401.0, 800.0, 1400.0, 5000.0, 1e5])
    got = log_chi2_sf(xs, float(df))
    ref = np.array([_lentz_log_chi2_sf(x, df) for x in xs])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-7)
    assert chi2(df).logsf(1400.0) == pytest.approx(ref[2], rel=1e-9)  # the reference is right


def test_log_chi2_sf_per_row_degrees_of_freedom() -> None:
    x = np.array([[3.0, 9.0], [3.0, 9.0]])
    df = np.array([[2.0], [7.0]])
    np.testing.assert_allclose(log_chi2_sf(x, df), chi2.logsf(x, df), atol=1e-6)


def test_mixture_log_tail_single_component_is_exact() -> None:
    rng = np.random.default_rng(3)
    cov = random_pd(rng, 4)
    X = rng.normal(0, 2, (100, 4))
    U = precision_cholesky(cov[None], "full")
    lp = estimate_log_gaussian_prob(X, np.zeros((1, 4)), U, "full")[:, 0]
    lnc = np.log(np.diag(U[0])).sum() - 2 * np.log(2 * np.pi)
    got = mixture_log_tail(np.zeros(1), np.array([lnc]), lp, 4.0)
    maha = np.einsum("ni,ij,nj->n", X, np.linalg.inv(cov), X)
    np.testing.assert_allclose(got, chi2(4).logsf(maha), atol=2e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixture_log_tail_bounds_monte_carlo_tail(seed: int) -> None:
    """tau_hat >= P(f(X) <= f(x)) and is close to it on a separated mixture."""
    rng = np.random.default_rng(seed)
    K, d = 3, 3
    means = rng.normal(0, 6, (K, d))
    covs = np.array([random_pd(rng, d, 0.3) for _ in range(K)])
    w = rng.dirichlet(np.full(K, 4.0))
    U = precision_cholesky(covs, "full")
    lnc = np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1) - 0.5 * d * np.log(2 * np.pi)

    def log_f(X: np.ndarray) -> np.ndarray:
        return np.asarray(logsumexp(
            np.column_stack([np.log(w[k]) + multivariate_normal(means[k], covs[k]).logpdf(X)
                             for k in range(K)]), axis=1))

    n = 400_000
    z = rng.choice(K, n, p=w)
    L = np.linalg.cholesky(covs)
    S = means[z] + np.einsum("nij,nj->ni", L[z], rng.normal(size=(n, d)))
    ref = np.sort(log_f(S))
    q = np.quantile(ref, [0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3])  # density levels
    tau_mc = np.searchsorted(ref, q) / n
    tau_hat = np.exp(mixture_log_tail(np.log(w), lnc, q, float(d)))
    se = np.sqrt(tau_mc * (1 - tau_mc) / n)
    assert np.all(tau_hat >= tau_mc - 4 * se)  # a bound (up to Monte-Carlo noise)
    assert np.all(tau_hat <= 1.5 * tau_mc + 4 * se)  # and a tight one here


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cov_type", TYPES)
def test_gaussian_kl_matches_monte_carlo(seed: int, cov_type: str) -> None:
    _, _, means, cov = _params(seed, 2, 3, cov_type)
    got = gaussian_kl(means[:1], cov[:1], means[1:], cov[1:])[0]
    dense = _dense(cov)
    p = multivariate_normal(means[0], dense[0])
    q = multivariate_normal(means[1], dense[1])
    S = p.rvs(size=50_000, random_state=seed)
    diff = p.logpdf(S) - q.logpdf(S)
    assert got == pytest.approx(diff.mean(), abs=4 * diff.std() / np.sqrt(len(S)))
    assert gaussian_kl(means[:1], cov[:1], means[:1], cov[:1])[0] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("missing", [False, True])
def test_conditional_zscores_match_schur_complement(seed: int, missing: bool) -> None:
    rng = np.random.default_rng(seed)
    d = 5
    cov = random_pd(rng, d)
    mean = rng.normal(size=d)
    x = rng.normal(0, 2, d)
    if missing:
        x[rng.choice(d, 2, replace=False)] = np.nan
    z, expected = conditional_zscores(x, mean, cov)
    obs = np.flatnonzero(~np.isnan(x))
    for j in range(d):
        if np.isnan(x[j]):
            assert np.isnan(z[j])
            ref_mean, _ = naive_conditional(x, mean, cov)
            assert expected[j] == pytest.approx(ref_mean[j], rel=1e-9)
            continue
        others = [i for i in obs if i != j]
        s_jo = cov[j, others]
        inv = np.linalg.inv(cov[np.ix_(others, others)])
        m = mean[j] + s_jo @ inv @ (x[others] - mean[others])
        v = cov[j, j] - s_jo @ inv @ s_jo
        assert expected[j] == pytest.approx(m, rel=1e-9, abs=1e-12)
        assert z[j] == pytest.approx((x[j] - m) / np.sqrt(v), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("df", [1.0, 10.0])
def test_log_chi2_sf_huge_arguments(df: float) -> None:
    """Beyond int64 range after scaling by the table step (found by Hypothesis)."""
    x = np.array([1e17, 2e20, 1e300])
    got = log_chi2_sf(x, df)
    assert np.all(np.isfinite(got)) and np.all(np.diff(got) < 0)
    assert got[1] == pytest.approx(-1e20, rel=1e-6)  # log S ~ -x/2 far out
