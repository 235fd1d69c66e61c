"""The speed-restructured kernels against naive scipy references.

The E-step, the log-normalisation, the mixture tail and the sufficient statistics work in a
component-major (K, n) layout and return Fortran-ordered (n, K) views; the factorisation
reuses one Cholesky and inverts it with LAPACK. Every kernel must agree with the textbook
formula whatever the batch size and the memory order of its inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import chi2, multivariate_normal
from testkit.gmm import random_pd

from streamem.model._factor import (
    condition_covariances,
    factorize,
    inverse_transpose,
    precision_cholesky,
)
from streamem.model._gaussian import estimate_log_gaussian_prob, full_log_prob_t, scoring_factors
from streamem.model._numeric import exp_shifted
from streamem.model._scorer import Scorer
from streamem.model._stats import estimate_weighted_log_prob, log_normalize, sufficient_statistics
from streamem.model._tail import log_chi2_sf, mixture_log_tail
from streamem.model._triangular import (
    block_edges,
    blocked_log_prob_t,
    blocked_scatter,
    triangular_blocks,
)


def _mixture(seed: int, K: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2, (K, d))
    cov = np.array([random_pd(rng, d) for _ in range(K)])
    return rng.dirichlet(np.ones(K)), means, cov


@pytest.mark.parametrize("n", [1, 2, 31, 33, 1024])
@pytest.mark.parametrize(("K", "d"), [(1, 1), (2, 3), (8, 10)])
def test_full_log_prob_matches_scipy_at_any_batch_size(n: int, K: int, d: int) -> None:
    w, means, cov = _mixture(n + d, K, d)
    X = np.random.default_rng(n).normal(0, 3, (n, d))
    U = precision_cholesky(cov, "full")
    ref = np.column_stack(
        [multivariate_normal(m, c).logpdf(X) for m, c in zip(means, cov, strict=True)]
    )
    got = estimate_log_gaussian_prob(X, means, U, "full")
    assert got.shape == (n, K)
    np.testing.assert_allclose(got, ref.reshape(n, K), rtol=1e-10, atol=1e-9)
    const = np.log(w) + np.log(np.diagonal(U, axis1=1, axis2=2)).sum(1) - 0.5 * d * np.log(
        2 * np.pi
    )
    got_t = full_log_prob_t(X, scoring_factors(means, U), const)
    np.testing.assert_allclose(got_t.T, ref.reshape(n, K) + np.log(w), rtol=1e-10, atol=1e-9)


def test_scoring_factors_whiten_the_residuals() -> None:
    _, means, cov = _mixture(0, 3, 4)
    U = precision_cholesky(cov, "full")
    x = np.random.default_rng(1).normal(size=4)
    Y = scoring_factors(means, U) @ np.append(x, 1.0)
    ref = np.concatenate([U[k].T @ (x - means[k]) for k in range(3)])
    np.testing.assert_allclose(Y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [1, 3, 10, 30])
def test_inverse_transpose_is_the_inverse(d: int) -> None:
    rng = np.random.default_rng(d)
    L = np.linalg.cholesky(np.array([random_pd(rng, d) for _ in range(4)]))
    U = inverse_transpose(L)
    np.testing.assert_allclose(U, np.swapaxes(np.linalg.inv(L), 1, 2), rtol=1e-10, atol=1e-12)
    assert np.all(np.tril(U, -1) == 0.0)


def test_factorize_equals_conditioning_then_precision() -> None:
    rng = np.random.default_rng(7)
    good = np.array([random_pd(rng, 4) for _ in range(3)])
    v = rng.normal(size=4)
    stretched = good.copy()
    stretched[1] += 1e14 * np.outer(v, v)  # singular in float64: conditioning must fix it
    for cov in (good, stretched):
        for cov_type, c in (("full", cov), ("diag", np.diagonal(cov, axis1=1, axis2=2).copy())):
            fixed, U = factorize(c, cov_type, 1e-6)
            ref_cov = condition_covariances(c, cov_type, 1e-6)
            assert np.array_equal(fixed, ref_cov)
            np.testing.assert_allclose(
                U, precision_cholesky(ref_cov, cov_type, 1e-6), rtol=1e-12, atol=0
            )


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n", [1, 5, 100])
def test_log_normalize_any_memory_order(order: str, n: int) -> None:
    rng = np.random.default_rng(n)
    wlp = np.asarray(rng.normal(0, 30, (n, 6)), order=order)
    wlp[0, 2] = -1e11  # a far-away row component must not spoil the others
    lpn, log_resp = log_normalize(wlp)
    np.testing.assert_allclose(lpn, logsumexp(wlp, axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        log_resp, wlp - logsumexp(wlp, axis=1, keepdims=True), rtol=1e-12, atol=1e-12
    )
    assert log_resp.shape == (n, 6)


def _naive_tail(lw: np.ndarray, lnc: np.ndarray, lpn: np.ndarray, df: np.ndarray) -> np.ndarray:
    lnc2 = np.broadcast_to(lnc, (len(lpn), len(lw)))
    df2 = np.broadcast_to(np.asarray(df, dtype=float).reshape(-1, 1), lnc2.shape)
    c = np.maximum(2.0 * (lw[None, :] + lnc2 - lpn[:, None]), 0.0)
    return np.minimum(logsumexp(chi2.logsf(c, df2) + lw[None, :], axis=1), 0.0)


@pytest.mark.parametrize("d", [1, 2, 3, 10])
def test_mixture_log_tail_matches_naive_chi2_sum(d: int) -> None:
    w, means, cov = _mixture(d, 4, d)
    rng = np.random.default_rng(d)
    X = np.vstack([rng.normal(0, 2, (300, d)), rng.normal(0, 40, (5, d))])  # far rows too
    U = precision_cholesky(cov, "full")
    wlp, lnc, do = estimate_weighted_log_prob(X, np.log(w), means, cov, U, "full", 1e-6)
    lpn, _ = log_normalize(wlp)
    got = mixture_log_tail(np.log(w), lnc, lpn, do)
    ref = _naive_tail(np.log(w), lnc, lpn, np.full(len(X), float(d)))
    assert np.all(np.isfinite(got))  # scipy's logsf underflows to -inf far out; ours does not
    ok = np.isfinite(ref)
    assert ok[:300].all()
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-6, atol=2e-5)


def test_mixture_log_tail_with_missing_values_matches_naive() -> None:
    w, means, cov = _mixture(3, 3, 5)
    rng = np.random.default_rng(3)
    X = rng.normal(0, 2, (200, 5))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    U = precision_cholesky(cov, "full")
    wlp, lnc, do = estimate_weighted_log_prob(X, np.log(w), means, cov, U, "full", 1e-6)
    lpn, _ = log_normalize(wlp)
    assert np.ndim(lnc) == 2 and len(np.unique(do)) > 2
    got = mixture_log_tail(np.log(w), lnc, lpn, do)
    np.testing.assert_allclose(got, _naive_tail(np.log(w), lnc, lpn, do), rtol=1e-6, atol=2e-5)


@pytest.mark.parametrize("df", [1.0, 2.0, 3.0])
def test_log_chi2_sf_closed_forms_near_zero(df: float) -> None:
    x = np.concatenate([[0.0, 1e-300, 1e-12], np.linspace(0.0, 1.0, 10_001)])
    np.testing.assert_allclose(log_chi2_sf(x, df), chi2(df).logsf(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n", [1, 40, 1024])
def test_sufficient_statistics_any_layout_match_naive_sums(order: str, n: int) -> None:
    rng = np.random.default_rng(n)
    K, d = 3, 4
    X = rng.normal(0, 2, (n, d))
    resp = np.asarray(rng.dirichlet(np.ones(K), size=n), order=order)
    center = rng.normal(size=d)
    _, means, cov = _mixture(0, K, d)
    nk, sx, sxx = sufficient_statistics(X, resp, means, cov, "full", 1e-6, center)
    Xc = X - center
    np.testing.assert_allclose(nk, resp.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sx, resp.T @ Xc, rtol=1e-12, atol=1e-12)
    ref = np.array([sum(resp[i, k] * np.outer(Xc[i], Xc[i]) for i in range(n)) for k in range(K)])
    np.testing.assert_allclose(sxx, ref, rtol=1e-11, atol=1e-11)
    _, sx_d, sxx_d = sufficient_statistics(
        X, resp, means, np.diagonal(cov, axis1=1, axis2=2), "diag", 1e-6, center
    )
    np.testing.assert_allclose(sx_d, sx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sxx_d, np.diagonal(ref, axis1=1, axis2=2), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
@pytest.mark.parametrize("n", [1, 7, 300])
def test_scorer_matches_the_kernels_and_scipy(cov_type: str, n: int) -> None:
    w, means, cov = _mixture(n, 3, 4)
    c = cov if cov_type == "full" else np.diagonal(cov, axis1=1, axis2=2).copy()
    U = precision_cholesky(c, cov_type)
    sc = Scorer(w, means, c, U, cov_type, 1e-6)
    rng = np.random.default_rng(n)
    X = rng.normal(0, 2, (n, 4))
    dense = c if cov_type == "full" else np.array([np.diag(v) for v in c])
    ref = logsumexp(np.column_stack([np.log(w[k]) + multivariate_normal(means[k], dense[k])
                                     .logpdf(X).reshape(n) for k in range(3)]), axis=1)
    for Xs in (X, np.where(rng.random(X.shape) < 0.2, np.nan, X)):
        Xs[np.isnan(Xs).all(axis=1), 0] = 0.0
        lpn, log_resp, lnc, do = sc.estimate(Xs)
        wlp, lnc_k, do_k = estimate_weighted_log_prob(Xs, np.log(w), means, c, U, cov_type, 1e-6)
        lpn_k, log_resp_k = log_normalize(wlp)
        np.testing.assert_allclose(lpn, lpn_k, rtol=1e-14)
        np.testing.assert_allclose(log_resp, log_resp_k, rtol=1e-12, atol=1e-12)
        assert np.array_equal(sc.log_prob_norm(Xs), lpn)
        np.testing.assert_allclose(
            sc.log_tail(lnc, lpn, do), mixture_log_tail(np.log(w), lnc_k, lpn_k, do_k),
            rtol=1e-12, atol=1e-12,
        )
    np.testing.assert_allclose(sc.estimate(X)[0], ref, rtol=1e-10)
    assert np.array_equal(sc.estimate(X, complete=True)[0], sc.estimate(X)[0])


def test_floored_exponentials_leave_log_sum_exp_bit_identical() -> None:
    """exp_shifted raises entries below -700 (near-subnormal exponentials, slow in numpy)
    to -700: sums that hold the column maximum's 1.0 cannot see the difference."""
    rng = np.random.default_rng(11)
    wlp = rng.normal(0, 400, (2000, 8))  # many entries 708-745 and far more below the top
    wlp[:, 3] = wlp.max(axis=1) - rng.uniform(690.0, 745.0, 2000)  # around the floor
    top = wlp.max(axis=1, keepdims=True)
    shifted = np.ascontiguousarray((wlp - top).T)
    plain = top[:, 0] + np.log(np.exp(shifted).sum(axis=0))
    lpn, _ = log_normalize(wlp)
    assert np.array_equal(lpn, plain)
    assert np.array_equal(exp_shifted(shifted).sum(axis=0), np.exp(shifted).sum(axis=0))


@pytest.mark.parametrize("d", [12, 17, 23, 30])
def test_blocked_triangular_kernels_match_scipy_and_naive_sums(d: int) -> None:
    edges = block_edges(d)
    assert edges[0] == 0 and edges[-1] == d and len(edges) > 2
    w, means, cov = _mixture(d, 3, d)
    U = precision_cholesky(cov, "full")
    rng = np.random.default_rng(d)
    X = rng.normal(0, 2, (600, d))  # blocked from 512 rows on
    const = np.log(w)
    got = blocked_log_prob_t(X, triangular_blocks(means, U, edges), edges, const)
    ref = np.column_stack([multivariate_normal(m, c).logpdf(X) for m, c in zip(means, cov,
                                                                                strict=True)])
    ref += np.log(w) - np.log(np.diagonal(U, axis1=1, axis2=2)).sum(1) + 0.5 * d * np.log(
        2 * np.pi)
    np.testing.assert_allclose(got.T, ref, rtol=1e-10, atol=1e-9)
    sc = Scorer(w, means, cov, U, "full", 1e-6)  # the scorer takes the blocked path
    np.testing.assert_allclose(sc.estimate(X)[0], sc.estimate(X, complete=False)[0], rtol=1e-13)
    R = rng.dirichlet(np.ones(3), size=600)
    center = rng.normal(size=d)
    _, _, sxx = sufficient_statistics(X, R, means, cov, "full", 1e-6, center)
    Xc = X - center
    naive = np.einsum("nk,ni,nj->kij", R, Xc, Xc)
    np.testing.assert_allclose(sxx, naive, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(sxx, np.swapaxes(sxx, 1, 2), rtol=1e-13, atol=1e-12)
    RT = np.ascontiguousarray(R.T)
    assert np.array_equal(blocked_scatter(RT, np.ascontiguousarray(Xc.T), edges), sxx)
