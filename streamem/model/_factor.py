"""Private factorisation kernels: Cholesky with fallbacks, conditioning, precision factors.

Precisions are kept as Cholesky factors ``U_k = L_k^{-T}`` (``Sigma_k = L_k L_k^T``); see
:mod:`._gaussian` for their use in scoring.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.linalg.lapack import dtrtri

__all__ = [
    "condition_covariances",
    "factorize",
    "inverse_transpose",
    "log_det_cholesky",
    "precision_cholesky",
    "safe_cholesky",
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
    return _condition(cov, covariance_type, reg_covar)[0]


def _condition(cov: Array, covariance_type: str, reg_covar: float) -> tuple[Array, Array | None]:
    """:func:`condition_covariances`, plus the lower Cholesky factors of the result when the
    covariances were fine as they were (full only; None otherwise)."""
    if covariance_type == "diag":
        top = np.max(cov, axis=1, keepdims=True)
        floor = np.maximum(reg_covar, _MIN_RCOND * top)
        if bool(np.all(cov >= floor)):
            return cov, None
        return np.maximum(cov, np.maximum(floor, 1e-300)), None
    scale = cov.diagonal(0, 1, 2).max(axis=1)
    try:
        L: Array = np.asarray(np.linalg.cholesky(cov), dtype=np.float64)
        piv = L.diagonal(0, 1, 2).min(axis=1) ** 2
        ok = piv >= _MIN_RCOND * scale
        if ok.all():
            return cov, L
        bad = np.flatnonzero(~ok)
    except np.linalg.LinAlgError:
        bad = np.arange(cov.shape[0])
    out = cov.copy()
    for k in bad:
        c = 0.5 * (cov[k] + cov[k].T)
        w, v = np.linalg.eigh(c)
        floor = max(reg_covar, _MIN_RCOND * float(np.max(np.abs(w))), 1e-300)
        fixed = (v * np.maximum(w, floor)) @ v.T
        out[k] = 0.5 * (fixed + fixed.T)
    return out, None


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
    return inverse_transpose(safe_cholesky(covariances, reg_covar))


def inverse_transpose(L: Array) -> Array:
    """``U_k = L_k^{-T}`` for a stack of lower-triangular factors with a positive diagonal.

    LAPACK's triangular inverse (``dtrtri``) per component: about half the cost of a
    batched LU solve against the identity at d = 10, a quarter at d = 30.

    Parameters
    ----------
    L
        Shape (n_components, n_features, n_features), lower triangular (zeros above).

    Returns
    -------
    U
        Same shape, upper triangular.

    Examples
    --------
    >>> import numpy as np
    >>> inverse_transpose(np.array([[[2.0, 0.0], [1.0, 1.0]]])).tolist()
    [[[0.5, -0.5], [0.0, 1.0]]]
    """
    out = np.empty_like(L)
    for k in range(L.shape[0]):
        # L_k^T is upper triangular and Fortran-ordered: its inverse is U_k
        inv, info = dtrtri(L[k].T, lower=0)
        if info != 0:  # a zero pivot: not a Cholesky factor; let the general solver report
            eye = np.broadcast_to(np.eye(L.shape[-1]), L.shape)
            return np.swapaxes(np.linalg.solve(L, eye), -1, -2)
        out[k] = inv
    return out


def factorize(cov: Array, covariance_type: str, reg_covar: float) -> tuple[Array, Array]:
    """:func:`condition_covariances` then :func:`precision_cholesky`, factorising once.

    Parameters
    ----------
    cov
        Shape (n_components, n_features, n_features), or (n_components, n_features) for diag.
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Eigenvalue floor and Cholesky jitter.

    Returns
    -------
    cov, prec_chol
        Exactly ``condition_covariances(cov, ...)`` and ``precision_cholesky`` of it.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[[4.0, 2.0], [2.0, 2.0]]])
    >>> cov, U = factorize(c, "full", 1e-6)
    >>> bool(np.array_equal(U, precision_cholesky(condition_covariances(c, "full", 1e-6),
    ...                                            "full", 1e-6)))
    True
    """
    fixed, L = _condition(cov, covariance_type, reg_covar)
    if L is None:
        return fixed, precision_cholesky(fixed, covariance_type, reg_covar)
    return fixed, inverse_transpose(L)


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
    diag = prec_chol if covariance_type == "diag" else prec_chol.diagonal(0, 1, 2)
    out: Array = np.log(diag).sum(axis=1)
    return out


