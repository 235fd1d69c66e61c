"""Private kernels for the HMM forward filter: a blocked scan and its naive reference.

The forward recursion ``alpha_t ∝ (alpha_{t-1} A) ⊙ b_t`` is sequential in ``t``. The blocked
kernel splits a batch into blocks of ``block`` events and forms, vectorised over the blocks,
the prefix products ``P_j = M_1 ... M_j`` of ``M_t = A diag(b_t)`` inside each block (each
product renormalised, so nothing underflows); one short pass over the blocks carries the
filter across them and one contraction gives every ``alpha_t``. That is ``block + n / block``
numpy steps instead of ``n``. All terms are positive, so the products have no cancellation and
agree with the sequential recursion to rounding; a block whose rows underflow anyway (an
emission ``e^-700`` below the others) is redone by the sequential recursion.

Emissions are given as log-densities ``log b_t(k)`` and shifted by their row maximum before
exponentiation; the shift is added back to the predictive log-likelihood.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["forward_filter", "forward_filter_naive"]

Array = NDArray[np.float64]

_FLOOR = -700.0  # log b - max: below this the emission is treated as exp(-700)


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
    M = np.broadcast_to(np.eye(K), (nb * block, K, K)).copy()
    M[:rest] = trans[None, :, :] * b[1:, None, :]
    M = M.reshape(nb, block, K, K)
    P = np.empty_like(M)
    P[:, 0] = M[:, 0]
    P[:, 0] /= P[:, 0].sum(axis=(1, 2))[:, None, None]
    for j in range(1, block):
        np.matmul(P[:, j - 1], M[:, j], out=P[:, j])
        P[:, j] /= P[:, j].sum(axis=(1, 2))[:, None, None]
    starts = np.empty((nb, K))
    a = a0
    bad: list[int] = []
    for i in range(nb):
        starts[i] = a
        u = a @ P[i, -1]
        s = u.sum()
        if not (s > 0.0 and np.isfinite(s)):
            bad.append(i)
            lo = 1 + i * block
            hi = min(lo + block, n)
            sub, _ = forward_filter_naive(log_b[lo:hi], trans, a @ trans)
            a = sub[-1]
        else:
            a = u / s
    U = np.einsum("bk,bjkl->bjl", starts, P).reshape(nb * block, K)[:rest]
    alpha = np.empty((n, K))
    alpha[0] = a0
    alpha[1:] = U / U.sum(axis=1, keepdims=True)
    for i in bad:
        lo = 1 + i * block
        hi = min(lo + block, n)
        alpha[lo:hi], _ = forward_filter_naive(log_b[lo:hi], trans, starts[i] @ trans)
    pred = np.empty((n, K))
    pred[0] = pred0
    np.matmul(alpha[:-1], trans, out=pred[1:])
    log_pred = np.log(np.einsum("nk,nk->n", pred, b)) + m
    return alpha, log_pred
