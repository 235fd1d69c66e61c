"""Private kernels of the online HMM: emission log-densities, batch statistics and the M-step.

Statistics are sums weighted by each event's remaining decay weight ``w_t`` (its share at the
end of the batch): ``s0_k = sum w_t alpha_tk``, ``sx_k = sum w_t alpha_tk (x_t - shift)``,
``sxx_k = sum w_t alpha_tk (x_t - shift)(x_t - shift)^T`` (conditional moments for missing
entries) and ``xi_ij = sum w_t P(s_{t-1}=i, s_t=j | x_1..t)``, the expected transition counts
from the filter (Cappé 2011, with the pair posterior of the forward filter).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._gaussian import (
    estimate_log_gaussian_prob,
    log_det_cholesky,
    precision_cholesky,
    scoring_factors,
)
from streamem.model._missing import conditional_fill, estimate_log_gaussian_prob_missing

__all__ = ["Emission", "batch_statistics", "emission_log_prob", "m_step"]

Array = NDArray[np.float64]


class Emission:
    """Cached scoring factors of full-covariance Gaussian emissions (one M-step's worth).

    Parameters
    ----------
    means
        Shape (n_components, n_features).
    covariances
        Shape (n_components, n_features, n_features).
    reg_covar
        Variance floor for the Cholesky fallback.

    Examples
    --------
    >>> import numpy as np
    >>> e = Emission(np.zeros((2, 3)), np.broadcast_to(np.eye(3), (2, 3, 3)), 1e-6)
    >>> e.prec_chol.shape, e.log_det.tolist()
    ((2, 3, 3), [0.0, 0.0])
    """

    def __init__(self, means: Array, covariances: Array, reg_covar: float) -> None:
        self.means = means
        self.covariances = covariances
        self.reg_covar = reg_covar
        self.prec_chol = precision_cholesky(covariances, "full", reg_covar)
        self.log_det = log_det_cholesky(self.prec_chol, "full")
        self.factors = scoring_factors(means, self.prec_chol)


def emission_log_prob(X: Array, em: Emission) -> Array:
    """``log p(x_t | s_t = k)``, marginalising missing entries; 0 for an all-NaN row.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), NaN for missing.
    em
        The emission factors.

    Returns
    -------
    Shape (n_samples, n_components).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> e = Emission(np.zeros((1, 2)), np.eye(2)[None] * 4.0, 0.0)
    >>> lp = emission_log_prob(np.array([[1.0, np.nan], [np.nan, np.nan]]), e)
    >>> bool(np.isclose(lp[0, 0], norm(0, 2).logpdf(1.0))), float(lp[1, 0])
    (True, 0.0)
    """
    nan = np.isnan(X)
    partial = nan.any(axis=1)
    if not partial.any():
        return estimate_log_gaussian_prob(X, em.means, em.prec_chol, "full", em.log_det, em.factors)
    out = np.zeros((X.shape[0], em.means.shape[0]))
    full = ~partial
    if full.any():
        out[full] = estimate_log_gaussian_prob(
            X[full], em.means, em.prec_chol, "full", em.log_det, em.factors
        )
    some = partial & ~nan.all(axis=1)
    if some.any():
        out[some], _ = estimate_log_gaussian_prob_missing(
            X[some], em.means, em.covariances, "full", em.reg_covar
        )
    return out


def batch_statistics(
    X: Array, shift: Array, alpha: Array, weights: Array, em: Emission
) -> tuple[Array, Array, Array]:
    """Weighted emission statistics ``(s0, sx, sxx)`` of one batch under filtered posteriors.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), NaN for missing (all-NaN rows must have weight 0).
    shift
        Centre of the moments, shape (n_features,).
    alpha
        Filtered posteriors, shape (n_samples, n_components).
    weights
        Per-event weight (decay share, 0 for events not learned), shape (n_samples,).
    em
        Emission parameters (for the conditional moments of missing entries).

    Returns
    -------
    s0
        Shape (K,).
    sx
        Shape (K, n_features).
    sxx
        Shape (K, n_features, n_features).

    Examples
    --------
    >>> import numpy as np
    >>> e = Emission(np.zeros((1, 2)), np.eye(2)[None], 0.0)
    >>> s0, sx, sxx = batch_statistics(np.ones((3, 2)), np.zeros(2), np.ones((3, 1)),
    ...                                np.ones(3), e)
    >>> s0.tolist(), sx.tolist(), sxx[0].tolist()
    ([3.0], [[3.0, 3.0]], [[3.0, 3.0], [3.0, 3.0]])
    """
    R = alpha * weights[:, None]
    nan = np.isnan(X)
    partial = nan.any(axis=1)
    Xs = X - shift
    if partial.any():
        full = ~partial
        Rf, Xf = R[full], Xs[full]
    else:
        Rf, Xf = R, Xs
    s0 = R.sum(axis=0)
    K, d = R.shape[1], X.shape[1]
    sx = Rf.T @ Xf
    # one matmul: (K d, n) @ (n, d) for sum_n R_nk x_n x_n^T
    sxx = ((Rf[:, :, None] * Xf[:, None, :]).reshape(-1, K * d).T @ Xf).reshape(K, d, d)
    rows = np.flatnonzero(partial & (weights > 0))
    if rows.size:
        fill, corr = conditional_fill(X[rows], em.means, em.covariances, "full", em.reg_covar)
        fill -= shift
        Rp = R[rows]
        sx += np.einsum("nk,nkd->kd", Rp, fill)
        sxx += np.einsum("nk,nkd,nke->kde", Rp, fill, fill, optimize=True)
        sxx += np.einsum("nk,nkde->kde", Rp, corr)
    return s0, sx, sxx


def m_step(
    s0: Array, sx: Array, sxx: Array, xi: Array, shift: Array, em: Emission,
    transition_prior: float,
) -> tuple[Array, Array, Array]:
    """Means, covariances and transition matrix from the decayed statistics.

    A state with less than 1e-6 events of statistics keeps its emission; the transition rows
    add ``transition_prior / K`` pseudo-counts per cell, so every row sums to 1.

    Parameters
    ----------
    s0, sx, sxx
        Decayed emission statistics, shapes (K,), (K, d), (K, d, d).
    xi
        Decayed expected transition counts, shape (K, K).
    shift
        Centre of the moments, shape (d,).
    em
        Current emission (kept for empty states; ``reg_covar`` is added to diagonals).
    transition_prior
        Pseudo-counts per row.

    Returns
    -------
    means, covariances, transmat

    Examples
    --------
    >>> import numpy as np
    >>> e = Emission(np.zeros((1, 1)), np.ones((1, 1, 1)), 0.0)
    >>> mu, cov, A = m_step(np.array([2.0]), np.array([[2.0]]), np.array([[[4.0]]]),
    ...                     np.array([[1.0]]), np.zeros(1), e, 0.0)
    >>> mu.tolist(), cov.tolist(), A.tolist()
    ([[1.0]], [[[1.0]]], [[1.0]])
    """
    K, d = sx.shape
    live = s0 > 1e-6
    means = em.means.copy()
    covs = em.covariances.copy()
    m = sx[live] / s0[live, None]
    means[live] = m + shift
    c = sxx[live] / s0[live, None, None] - np.einsum("kd,ke->kde", m, m)
    c = 0.5 * (c + np.swapaxes(c, 1, 2))
    covs[live] = c + em.reg_covar * np.eye(d)
    counts = xi + transition_prior / K
    return means, covs, counts / counts.sum(axis=1, keepdims=True)
