"""Rows with missing readings (NaN) in keyed scoring: the marginal kernel against a naive
per-row scipy reference, its invariants (Hypothesis), and KeyedDetector on such rows."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, multivariate_normal

from streamem import KeyedDetector
from streamem.evaluation.fleet import fleet
from streamem.model._keyed import group_rows, map_parameters, score_rows
from streamem.model._keyed_missing import first_rows, score_rows_missing
from tests.keyed.test_kernels import _naive_map, _population, _stats

D = 3


def test_marginal_scores_match_scipy_per_row() -> None:
    rng = np.random.default_rng(3)
    N, S1, S2 = _stats(rng, 30, 50)
    pop = _population(rng)
    pool = rng.uniform(0.5, 2.0, D)
    p = map_parameters(N, S1, S2, pop, 7.0, pool, 1e-3)
    ref = _naive_map(N, S1, S2, pop, 7.0, pool, 1e-3)
    Y = rng.normal(size=(200, D)) * 2
    Y[rng.random((200, D)) < 0.4] = np.nan
    Y[np.isnan(Y).all(axis=1), 0] = 0.5       # at least one reading per row
    g = rng.integers(0, len(N), 200)
    log_prob, log_resp, log_tail = score_rows_missing(Y, g, p)
    for i in range(200):                      # the naive reference: one row at a time
        o = ~np.isnan(Y[i])
        comps = [(w, mu[o], c[np.ix_(o, o)]) for w, mu, c in ref[g[i]]]
        dens = np.array([w * multivariate_normal(mu, c).pdf(Y[i, o]) for w, mu, c in comps])
        assert np.isclose(log_prob[i], np.log(dens.sum()), rtol=1e-9, atol=1e-9)
        assert np.allclose(np.exp(log_resp[i]), dens / dens.sum(), atol=1e-9)
        bound = sum(
            w * chi2(int(o.sum())).sf(2 * (np.log(w) + multivariate_normal(mu, c).logpdf(mu)
                                           - np.log(dens.sum())))
            for w, mu, c in comps
        )
        assert np.isclose(np.exp(log_tail[i]), min(bound, 1.0), rtol=1e-4, atol=1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_rows=st.integers(1, 40))
def test_complete_rows_score_the_same_and_responsibilities_sum_to_one(seed: int,
                                                                      n_rows: int) -> None:
    rng = np.random.default_rng(seed)
    N, S1, S2 = _stats(rng, 5, 20)
    p = map_parameters(N, S1, S2, _population(rng), 5.0, np.ones(D), 1e-3)
    Y = rng.normal(size=(n_rows, D)) * 3
    g = rng.integers(0, 5, n_rows)
    full = score_rows(Y, g, p)
    Ym = Y.copy()
    Ym[rng.random((n_rows, D)) < 0.5] = np.nan
    Ym[np.isnan(Ym).all(axis=1), 1] = Y[np.isnan(Ym).all(axis=1), 1]
    marg = score_rows_missing(Ym, g, p)
    complete = ~np.isnan(Ym).any(axis=1)
    for a, b in zip(full, marg, strict=True):   # no NaN: the same as the complete kernel
        assert np.allclose(a[complete], b[complete], rtol=1e-9, atol=1e-9)
    assert np.allclose(np.exp(marg[1]).sum(axis=1), 1.0)
    assert np.all((marg[2] <= 0.0) & np.isfinite(marg[2]) & np.isfinite(marg[0]))


def test_first_rows_fill_a_missing_anchor_from_the_key_mean() -> None:
    A = np.array([[np.nan, 1.0], [2.0, np.nan], [6.0, 3.0], [np.nan, np.nan]])
    out = first_rows(A, np.array([0, 1, 2, 3]), np.array([0, 3]), np.array([3, 1]))
    assert out.tolist() == [[4.0, 1.0], [0.0, 0.0]]


def test_detector_does_not_learn_rows_with_missing_readings() -> None:
    f = fleet(40, 30, 3, seed=2)
    X = f.X.copy()
    X[::7, 1] = np.nan
    miss = np.isnan(X).any(axis=1)
    a = KeyedDetector(warmup=100_000, random_state=0)
    r = a.process(X, f.keys)
    assert not r.learned[miss].any() and r.learned[~miss].all()
    # the same statistics as a detector told not to learn those rows (filled with anchors)
    order, starts, _, counts = group_rows(f.keys)
    fill = first_rows(X, order, starts, counts)[np.unique(f.keys, return_inverse=True)[1]]
    b = KeyedDetector(warmup=100_000, random_state=0)
    rb = b.process(np.where(np.isnan(X), fill, X), f.keys, learn=~miss)
    assert a.table_ is not None and b.table_ is not None
    assert np.array_equal(a.table_.rec, b.table_.rec)
    assert np.allclose(r.surprise[~miss], rb.surprise[~miss])


def test_detector_flags_anomalies_in_rows_with_missing_readings() -> None:
    f = fleet(50, 200, 3, seed=2)
    X = f.X.copy()
    rng = np.random.default_rng(0)
    holes = rng.random(X.shape) < 0.15
    holes[holes.all(axis=1), 0] = False
    X[holes] = np.nan
    det = KeyedDetector(warmup=1000, random_state=0)
    res = [det.process(X[i:i + 500], f.keys[i:i + 500]) for i in range(0, len(X), 500)]
    flagged = np.concatenate([r.is_anomaly for r in res])
    surprise = np.concatenate([r.surprise for r in res])
    assert np.isfinite(surprise).all()
    late = np.arange(len(X)) > len(X) // 2
    bad = f.labels.astype(bool)
    both = late & holes.any(axis=1)
    # a reading missing: the key's own anomaly is still seen, the normal rows stay quiet
    assert flagged[both & bad].mean() > 0.5
    assert flagged[both & ~bad].mean() < 0.01
