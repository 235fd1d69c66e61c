"""Private kernels for missing values (NaN): marginal densities and conditional moments.

Rows are grouped by missingness pattern; each pattern factorises the observed blocks once
(design note, section 3).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._gaussian import (
    LOG_2PI,
    estimate_log_gaussian_prob,
    log_det_cholesky,
    precision_cholesky,
    safe_cholesky,
)

__all__ = ["conditional_fill", "estimate_log_gaussian_prob_missing"]

Array = NDArray[np.float64]


def _marginal_factors(
    means: Array, covariances: Array, covariance_type: str, obs: NDArray[np.bool_], reg_covar: float
) -> tuple[Array, Array]:
    """Precision Cholesky of the observed block of every component (one missingness pattern)."""
    if covariance_type == "diag":
        return means[:, obs], precision_cholesky(covariances[:, obs], "diag", reg_covar)
    sub = covariances[:, obs][:, :, obs]
    return means[:, obs], precision_cholesky(sub, "full", reg_covar)


def estimate_log_gaussian_prob_missing(
    X: Array,
    means: Array,
    covariances: Array,
    covariance_type: str,
    reg_covar: float = 0.0,
) -> tuple[Array, Array]:
    """Log marginal density of the observed part of each row under each component.

    Rows are grouped by missingness pattern (NaN marks a missing reading) and each pattern
    factorises the observed blocks once.

    Parameters
    ----------
    X
        Shape (n_samples, n_features); every row has at least one observed value.
    means, covariances
        Mixture parameters.
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Variance floor for the Cholesky fallback.

    Returns
    -------
    log_prob
        Shape (n_samples, n_components).
    log_norm_const
        ``log|U_k,oo| - d_o/2 log 2 pi`` per row and component, shape (n_samples, n_components).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> cov = np.array([[[4.0, 1.0], [1.0, 1.0]]])
    >>> X = np.array([[1.0, np.nan]])
    >>> lp, _ = estimate_log_gaussian_prob_missing(X, np.zeros((1, 2)), cov, "full")
    >>> bool(np.isclose(lp[0, 0], norm(0, 2).logpdf(1.0)))
    True
    """
    n = X.shape[0]
    K = means.shape[0]
    out = np.empty((n, K))
    lnc = np.empty((n, K))
    observed = ~np.isnan(X)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for p, obs in enumerate(patterns):
        rows = np.flatnonzero(inverse == p)
        mu_o, u_o = _marginal_factors(means, covariances, covariance_type, obs, reg_covar)
        out[rows] = estimate_log_gaussian_prob(X[np.ix_(rows, obs)], mu_o, u_o, covariance_type)
        lnc[rows] = log_det_cholesky(u_o, covariance_type) - 0.5 * int(obs.sum()) * LOG_2PI
    return out, lnc


def conditional_fill(
    X: Array, means: Array, covariances: Array, covariance_type: str, reg_covar: float = 0.0
) -> tuple[Array, Array]:
    """Per-component conditional expectations of the missing entries (Ghahramani & Jordan).

    Parameters
    ----------
    X
        Shape (n_samples, n_features) with NaN for missing entries.
    means, covariances
        Mixture parameters.
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Variance floor for the Cholesky fallback.

    Returns
    -------
    X_fill
        Shape (n_samples, n_components, n_features): ``E_k[x | x_o]``.
    cov_corr
        Shape (n_samples, n_components, n_features, n_features): the conditional covariance
        of the missing block, zero elsewhere (for ``"diag"``: shape
        (n_samples, n_components, n_features), the diagonal).

    Examples
    --------
    >>> import numpy as np
    >>> cov = np.array([[[1.0, 0.8], [0.8, 1.0]]])
    >>> xf, cc = conditional_fill(np.array([[1.0, np.nan]]), np.zeros((1, 2)), cov, "full")
    >>> np.round(xf[0, 0], 2).tolist(), round(float(cc[0, 0, 1, 1]), 2)
    ([1.0, 0.8], 0.36)
    """
    n, d = X.shape
    K = means.shape[0]
    X_fill = np.broadcast_to(X[:, None, :], (n, K, d)).copy()
    cov_corr = np.zeros((n, K, d) if covariance_type == "diag" else (n, K, d, d))
    missing = np.isnan(X)
    patterns, inverse = np.unique(missing, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for p, mis in enumerate(patterns):
        if not mis.any():
            continue
        rows = np.flatnonzero(inverse == p)
        obs = ~mis
        if covariance_type == "diag":
            X_fill[np.ix_(rows, np.arange(K), np.flatnonzero(mis))] = means[None][:, :, mis]
            cov_corr[np.ix_(rows, np.arange(K), np.flatnonzero(mis))] = covariances[None][:, :, mis]
            continue
        s_oo = covariances[:, obs][:, :, obs]
        s_mo = covariances[:, mis][:, :, obs]
        s_mm = covariances[:, mis][:, :, mis]
        L = safe_cholesky(s_oo, reg_covar)
        # G_k = S_mo S_oo^{-1}, shape (K, n_mis, n_obs)
        A = np.linalg.solve(L, np.swapaxes(s_mo, 1, 2))  # L^{-1} S_om
        G = np.swapaxes(np.linalg.solve(np.swapaxes(L, 1, 2), A), 1, 2)
        resid = X[rows][:, obs][:, None, :] - means[None, :, obs]  # (r, K, n_obs)
        cond_mean = means[None, :, mis] + np.einsum("kmo,rko->rkm", G, resid)
        cond_cov = s_mm - np.einsum("kmo,kpo->kmp", G, s_mo)
        mi = np.flatnonzero(mis)
        for j, col in enumerate(mi):
            X_fill[rows, :, col] = cond_mean[:, :, j]
        cov_corr[np.ix_(rows, np.arange(K), mi, mi)] = cond_cov[None]
    return X_fill, cov_corr
