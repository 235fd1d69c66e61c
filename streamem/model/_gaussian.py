"""Private, pure numerical kernels for Gaussian mixtures (numpy + scipy only).

Shapes follow scikit-learn: ``X`` is ``(n_samples, n_features)``, ``means`` is
``(n_components, n_features)``, full covariances are ``(n_components, n_features, n_features)``
and diagonal ones ``(n_components, n_features)``.

The factorisations (Cholesky, conditioning, precision factors) live in :mod:`._factor`,
missing-value kernels in :mod:`._missing`, the chi-square calibration in :mod:`._tail`.

Precisions are kept as Cholesky factors ``U_k = L_k^{-T}`` (``Sigma_k = L_k L_k^T``), so that
``log N(x; mu_k, Sigma_k) = -1/2 (d log 2 pi + ||U_k^T (x - mu_k)||^2) + sum_j log U_k[j, j]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._factor import (
    condition_covariances,
    factorize,
    log_det_cholesky,
    precision_cholesky,
    safe_cholesky,
)
from streamem.model._numeric import LOG_2PI, asum

__all__ = [
    "LOG_2PI",
    "condition_covariances",
    "estimate_log_gaussian_prob",
    "factorize",
    "full_log_prob_t",
    "log_det_cholesky",
    "precision_cholesky",
    "safe_cholesky",
    "scoring_factors",
]

Array = NDArray[np.float64]


def scoring_factors(means: Array, prec_chol: Array) -> Array:
    """The full-covariance scoring factors in one-GEMM layout (cache them per M-step).

    Row ``k d + e`` holds column ``e`` of ``U_k`` followed by ``-(mu_k^T U_k)_e``, so that
    ``factors @ [x; 1]`` stacks the whitened residuals ``U_k^T (x - mu_k)`` of every component.

    Parameters
    ----------
    means
        Shape (n_components, n_features).
    prec_chol
        Shape (n_components, n_features, n_features), from :func:`precision_cholesky`.

    Returns
    -------
    factors
        Shape (n_components * n_features, n_features + 1).

    Examples
    --------
    >>> import numpy as np
    >>> W = scoring_factors(np.ones((2, 3)), np.broadcast_to(np.eye(3), (2, 3, 3)))
    >>> W.shape, W[:3].tolist()
    ((6, 4), [[1.0, 0.0, 0.0, -1.0], [0.0, 1.0, 0.0, -1.0], [0.0, 0.0, 1.0, -1.0]])
    """
    K, d = means.shape
    out = np.empty((K * d, d + 1))
    view = out.reshape(K, d, d + 1)
    view[:, :, :d] = np.swapaxes(prec_chol, 1, 2)
    np.einsum("kd,kde->ke", means, prec_chol, out=view[:, :, d])
    np.negative(view[:, :, d], out=view[:, :, d])
    return out


def full_log_prob_t(X: Array, factors: Array, const: Array) -> Array:
    """``const_k - 1/2 ||U_k^T (x - mu_k)||^2`` in component-major layout, complete rows.

    One GEMM gives every component's whitened residuals; squaring and summing them runs
    along the samples (contiguous), which is what makes the layout fast.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), no NaN.
    factors
        From :func:`scoring_factors`.
    const
        Shape (n_components,), added per component (``log|U_k| - d/2 log 2 pi``, plus
        ``log pi_k`` for the weighted log-probabilities).

    Returns
    -------
    ndarray of shape (n_components, n_samples)

    Examples
    --------
    >>> import numpy as np
    >>> W = scoring_factors(np.zeros((1, 2)), np.eye(2)[None])
    >>> full_log_prob_t(np.array([[3.0, 4.0]]), W, np.zeros(1)).tolist()
    [[-12.5]]
    """
    n, d = X.shape
    XT = np.empty((d + 1, n))
    XT[:d] = X.T
    XT[d] = 1.0
    Y = factors @ XT
    Y *= Y
    out: Array = asum(Y.reshape(-1, d, n), axis=1)
    out *= -0.5
    out += const[:, None]
    return out


def estimate_log_gaussian_prob(
    X: Array,
    means: Array,
    prec_chol: Array,
    covariance_type: str,
    log_det: Array | None = None,
    factors: Array | None = None,
) -> Array:
    """Log density of each sample under each component, for complete rows.

    One GEMM for all components (:func:`full_log_prob_t`); full covariances give a
    Fortran-ordered result (a transposed view of the component-major array).

    Parameters
    ----------
    X
        Shape (n_samples, n_features), no NaN.
    means
        Shape (n_components, n_features).
    prec_chol
        Output of :func:`precision_cholesky`.
    covariance_type
        ``"full"`` or ``"diag"``.
    log_det
        Precomputed :func:`log_det_cholesky` of ``prec_chol`` (optional, saves time).
    factors
        Precomputed :func:`scoring_factors` (full covariances only; optional, saves time).

    Returns
    -------
    log_prob
        Shape (n_samples, n_components).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_normal
    >>> U = precision_cholesky(np.array([[[2.0, 0.3], [0.3, 1.0]]]), "full")
    >>> lp = estimate_log_gaussian_prob(np.array([[0.5, -1.0]]), np.zeros((1, 2)), U, "full")
    >>> ref = multivariate_normal([0, 0], [[2.0, 0.3], [0.3, 1.0]]).logpdf([0.5, -1.0])
    >>> bool(np.isclose(lp[0, 0], ref))
    True
    """
    d = X.shape[1]
    if log_det is None:
        log_det = log_det_cholesky(prec_chol, covariance_type)
    if covariance_type == "diag":
        prec = prec_chol**2
        maha = (
            (X**2) @ prec.T
            - 2.0 * X @ (means * prec).T
            + np.sum(means**2 * prec, axis=1)[None, :]
        )
        np.maximum(maha, 0.0, out=maha)
        out: Array = -0.5 * (d * LOG_2PI + maha) + log_det[None, :]
        return out
    W = factors if factors is not None else scoring_factors(means, prec_chol)
    full: Array = full_log_prob_t(X, W, log_det - 0.5 * d * LOG_2PI).T
    return full
