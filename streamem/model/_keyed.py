"""Private stacked-array kernels for many small Gaussian mixtures at once (one per key).

The parameters of every key a batch touches are computed together from arrays shaped
(n_keys, n_components, ...), so a batch spanning thousands of keys costs a fixed number of
numpy calls: a stable argsort groups the rows by key, their statistics are summed per key
(the first row of each key, then ``np.add.at`` for the others), and the Cholesky
factorisation runs on the touched keys only, on entry planes
(:mod:`streamem.model._keyed_linalg`).

Each key holds decayed sufficient statistics relative to its own anchor ``a`` (its first
row): ``N`` (n_keys, K), ``S1 = sum r y`` (n_keys, K, d), ``S2 = sum r y y^T``
(n_keys, K, d, d) with ``y = x - a``. Its mixture is the MAP estimate under a
normal-inverse-Wishart prior taken from a *population* mixture that lives in every key's own
standardised space (:func:`map_parameters`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._keyed_linalg import across, cholesky_planes, dot_planes
from streamem.model._numeric import LOG_2PI
from streamem.model._tail import log_chi2_sf

__all__ = [
    "KeyParams",
    "Population",
    "group_rows",
    "group_sums",
    "key_moments",
    "lower_index",
    "map_parameters",
    "mixture_rows",
    "packed_group_sums",
    "score_rows",
]

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]


@cache
def lower_index(d: int) -> tuple[IntArray, IntArray]:
    """Row and column of the ``d (d + 1) / 2`` lower-triangle entries, row by row: the order
    in which a key record packs each ``S2`` (cached: do not modify).

    Examples
    --------
    >>> [a.tolist() for a in lower_index(2)]
    [[0, 1, 1], [0, 0, 1]]
    """
    rows, cols = np.tril_indices(d)
    return rows.astype(np.intp), cols.astype(np.intp)


def _packed(S2: Array) -> Array:
    """``S2`` packed to its lower triangle (n_keys, K, T), if given as full matrices."""
    if S2.ndim == 3:
        return S2
    rows, cols = lower_index(S2.shape[-1])
    out: Array = S2[:, :, rows, cols]
    return out


class Population:
    """A mixture in standardised space: the prior of every key.

    Parameters
    ----------
    weights
        Shape (n_components,), summing to 1.
    means
        Shape (n_components, n_features).
    covariances
        Shape (n_components, n_features, n_features), positive definite.

    Examples
    --------
    >>> p = Population.standard(2, 3)
    >>> p.weights.tolist(), p.means.shape, float(p.covariances[1, 2, 2])
    ([0.5, 0.5], (2, 3), 1.0)
    """

    def __init__(self, weights: Array, means: Array, covariances: Array) -> None:
        self.weights, self.means, self.covariances = weights, means, covariances

    @classmethod
    def standard(cls, n_components: int, n_features: int) -> Population:
        """``n_components`` identical standard normals (the prior before any fit)."""
        K, d = n_components, n_features
        eye = np.broadcast_to(np.eye(d), (K, d, d)).copy()
        return cls(np.full(K, 1.0 / K), np.zeros((K, d)), eye)


class KeyParams:
    """MAP mixture parameters of ``n_keys`` keys, in anchor-relative units.

    Attributes
    ----------
    log_weights
        Shape (n_keys, K).
    means
        Shape (n_keys, K, d).
    chol, inv_diag
        The Cholesky factor ``L`` of each covariance on entry planes, shape
        (d, d, n_keys, K) (``chol[i, j]``: entry ``(i, j)`` of every key and component; only
        the lower triangle is set), and ``1 / L_ii``, shape (d, n_keys, K).
    log_norm
        ``-log|L| - d/2 log 2 pi``, shape (n_keys, K).
    loc, scale
        The key's standardisation (location and scale per feature), shape (n_keys, d).
    n, m2
        The key's event weight (n_keys,) and within-key scatter (n_keys, d)
        (:func:`key_moments`).
    """

    def __init__(self, log_weights: Array, means: Array, chol: Array, inv_diag: Array,
                 log_norm: Array, loc: Array, scale: Array, n: Array, m2: Array) -> None:
        self.log_weights, self.means, self.chol, self.inv_diag = log_weights, means, chol, inv_diag
        self.log_norm, self.loc, self.scale, self.n, self.m2 = log_norm, loc, scale, n, m2

    @property
    def whiten(self) -> Array:
        """``W = L^{-1}`` as a stack, shape (n_keys, K, d, d), lower triangular."""
        L = np.tril(np.moveaxis(self.chol, (0, 1), (2, 3)))
        out: Array = np.tril(np.linalg.inv(L))
        return out


def group_rows(slots: NDArray[Any]) -> tuple[IntArray, IntArray, NDArray[Any], IntArray]:
    """Group rows by slot (or key): a stable order, group starts, the slot and size of each
    group.

    Parameters
    ----------
    slots
        Shape (n_samples,), the key slot (or the key, int or str) of every row.

    Returns
    -------
    order
        Shape (n_samples,): rows sorted by slot, in arrival order within a slot.
    starts
        Shape (n_groups,): where each group starts in ``order``.
    group_slot, counts
        Shape (n_groups,): the slot and row count of each group (slots ascending).

    Examples
    --------
    >>> import numpy as np
    >>> [a.tolist() for a in group_rows(np.array([3, 1, 3, 0]))]
    [[3, 1, 0, 2], [0, 1, 2], [0, 1, 3], [1, 1, 2]]
    """
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    edge = np.empty(len(s), dtype=bool)
    if len(s):
        edge[0] = True
        np.not_equal(s[1:], s[:-1], out=edge[1:])
    starts = np.flatnonzero(edge)
    counts = np.diff(np.append(starts, len(s)))
    return order, starts, s[starts], counts


def group_sums(Y: Array, resp: Array, order: IntArray, starts: IntArray
               ) -> tuple[Array, Array, Array]:
    """Per-group responsibility-weighted sums ``sum r``, ``sum r y``, ``sum r y y^T``.

    Parameters
    ----------
    Y
        Shape (n_samples, d), anchor-relative rows.
    resp
        Shape (n_samples, K), responsibilities (0 for rows not learned).
    order, starts
        From :func:`group_rows`.

    Returns
    -------
    n, s1, s2
        Shapes (n_groups, K), (n_groups, K, d), (n_groups, K, d, d).

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1.0], [2.0], [3.0]]); R = np.ones((3, 1))
    >>> n, s1, s2 = group_sums(Y, R, np.array([0, 2, 1]), np.array([0, 2]))
    >>> n.ravel().tolist(), s1.ravel().tolist(), s2.ravel().tolist()
    ([2.0, 1.0], [4.0, 2.0], [10.0, 4.0])
    """
    K, d = resp.shape[1], Y.shape[1]
    tot = packed_group_sums(Y, resp, order, starts)
    g = len(starts)
    rows, cols = lower_index(d)
    s2 = np.empty((g, K, d, d))
    low = tot[:, K + K * d:].reshape(g, K, len(rows))
    s2[:, :, rows, cols] = low
    s2[:, :, cols, rows] = low
    return tot[:, :K], tot[:, K:K + K * d].reshape(g, K, d), s2


def packed_group_sums(Y: Array, resp: Array, order: IntArray, starts: IntArray) -> Array:
    """:func:`group_sums` packed as one row per group, ``[n | s1 | s2]`` flattened with
    ``s2`` as its lower triangle (:func:`lower_index`): the layout of the statistics block of
    a key record, so it adds to it in one operation.

    Examples
    --------
    >>> import numpy as np
    >>> packed_group_sums(np.array([[2.0]]), np.ones((1, 1)), np.array([0]), np.array([0]))
    array([[1., 2., 4.]])
    """
    n, d = Y.shape
    K = resp.shape[1]
    Yo, Ro = np.take(Y, order, axis=0), np.take(resp, order, axis=0)   # rows by group
    rows, cols = lower_index(d)
    T = len(rows)
    packed = np.empty((n, K + K * d + K * T))
    packed[:, :K] = Ro
    ry = packed[:, K:K + K * d].reshape(n, K, d)              # views into packed
    np.multiply(Ro[:, :, None], Yo[:, None, :], out=ry)
    ryy = packed[:, K + K * d:].reshape(n, K, T)              # the lower triangle only
    np.multiply(ry[:, :, rows], Yo[:, None, cols], out=ryy)
    if len(starts) == n:   # one row per group (an interleaved batch, mostly)
        return packed
    # each group's first row, then the later rows added in arrival order
    tot = np.take(packed, starts, axis=0)
    later = np.ones(n, dtype=bool)
    later[starts] = False
    grp = np.cumsum(~later) - 1
    np.add.at(tot, grp[later], packed[later])
    return tot


def key_moments(N: Array, S1: Array, S2: Array) -> tuple[Array, Array, Array]:
    """Each key's event weight, mean and within-key scatter (diagonal), all components pooled.

    Parameters
    ----------
    N, S1, S2
        Shapes (n_keys, K), (n_keys, K, d), and (n_keys, K, d, d) or packed
        (n_keys, K, d (d + 1) / 2) (:func:`lower_index`).

    Returns
    -------
    n, loc, m2
        Shapes (n_keys,), (n_keys, d), (n_keys, d): ``m2 = sum (y - loc)^2`` (>= 0); a key
        without events has ``loc = 0``.

    Examples
    --------
    >>> import numpy as np
    >>> n, loc, m2 = key_moments(np.array([[2.0]]), np.array([[[4.0]]]), np.array([[[[10.0]]]]))
    >>> n.tolist(), loc.tolist(), m2.tolist()
    ([2.0], [[2.0]], [[2.0]])
    """
    K, d = S1.shape[1], S1.shape[2]
    n, s1 = N[:, 0].copy(), S1[:, 0].copy()
    if S2.ndim == 4:
        idx = np.arange(d)
        diag = S2[:, :, idx, idx]
    else:  # packed lower triangle: the diagonal of row i sits at i (i + 3) / 2
        diag = S2[:, :, [i * (i + 3) // 2 for i in range(d)]]
    s2 = diag[:, 0].copy()
    for k in range(1, K):  # a loop over the components, each vectorised over keys
        n += N[:, k]
        s1 += S1[:, k]
        s2 += diag[:, k]
    loc = s1 / np.maximum(n, 1e-300)[:, None]
    m2 = np.maximum(s2 - s1 * loc, 0.0)
    return n, loc, m2


def map_parameters(N: Array, S1: Array, S2: Array, pop: Population, kappa: float,
                   pool_var: Array, reg: float) -> KeyParams:
    """The MAP mixture of every key under the population prior (NIW, strength ``kappa``).

    A key's scale is ``s^2 = (kappa * pool_var + m2) / (kappa + n)`` (:func:`key_moments`),
    its location ``loc`` its mean. Component ``j`` has prior mean ``m_j = loc + s mu0_j``,
    prior covariance ``D Psi_j D`` (``D = diag s``) and strength ``kappa_j = kappa w0_j``::

        mean_j = (kappa_j m_j + S1_j) / (kappa_j + N_j)
        cov_j  = (kappa_j (D Psi_j D + m_j m_j^T) + S2_j) / (kappa_j + N_j)
                 - mean_j mean_j^T + reg s^2 I
        w_j    = (kappa_j + N_j) / (kappa + sum N)

    so every covariance is positive definite and a key without events is the population
    mapped to its location.

    Parameters
    ----------
    N, S1, S2
        Shapes (n_keys, K), (n_keys, K, d), and (n_keys, K, d, d) or packed
        (n_keys, K, d (d + 1) / 2).
    pop
        The population mixture (K components, d features).
    kappa
        Prior strength in pseudo-events, > 0.
    pool_var
        Shape (d,): the pooled within-key variance (the scale of a key without events).
    reg
        Relative diagonal regularisation.

    Returns
    -------
    KeyParams

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((1, 2, 1)); p = map_parameters(np.zeros((1, 2)), z, z[..., None],
    ...     Population.standard(2, 1), 10.0, np.array([4.0]), 0.0)
    >>> np.exp(p.log_weights).tolist(), p.whiten.ravel().tolist(), p.scale.tolist()
    ([[0.5, 0.5]], [0.5, 0.5], [[2.0]])
    """
    d = S1.shape[2]
    n, loc, m2 = key_moments(N, S1, S2)
    s2 = (kappa * pool_var[None, :] + m2) / (kappa + n)[:, None]
    s = np.sqrt(s2)
    kj = kappa * pop.weights                                          # (K,)
    m = loc[:, None, :] + s[:, None, :] * pop.means[None]             # (U, K, d)
    den = kj[None, :] + N                                             # (U, K)
    inv = 1.0 / den
    a = kj[None, :] * inv
    mean = (kj[None, :, None] * m + S1) * inv[..., None]
    # entry planes (d, ..., U, K): one vectorised operation per covariance entry
    mT = np.ascontiguousarray(np.moveaxis(m, 2, 0))
    meanT = np.ascontiguousarray(np.moveaxis(mean, 2, 0))
    sT, s2T = np.ascontiguousarray(s.T), np.ascontiguousarray(s2.T)
    C = np.empty((d, d, *N.shape))
    psi = pop.covariances
    S2T = np.ascontiguousarray(np.moveaxis(_packed(S2), 2, 0))    # (T, U, K)
    t = 0
    for i in range(d):
        for j in range(i + 1):
            c = S2T[t] * inv
            t += 1
            c += a * ((sT[i] * sT[j])[:, None] * psi[:, i, j] + mT[i] * mT[j])
            c -= meanT[i] * meanT[j]
            if i == j:
                c += (reg * s2T[i])[:, None]
            C[i, j] = c
    L, inv_diag = cholesky_planes(C)
    log_norm = np.log(inv_diag).sum(axis=0) - 0.5 * d * LOG_2PI
    log_w = np.log(den) - np.log(kappa + n)[:, None]
    return KeyParams(log_w, mean, L, inv_diag, log_norm, loc, s, n, m2)


def score_rows(Y: Array, group: IntArray, p: KeyParams) -> tuple[Array, Array, Array]:
    """Log-density, responsibilities and the chi-square mixture tail bound of every row.

    Parameters
    ----------
    Y
        Shape (n_samples, d), anchor-relative rows (no NaN).
    group
        Shape (n_samples,): each row's index into ``p``.
    p
        Parameters of the keys (:func:`map_parameters`).

    Returns
    -------
    log_prob, log_resp, log_tail
        Shapes (n_samples,), (n_samples, K), (n_samples,). ``log_tail`` bounds
        ``P(f(X) <= f(x))`` by ``sum_k w_k S_{chi2_d}(2 (log w_k + log_norm_k - log f(x)))``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((1, 1, 1)); p = map_parameters(np.zeros((1, 1)), z, z[..., None],
    ...     Population.standard(1, 1), 10.0, np.ones(1), 0.0)
    >>> lp, lr, lt = score_rows(np.array([[2.0]]), np.array([0]), p)
    >>> from scipy.stats import norm
    >>> bool(np.isclose(lp[0], norm.logpdf(2.0))), bool(np.isclose(np.exp(lt[0]), 2 * norm.sf(2)))
    (True, True)
    """
    d = Y.shape[1]
    # np.take: several times faster than fancy indexing along an inner axis
    R = np.moveaxis(Y[:, None, :] - np.take(p.means, group, axis=0), 2, 0)   # (d, n, K)
    # whitening by forward substitution, w = L^{-1} r, one plane (n, K) at a time
    inv_diag = np.take(p.inv_diag, group, axis=1)
    w = np.empty_like(R)
    for i in range(d):
        acc = R[i].copy()
        for j in range(i):
            acc -= np.take(p.chol[i, j], group, axis=0) * w[j]
        np.multiply(acc, inv_diag[i], out=w[i])
    maha = dot_planes(w, w)
    lw = np.take(p.log_weights, group, axis=0)
    peak = lw + np.take(p.log_norm, group, axis=0)                    # (n, K)
    return mixture_rows(maha, lw, peak, float(d))


def mixture_rows(maha: Array, lw: Array, peak: Array, df: Array | float
                 ) -> tuple[Array, Array, Array]:
    """Log-density, responsibilities and tail bound of rows from their squared Mahalanobis
    distances ``maha`` (n, K; overwritten), log weights ``lw`` and ``peak = lw + log_norm``
    (n, K), with ``df`` (scalar or (n,)) the dimension each row is scored in
    (:func:`score_rows`).

    Examples
    --------
    >>> import numpy as np
    >>> lp, lr, lt = mixture_rows(np.array([[0.0]]), np.zeros((1, 1)), np.zeros((1, 1)), 2.0)
    >>> lp.tolist(), lr.tolist(), lt.tolist()
    ([0.0], [[0.0]], [0.0])
    """
    maha *= -0.5
    lj = maha + peak
    top = across(np.maximum, lj)
    log_prob = top + np.log(across(np.add, np.exp(lj - top[:, None])))
    log_resp = lj - log_prob[:, None]
    c = 2.0 * (peak - log_prob[:, None])
    # a term 300 beyond the row's smallest is below e^-150 of it: clip it into the table
    # (the exact far-tail path is then taken only by rows far from every component)
    cap = np.maximum(across(np.minimum, c) + 300.0, 400.0)
    np.minimum(c, cap[:, None], out=c)
    dfs = float(df) if np.ndim(df) == 0 else np.asarray(df, dtype=float)[:, None]
    terms = log_chi2_sf(c, dfs) + lw
    tt = across(np.maximum, terms)
    log_tail = np.minimum(tt + np.log(across(np.add, np.exp(terms - tt[:, None]))), 0.0)
    return log_prob, log_resp, log_tail
