"""Private, pure helpers for the E-step and the sufficient statistics (numpy + scipy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._gaussian import (
    LOG_2PI,
    estimate_log_gaussian_prob,
    full_log_prob_t,
    log_det_cholesky,
    scoring_factors,
)
from streamem.model._missing import conditional_fill, estimate_log_gaussian_prob_missing
from streamem.model._numeric import amax, asum, exp_shifted, has_nan
from streamem.model._triangular import (
    BLOCK_MIN_FEATURES,
    BLOCK_MIN_SAMPLES,
    block_edges,
    blocked_scatter,
)

__all__ = [
    "centred_update",
    "estimate_weighted_log_prob",
    "log_normalize",
    "sufficient_statistics",
]

Array = NDArray[np.float64]


def log_normalize(weighted_log_prob: Array) -> tuple[Array, Array]:
    """Log-sum-exp over components: ``log f(x)`` and the log responsibilities.

    Parameters
    ----------
    weighted_log_prob
        ``log pi_k + log N_k(x)``, shape (n_samples, n_components).

    Returns
    -------
    log_prob_norm
        Shape (n_samples,).
    log_resp
        Shape (n_samples, n_components); each row's exponentials sum to 1. A transposed
        (Fortran-ordered) view of a component-major array: the learning kernels read it
        along the samples.

    Examples
    --------
    >>> import numpy as np
    >>> lp, lr = log_normalize(np.log(np.array([[0.2, 0.6]])))
    >>> np.round(np.exp(lr), 2).tolist(), round(float(np.exp(lp[0])), 2)
    ([[0.25, 0.75]], 0.8)
    """
    # component-major (K, n) layout: every reduction below runs along the samples
    wt = weighted_log_prob.T
    if not wt.flags.c_contiguous:
        wt = np.ascontiguousarray(wt)
    top = amax(wt, axis=0)
    shifted = wt - top
    log_total = np.log(asum(exp_shifted(shifted), axis=0))
    # responsibilities from the shifted values: exact even when |log f| ~ 1e11, where
    # (log pi_k + log N_k) - log f would lose every digit of the log-ratio
    shifted -= log_total
    log_prob_norm: Array = top + log_total
    log_resp: Array = shifted.T
    return log_prob_norm, log_resp


def estimate_weighted_log_prob(
    X: Array,
    log_weights: Array,
    means: Array,
    covariances: Array,
    prec_chol: Array,
    covariance_type: str,
    reg_covar: float,
    log_det: Array | None = None,
    factors: Array | None = None,
) -> tuple[Array, Array, Array | float]:
    """``log pi_k + log N_k(x_o)`` for rows that may contain NaN.

    Parameters
    ----------
    X
        Shape (n_samples, n_features); NaN marks a missing reading; each row has one
        observed value at least.
    log_weights
        Shape (n_components,).
    means, covariances, prec_chol
        Mixture parameters (``prec_chol`` from the full covariances, used for complete rows).
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Variance floor for marginal factorisations.
    log_det
        Precomputed ``log|U_k|`` of ``prec_chol``, shape (n_components,) (optional).
    factors
        Precomputed ``scoring_factors(means, prec_chol)`` for full covariances (optional).

    Returns
    -------
    weighted_log_prob
        Shape (n_samples, n_components).
    log_norm_const
        ``log|U_k,oo| - d_o/2 log 2 pi``, shape (n_samples, n_components), or
        (n_components,) when no row has a missing value.
    n_observed
        ``d_o`` per row, shape (n_samples,), or the scalar ``n_features`` when no row has a
        missing value.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.model._gaussian import precision_cholesky
    >>> cov = np.array([np.eye(2)])
    >>> U = precision_cholesky(cov, "full")
    >>> w, lnc, do = estimate_weighted_log_prob(np.array([[0.0, np.nan], [0.0, 0.0]]),
    ...     np.zeros(1), np.zeros((1, 2)), cov, U, "full", 1e-6)
    >>> do.tolist()
    [1.0, 2.0]
    """
    n, d = X.shape
    if log_det is None:
        log_det = log_det_cholesky(prec_chol, covariance_type)
    base_lnc = log_det - 0.5 * d * LOG_2PI
    if not has_nan(X):
        if covariance_type == "full":
            W = factors if factors is not None else scoring_factors(means, prec_chol)
            return full_log_prob_t(X, W, base_lnc + log_weights).T, base_lnc, float(d)
        lp = estimate_log_gaussian_prob(X, means, prec_chol, covariance_type, log_det, factors)
        lp += log_weights[None, :]
        return lp, base_lnc, float(d)
    nan = np.isnan(X)
    row_missing = nan.any(axis=1)
    lp = np.empty((n, means.shape[0]))
    lnc = np.empty_like(lp)
    full = ~row_missing
    if full.any():
        lp[full] = estimate_log_gaussian_prob(
            X[full], means, prec_chol, covariance_type, log_det, factors
        )
        lnc[full] = base_lnc
    lp_m, lnc_m = estimate_log_gaussian_prob_missing(
        X[row_missing], means, covariances, covariance_type, reg_covar
    )
    lp[row_missing] = lp_m
    lnc[row_missing] = lnc_m
    lp += log_weights[None, :]
    return lp, lnc, (d - nan.sum(axis=1)).astype(float)


def sufficient_statistics(
    X: Array,
    resp: Array,
    means: Array,
    covariances: Array,
    covariance_type: str,
    reg_covar: float,
    center: Array,
) -> tuple[Array, Array, Array]:
    """Responsibility-weighted sums of ``x`` and ``x x^T`` about ``center``.

    Missing entries contribute their per-component conditional expectation and the
    conditional covariance correction (so the covariances do not shrink).

    Parameters
    ----------
    X
        Shape (n_samples, n_features), NaN = missing.
    resp
        Shape (n_samples, n_components).
    means, covariances
        Current parameters (used only for rows with missing entries).
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Variance floor for the conditional factorisations.
    center
        Shape (n_features,); sums are taken of ``x - center`` to avoid cancellation.

    Returns
    -------
    nk
        Shape (n_components,): ``sum_i r_ik``.
    sx
        Shape (n_components, n_features): ``sum_i r_ik (x_i - c)``.
    sxx
        Shape (n_components, n_features, n_features) (``"diag"``: (n_components, n_features)):
        ``sum_i r_ik (x_i - c)(x_i - c)^T``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> nk, sx, sxx = sufficient_statistics(X, np.ones((2, 1)), np.zeros((1, 2)),
    ...     np.array([np.eye(2)]), "full", 1e-6, np.zeros(2))
    >>> nk.tolist(), sx.tolist(), sxx[0].tolist()
    ([2.0], [[4.0, 6.0]], [[10.0, 14.0], [14.0, 20.0]])
    """
    d = X.shape[1]
    K = resp.shape[1]
    # component-major layout (K, n) and (d, n): the broadcast products run along the samples
    RT = resp.T if resp.T.flags.c_contiguous else np.ascontiguousarray(resp.T)
    nk = RT.sum(axis=1)
    row_missing = np.isnan(X).any(axis=1) if has_nan(X) else None
    if row_missing is not None:
        full = ~row_missing
        XcT, Rc = np.subtract(X[full].T, center[:, None], order="C"), RT[:, full]
    else:
        XcT, Rc = np.subtract(X.T, center[:, None], order="C"), RT
    sx = Rc @ XcT.T
    if covariance_type == "diag":
        sxx = Rc @ (XcT * XcT).T
    elif d >= BLOCK_MIN_FEATURES and XcT.shape[1] >= BLOCK_MIN_SAMPLES:
        sxx = blocked_scatter(Rc, XcT, block_edges(d))
    else:
        nc = XcT.shape[1]
        sxx = ((Rc[:, None, :] * XcT[None, :, :]).reshape(K * d, nc) @ XcT.T).reshape(K, d, d)
    if row_missing is not None:
        Rm = resp[row_missing]
        Xf, cc = conditional_fill(X[row_missing], means, covariances, covariance_type, reg_covar)
        Xf -= center
        sx += np.einsum("nk,nkd->kd", Rm, Xf)
        if covariance_type == "diag":
            sxx += np.einsum("nk,nkd->kd", Rm, Xf * Xf + cc)
        else:
            sxx += np.einsum("nk,nki,nkj->kij", Rm, Xf, Xf) + np.einsum("nk,nkij->kij", Rm, cc)
    return nk, sx, sxx


def centred_update(
    s0: Array,
    mu: Array,
    C: Array,
    nk: Array,
    sx: Array,
    sxx: Array,
    center: Array,
    gamma: float,
    rho_max: float,
    n_samples: int,
) -> tuple[Array, Array, Array]:
    """One stepwise-EM step on the centred statistics ``(s0, mu, C)`` (design note, 1.3).

    ``s0' = (1-g) s0 + g b0``; with the per-component step ``rho_k = g b0_k / s0'_k``
    (capped at ``max(rho_max, g)``): ``mu' = mu + rho (m_b - mu)`` and
    ``C' = (1-rho) C + rho S_b + rho (1-rho) (m_b - mu)(m_b - mu)^T``.

    Parameters
    ----------
    s0, mu, C
        Current weights (n_components,), means (n_components, n_features) and ML covariances
        (n_components, n_features, n_features), or (n_components, n_features) for diag.
    nk, sx, sxx
        Batch sums from :func:`sufficient_statistics` about ``center``.
    center
        Shape (n_features,).
    gamma
        Step size of this batch.
    rho_max
        Cap on a component's effective step.
    n_samples
        Rows in the batch (``b0 = nk / n_samples``).

    Returns
    -------
    s0, mu, C
        New arrays (the inputs are not modified).

    Examples
    --------
    >>> import numpy as np
    >>> s0, mu, C = centred_update(np.ones(1), np.zeros((1, 1)), np.ones((1, 1, 1)),
    ...     np.array([2.0]), np.array([[4.0]]), np.array([[[10.0]]]), np.zeros(1), 0.5, 1.0, 2)
    >>> s0.tolist(), mu.tolist(), C.tolist()   # batch mean 2, batch variance 1
    ([1.0], [[1.0]], [[[2.0]]])
    """
    b0 = nk / n_samples
    s0_new = np.maximum((1.0 - gamma) * s0 + gamma * b0, 1e-300)
    rho = np.minimum(gamma * b0 / s0_new, max(rho_max, gamma))
    safe = np.maximum(nk, 1e-300)
    mb = sx / safe[:, None]
    delta = (mb + center) - mu
    if C.ndim == 2:
        Sb = sxx / safe[:, None] - mb**2
        C_new: Array = (
            (1.0 - rho)[:, None] * C + rho[:, None] * Sb + (rho * (1.0 - rho))[:, None] * delta**2
        )
    else:  # same operations and order as the formula above, in fewer temporaries
        r3 = rho[:, None, None]
        Sb = sxx / safe[:, None, None]
        Sb -= mb[:, :, None] * mb[:, None, :]
        Sb *= r3
        C_full = (1.0 - r3) * C
        C_full += Sb
        dd = delta[:, :, None] * delta[:, None, :]
        dd *= r3 * (1.0 - r3)
        C_full += dd
        C_new = C_full + np.swapaxes(C_full, 1, 2)
        C_new *= 0.5
    mu_new: Array = mu + rho[:, None] * delta
    return s0_new / s0_new.sum(), mu_new, C_new
