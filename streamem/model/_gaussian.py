"""Private, pure numerical kernels for Gaussian mixtures (numpy + scipy only).

Shapes follow scikit-learn: ``X`` is ``(n_samples, n_features)``, ``means`` is
``(n_components, n_features)``, full covariances are ``(n_components, n_features, n_features)``
and diagonal ones ``(n_components, n_features)``.

Missing-value kernels live in :mod:`._missing`, the chi-square calibration in :mod:`._tail`.

Precisions are kept as Cholesky factors ``U_k = L_k^{-T}`` (``Sigma_k = L_k L_k^T``), so that
``log N(x; mu_k, Sigma_k) = -1/2 (d log 2 pi + ||U_k^T (x - mu_k)||^2) + sum_j log U_k[j, j]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._numeric import LOG_2PI, SMALL_BATCH

__all__ = [
    "LOG_2PI",
    "condition_covariances",
    "estimate_log_gaussian_prob",
    "log_det_cholesky",
    "precision_cholesky",
    "safe_cholesky",
    "stacked_factors",
]

Array = NDArray[np.float64]


def safe_cholesky(cov: Array, reg_covar: float) -> Array:
    """Lower Cholesky factors of a stack of covariances, with a jitter and eigenvalue floor.

    Parameters
    ----------
    cov
        Shape (n_components, n_features, n_features), symmetric.
    reg_covar
        Smallest variance allowed; the jitter starts here.

    Returns
    -------
    L
        Shape (n_components, n_features, n_features), lower triangular, ``L @ L.T == cov``
        (up to the jitter added where ``cov`` was not positive definite).

    Examples
    --------
    >>> import numpy as np
    >>> L = safe_cholesky(np.array([[[4.0, 0.0], [0.0, 0.0]]]), 1e-6)
    >>> bool(np.all(np.isfinite(L)) and L[0, 1, 1] > 0)
    True
    """
    try:
        chol: Array = np.asarray(np.linalg.cholesky(cov), dtype=np.float64)
        return chol
    except np.linalg.LinAlgError:
        pass
    out = np.empty_like(cov)
    eye = np.eye(cov.shape[-1])
    for k in range(cov.shape[0]):
        c = 0.5 * (cov[k] + cov[k].T)
        jitter = max(reg_covar, 1e-12)
        for _ in range(6):
            try:
                out[k] = np.linalg.cholesky(c + jitter * eye)
                break
            except np.linalg.LinAlgError:
                jitter *= 10.0
        else:
            w, v = np.linalg.eigh(c)
            floor = max(reg_covar, 1e-9 * max(float(np.max(np.abs(w))), 1.0))
            out[k] = np.linalg.cholesky((v * np.maximum(w, floor)) @ v.T + reg_covar * eye)
    return out


_MIN_RCOND = 1e-10

def condition_covariances(cov: Array, covariance_type: str, reg_covar: float) -> Array:
    """Make every covariance safely positive definite (eigenvalue floor).

    The smallest eigenvalue is raised to ``max(reg_covar, 1e-10 * largest)``: a covariance
    stretched by a far outlier (a rank-one term many orders above the rest) is otherwise
    singular in float64 even though it is PD on paper.

    Parameters
    ----------
    cov
        Shape (n_components, n_features, n_features), or (n_components, n_features) for diag.
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Absolute floor for the eigenvalues.

    Returns
    -------
    cov
        Same shape; unchanged components are returned as they were (no copy is made when
        nothing needed fixing).

    Examples
    --------
    >>> import numpy as np
    >>> c = condition_covariances(np.array([np.full((2, 2), 1e10)]), "full", 1e-6)
    >>> bool(np.linalg.eigvalsh(c[0]).min() > 0)
    True
    """
    if covariance_type == "diag":
        top = np.max(cov, axis=1, keepdims=True)
        floor = np.maximum(reg_covar, _MIN_RCOND * top)
        return cov if bool(np.all(cov >= floor)) else np.maximum(cov, np.maximum(floor, 1e-300))
    diag = np.diagonal(cov, axis1=1, axis2=2)
    scale = diag.max(axis=1)
    try:
        L = np.linalg.cholesky(cov)
        piv = np.diagonal(L, axis1=1, axis2=2).min(axis=1) ** 2
        bad = np.flatnonzero(~(piv >= _MIN_RCOND * scale))
    except np.linalg.LinAlgError:
        bad = np.arange(cov.shape[0])
    if bad.size == 0:
        return cov
    out = cov.copy()
    for k in bad:
        c = 0.5 * (cov[k] + cov[k].T)
        w, v = np.linalg.eigh(c)
        floor = max(reg_covar, _MIN_RCOND * float(np.max(np.abs(w))), 1e-300)
        fixed = (v * np.maximum(w, floor)) @ v.T
        out[k] = 0.5 * (fixed + fixed.T)
    return out


def precision_cholesky(covariances: Array, covariance_type: str, reg_covar: float = 0.0) -> Array:
    """Cholesky factors of the precision matrices (scikit-learn's ``precisions_cholesky_``).

    Parameters
    ----------
    covariances
        Shape (n_components, n_features, n_features) for ``"full"``, (n_components, n_features)
        for ``"diag"``.
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Variance floor used by the Cholesky fallback.

    Returns
    -------
    prec_chol
        Upper-triangular ``U_k`` with ``U_k U_k^T = Sigma_k^{-1}``, same shape as the input.

    Examples
    --------
    >>> import numpy as np
    >>> U = precision_cholesky(np.array([[[4.0, 0.0], [0.0, 1.0]]]), "full")
    >>> np.round(U[0], 3).tolist()
    [[0.5, 0.0], [0.0, 1.0]]
    """
    if covariance_type == "diag":
        return 1.0 / np.sqrt(np.maximum(covariances, max(reg_covar, 1e-300)))
    L = safe_cholesky(covariances, reg_covar)
    d = covariances.shape[-1]
    eye = np.broadcast_to(np.eye(d), L.shape)
    # U = L^{-T}; np.linalg.solve on the stack is the batched triangular inverse here.
    return np.swapaxes(np.linalg.solve(L, eye), -1, -2)


def log_det_cholesky(prec_chol: Array, covariance_type: str) -> Array:
    """``log |U_k| = -1/2 log |Sigma_k|`` for each component.

    Parameters
    ----------
    prec_chol
        Output of :func:`precision_cholesky`.
    covariance_type
        ``"full"`` or ``"diag"``.

    Returns
    -------
    ndarray of shape (n_components,)

    Examples
    --------
    >>> import numpy as np
    >>> bool(log_det_cholesky(np.array([[[0.5, 0.0], [0.0, 1.0]]]), "full")[0] == np.log(0.5))
    True
    """
    diag = prec_chol if covariance_type == "diag" else np.diagonal(prec_chol, axis1=1, axis2=2)
    out: Array = np.sum(np.log(diag), axis=1)
    return out


def stacked_factors(means: Array, prec_chol: Array) -> tuple[Array, Array]:
    """The full-covariance scoring factors in one-GEMM layout (cache them per M-step).

    Parameters
    ----------
    means
        Shape (n_components, n_features).
    prec_chol
        Shape (n_components, n_features, n_features), from :func:`precision_cholesky`.

    Returns
    -------
    ucat
        Shape (n_features, n_components * n_features): the ``U_k`` side by side.
    mu_u
        Shape (1, n_components * n_features): the ``mu_k^T U_k`` side by side.

    Examples
    --------
    >>> import numpy as np
    >>> ucat, mu_u = stacked_factors(np.ones((2, 3)), np.broadcast_to(np.eye(3), (2, 3, 3)))
    >>> ucat.shape, mu_u.tolist()
    ((3, 6), [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    """
    K, d = means.shape
    ucat = np.ascontiguousarray(np.transpose(prec_chol, (1, 0, 2)).reshape(d, K * d))
    mu_u = np.einsum("kd,kde->ke", means, prec_chol).reshape(1, K * d)
    return ucat, mu_u


def estimate_log_gaussian_prob(
    X: Array,
    means: Array,
    prec_chol: Array,
    covariance_type: str,
    log_det: Array | None = None,
    factors: tuple[Array, Array] | None = None,
) -> Array:
    """Log density of each sample under each component, for complete rows.

    One GEMM for all components: the factors are concatenated into a
    (n_features, n_components * n_features) matrix.

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
        Precomputed :func:`stacked_factors` (full covariances only; optional, saves time).

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
    n, d = X.shape
    K = means.shape[0]
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
    else:
        ucat, mu_u = factors if factors is not None else stacked_factors(means, prec_chol)
        Y = X @ ucat
        Y -= mu_u
        if n < SMALL_BATCH:
            Y *= Y
            maha = Y.reshape(n, K, d).sum(axis=2)
        else:
            Y3 = Y.reshape(n, K, d)
            maha = np.einsum("nkd,nkd->nk", Y3, Y3)
    out: Array = -0.5 * (d * LOG_2PI + maha) + log_det[None, :]
    return out
