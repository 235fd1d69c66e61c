"""Private kernels for the HMM forward filter: a blocked scan and its naive reference.

The forward recursion ``alpha_t ∝ (alpha_{t-1} A) ⊙ b_t`` is sequential in ``t``. The blocked
kernel splits a batch into blocks of ``block`` events and forms, vectorised over the blocks,
the prefix products ``P_j = M_1 ... M_j`` of ``M_t = A diag(b_t)`` inside each block
(renormalised every few steps, so nothing underflows); one short pass over the blocks carries
the filter across them and one contraction gives every ``alpha_t``. That is about
``block + n / block`` numpy steps instead of ``n``. All terms are positive, so the products
have no cancellation and agree with the sequential recursion to rounding. A product that comes
near underflow anyway (an emission ``e^-700`` below the others under a near-zero transition)
sends the batch, or the block of an underflowing row, to the sequential recursion.

Emissions are given as log-densities ``log b_t(k)`` and shifted by their row maximum before
exponentiation; the shift is added back to the predictive log-likelihood.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["forward_filter", "forward_filter_naive"]

Array = NDArray[np.float64]

_FLOOR = -700.0  # log b - max: below this the emission is treated as exp(-700)
_RENORM = 4  # prefix products are renormalised every _RENORM steps
_TINY = 1e-250  # a block norm below this is redone by the sequential recursion


def _emissions(log_b: Array) -> tuple[Array, Array]:
    """Row-shifted emission likelihoods ``b`` in ``[e^-700, 1]`` and the shifts ``m``."""
    m = np.max(log_b, axis=1)
    m = np.where(np.isfinite(m), m, 0.0)
    b = np.exp(np.maximum(log_b - m[:, None], _FLOOR))
    return b, m


def forward_filter_naive(log_b: Array, trans: Array, pred0: Array) -> tuple[Array, Array]:
    """Reference forward filter: the textbook scaled recursion, one event at a time.

    Parameters
    ----------
    log_b
        Emission log-densities ``log p(x_t | s_t = k)``, shape (n_samples, n_components).
    trans
        Transition matrix ``A[i, j] = P(s_t = j | s_{t-1} = i)``, shape (K, K).
    pred0
        Predictive state distribution of the first event ``P(s_1 | x_<1)``, shape (K,).

    Returns
    -------
    alpha
        Filtered posteriors ``P(s_t | x_1..t)``, shape (n_samples, n_components).
    log_pred
        Predictive log-likelihoods ``log p(x_t | x_1..t-1)``, shape (n_samples,).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> a, lp = forward_filter_naive(np.log([[0.5, 0.1]]), A, np.array([0.5, 0.5]))
    >>> np.round(a, 4).tolist(), round(float(np.exp(lp[0])), 4)
    ([[0.8333, 0.1667]], 0.3)
    """
    n, K = log_b.shape
    b, m = _emissions(log_b)
    alpha = np.empty((n, K))
    log_pred = np.empty(n)
    pred = np.asarray(pred0, dtype=float)
    for t in range(n):
        u = pred * b[t]
        c = u.sum()
        alpha[t] = u / c
        log_pred[t] = np.log(c) + m[t]
        pred = alpha[t] @ trans
    return alpha, log_pred


def forward_filter(
    log_b: Array, trans: Array, pred0: Array, block: int = 32
) -> tuple[Array, Array]:
    """Blocked forward filter, equal to :func:`forward_filter_naive` to rounding.

    Parameters
    ----------
    log_b
        Emission log-densities, shape (n_samples, n_components).
    trans
        Transition matrix, shape (n_components, n_components), rows summing to 1.
    pred0
        Predictive state distribution of the first event, shape (n_components,).
    block
        Events per block; about ``sqrt(n_samples)`` minimises the number of numpy steps.

    Returns
    -------
    alpha
        Filtered posteriors, shape (n_samples, n_components); rows sum to 1.
    log_pred
        Predictive log-likelihoods ``log p(x_t | x_1..t-1)``, shape (n_samples,).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> lb, A = rng.normal(size=(100, 3)), np.full((3, 3), 1 / 3)
    >>> a1, l1 = forward_filter(lb, A, np.ones(3) / 3, block=8)
    >>> a2, l2 = forward_filter_naive(lb, A, np.ones(3) / 3)
    >>> bool(np.allclose(a1, a2) and np.allclose(l1, l2))
    True
    """
    n, K = log_b.shape
    if n <= 2 * block:
        return forward_filter_naive(log_b, trans, pred0)
    b, m = _emissions(log_b)
    # the first event uses pred0; events 1..n-1 are the scan over M_t = A diag(b_t)
    u0 = pred0 * b[0]
    a0 = u0 / u0.sum()
    rest = n - 1
    nb = -(-rest // block)
    M = np.empty((nb * block, K, K))
    np.multiply(trans[None, :, :], b[1:, None, :], out=M[:rest])
    M[rest:] = np.eye(K)  # padding: identity steps
    M = M.reshape(nb, block, K, K)
    P = np.empty_like(M)
    P[:, 0] = M[:, 0]
    # renormalise every few steps only: the entries shrink by at most a column sum of A per
    # step; a block whose norm comes near underflow is redone sequentially
    low = np.zeros(nb, dtype=bool)
    for j in range(1, block):
        np.matmul(P[:, j - 1], M[:, j], out=P[:, j])
        if j % _RENORM == 0 or j == block - 1:
            norm = P[:, j].sum(axis=(1, 2))
            low |= ~(norm > _TINY)
            np.divide(P[:, j], np.where(norm > 0, norm, 1.0)[:, None, None], out=P[:, j])
    if low.any():
        return forward_filter_naive(log_b, trans, pred0)
    # carry the (unnormalised, rescaled every _RENORM blocks) filter across the blocks
    starts = np.empty((nb, K))
    a = a0
    last = P[:, -1]
    for i in range(nb):
        starts[i] = a
        a = a @ last[i]
        if i % _RENORM == _RENORM - 1:
            s = a.sum()
            if not _TINY < s < np.inf:
                return forward_filter_naive(log_b, trans, pred0)
            a = a / s
    U = np.matmul(starts[:, None, None, :], P).reshape(nb * block, K)[:rest]
    alpha = np.empty((n, K))
    alpha[0] = a0
    us = U.sum(axis=1, keepdims=True)
    alpha[1:] = U / np.where(us > _TINY, us, 1.0)
    # an event whose row underflowed is redone from its block's start (scale-free)
    for i in np.unique(np.flatnonzero(~(us[:, 0] > _TINY)) // block).tolist():
        lo = 1 + i * block
        hi = min(lo + block, n)
        alpha[lo:hi], _ = forward_filter_naive(log_b[lo:hi], trans, starts[i] @ trans)
    pred = np.empty((n, K))
    pred[0] = pred0
    np.matmul(alpha[:-1], trans, out=pred[1:])
    log_pred = np.log(np.einsum("nk,nk->n", pred, b)) + m
    return alpha, log_pred
