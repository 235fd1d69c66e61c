"""The stacked per-key kernels against a naive per-key scipy/numpy reference, and their
invariants (weights sum to 1, positive definite covariances, grouping order)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, multivariate_normal

from streamem.model._keyed import (
    Population,
    group_rows,
    group_sums,
    key_moments,
    lower_index,
    map_parameters,
    packed_group_sums,
    score_rows,
)
from streamem.model._keyed_linalg import chol_whiten

K, D = 2, 3


def _stats(rng: np.random.Generator, n_keys: int, n_rows: int) -> tuple[np.ndarray, ...]:
    N = np.zeros((n_keys, K))
    S1 = np.zeros((n_keys, K, D))
    S2 = np.zeros((n_keys, K, D, D))
    for u in range(n_keys):  # the naive reference: one key at a time
        m = int(rng.integers(0, n_rows))
        Y = rng.normal(size=(m, D)) * rng.uniform(0.5, 2.0, D) + rng.normal(size=D)
        R = rng.dirichlet(np.ones(K), size=m)
        for k in range(K):
            N[u, k] = R[:, k].sum()
            S1[u, k] = R[:, k] @ Y
            S2[u, k] = (R[:, k, None] * Y).T @ Y
    return N, S1, S2


def _population(rng: np.random.Generator) -> Population:
    A = rng.normal(size=(K, D, D))
    return Population(rng.dirichlet(np.ones(K)), rng.normal(size=(K, D)),
                      A @ np.swapaxes(A, 1, 2) + np.eye(D))


def _naive_map(N: Any, S1: Any, S2: Any, pop: Population, kappa: float, pool_var: Any,
               reg: float) -> list[list[tuple[Any, Any, Any]]]:
    """The MAP formulas written out per key and component with plain loops."""
    out: list[list[tuple[Any, Any, Any]]] = []
    for u in range(len(N)):
        n = N[u].sum()
        loc = S1[u].sum(0) / n if n > 0 else np.zeros(D)
        m2 = np.maximum(np.diag(S2[u].sum(0)) - S1[u].sum(0) * loc, 0.0)
        s2 = (kappa * pool_var + m2) / (kappa + n)
        Dm = np.diag(np.sqrt(s2))
        comps: list[tuple[Any, Any, Any]] = []
        for j in range(K):
            kj = kappa * pop.weights[j]
            mj = loc + np.sqrt(s2) * pop.means[j]
            mean = (kj * mj + S1[u, j]) / (kj + N[u, j])
            cov = (kj * (Dm @ pop.covariances[j] @ Dm + np.outer(mj, mj)) + S2[u, j]) / (
                kj + N[u, j]) - np.outer(mean, mean) + reg * np.diag(s2)
            comps.append(((kj + N[u, j]) / (kappa + n), mean, cov))
        out.append(comps)
    return out


def test_map_parameters_and_scores_match_scipy_per_key() -> None:
    rng = np.random.default_rng(0)
    N, S1, S2 = _stats(rng, 40, 60)
    pop = _population(rng)
    pool = rng.uniform(0.5, 2.0, D)
    p = map_parameters(N, S1, S2, pop, 7.0, pool, 1e-3)
    ref = _naive_map(N, S1, S2, pop, 7.0, pool, 1e-3)
    Y = rng.normal(size=(300, D)) * 2
    g = rng.integers(0, len(N), 300)
    log_prob, log_resp, log_tail = score_rows(Y, g, p)
    for i in range(300):
        comps = ref[g[i]]
        dens = np.array([w * multivariate_normal(mu, c).pdf(Y[i]) for w, mu, c in comps])
        assert np.isclose(log_prob[i], np.log(dens.sum()), rtol=1e-9, atol=1e-9)
        assert np.allclose(np.exp(log_resp[i]), dens / dens.sum(), atol=1e-9)
        # the chi-square mixture bound, written out
        bound = sum(
            w * chi2(D).sf(2 * (np.log(w) + multivariate_normal(mu, c).logpdf(mu)
                                - np.log(dens.sum())))
            for w, mu, c in comps
        )
        assert np.isclose(np.exp(log_tail[i]), min(bound, 1.0), rtol=1e-4, atol=1e-12)
    for u in range(len(N)):
        for j in range(K):
            w, mu, c = ref[u][j]
            assert np.isclose(np.exp(p.log_weights[u, j]), w)
            assert np.allclose(p.means[u, j], mu)
            inv = p.whiten[u, j].T @ p.whiten[u, j]
            assert np.allclose(inv, np.linalg.inv(c), rtol=1e-7, atol=1e-9)


def test_group_sums_match_a_loop_per_key() -> None:
    rng = np.random.default_rng(1)
    slots = rng.integers(0, 50, 500)
    Y = rng.normal(size=(500, D))
    R = rng.dirichlet(np.ones(K), size=500)
    order, starts, gslot, counts = group_rows(slots)
    n, s1, s2 = group_sums(Y, R, order, starts)
    assert np.array_equal(gslot, np.unique(slots))
    for gi, s in enumerate(gslot):
        sel = slots == s
        assert counts[gi] == sel.sum()
        assert np.allclose(n[gi], R[sel].sum(0))
        assert np.allclose(s1[gi], R[sel].T @ Y[sel])
        for k in range(K):
            assert np.allclose(s2[gi, k], (R[sel, k, None] * Y[sel]).T @ Y[sel])


def test_key_moments_and_chol_whiten_match_numpy() -> None:
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(30, D)) + 5
    R = rng.dirichlet(np.ones(K), size=30)
    n, s1, s2 = group_sums(Y, R, np.arange(30), np.array([0]))
    tot, loc, m2 = key_moments(n, s1, s2)
    assert np.isclose(tot[0], 30)
    assert np.allclose(loc[0], Y.mean(0))
    assert np.allclose(m2[0], ((Y - Y.mean(0)) ** 2).sum(0))
    A = rng.normal(size=(20, 5, 5))
    C = A @ np.swapaxes(A, 1, 2) + np.eye(5)
    W, log_det = chol_whiten(C.reshape(4, 5, 5, 5))
    L = np.linalg.cholesky(C)
    assert np.allclose(W.reshape(20, 5, 5), np.linalg.inv(L), atol=1e-10)
    assert np.allclose(log_det.ravel(), np.linalg.slogdet(C)[1] / 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kappa=st.floats(0.5, 200.0),
       reg=st.floats(0.0, 1e-2), n_keys=st.integers(1, 30))
def test_weights_sum_to_one_and_covariances_are_positive_definite(
        seed: int, kappa: float, reg: float, n_keys: int) -> None:
    rng = np.random.default_rng(seed)
    N, S1, S2 = _stats(rng, n_keys, 20)
    p = map_parameters(N, S1, S2, _population(rng), kappa, rng.uniform(0.1, 3.0, D), reg)
    assert np.allclose(np.exp(p.log_weights).sum(axis=1), 1.0)
    diag = np.diagonal(p.whiten, axis1=2, axis2=3)
    assert np.all(np.isfinite(p.whiten)) and np.all(diag > 0)
    assert np.all(np.triu(p.whiten, 1) == 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 200))
def test_grouping_is_invariant_to_the_slot_numbering(seed: int, n: int) -> None:
    """Renumbering the slots (as a restore does) gives the same per-key sums bit for bit."""
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, 20, n)
    Y = rng.normal(size=(n, D))
    R = rng.dirichlet(np.ones(K), size=n)
    perm = rng.permutation(20)
    o1, st1, g1, _ = group_rows(slots)
    o2, st2, g2, _ = group_rows(perm[slots])
    a = group_sums(Y, R, o1, st1)
    b = group_sums(Y, R, o2, st2)
    pos = np.searchsorted(g2, perm[g1])
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y[pos])


def test_packed_lower_triangle_statistics_give_the_same_parameters() -> None:
    """Key records hold each S2 as its lower triangle; full matrices give the same results."""
    rng = np.random.default_rng(3)
    N, S1, S2 = _stats(rng, 25, 40)
    rows, cols = lower_index(D)
    packed = S2[:, :, rows, cols]
    pop = _population(rng)
    a = map_parameters(N, S1, S2, pop, 5.0, np.ones(D), 1e-3)
    b = map_parameters(N, S1, packed, pop, 5.0, np.ones(D), 1e-3)
    for name in ("log_weights", "means", "inv_diag", "log_norm", "loc", "scale"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.chol[rows, cols], b.chol[rows, cols])  # the set entries
    for x, y in zip(key_moments(N, S1, S2), key_moments(N, S1, packed), strict=True):
        np.testing.assert_array_equal(x, y)
    Y = rng.normal(size=(50, D))
    R = rng.dirichlet(np.ones(K), size=50)
    order, starts, _, _ = group_rows(rng.integers(0, 5, 50))
    tot = packed_group_sums(Y, R, order, starts)
    full = group_sums(Y, R, order, starts)[2]
    assert np.allclose(tot[:, K + K * D:].reshape(-1, K, len(rows)), full[:, :, rows, cols])
