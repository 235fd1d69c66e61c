"""The warm-up fit of :class:`~streamem.OnlineGMM`: a data-scale prior, then batch EM with a
fixed mixture size or the size chosen by BIC (:func:`select_components`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._batch_em import BatchFit, fit_batch_em

__all__ = ["n_parameters", "select_components", "warm_up_fit"]

Array = NDArray[np.float64]


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters of a mixture (scikit-learn's ``_n_parameters``).

    Parameters
    ----------
    n_components, n_features
        K and d.
    covariance_type
        ``"full"`` or ``"diag"``.

    Returns
    -------
    int
        ``K d(d+1)/2 + K d + K - 1`` (full) or ``2 K d + K - 1`` (diag).

    Examples
    --------
    >>> n_parameters(8, 10, "full")
    527
    """
    cov = n_features * (n_features + 1) // 2 if covariance_type == "full" else n_features
    return n_components * (cov + n_features) + n_components - 1


def select_components(
    X: Array,
    max_components: int,
    covariance_type: str,
    reg_covar: float,
    prior_cov: Array,
    prior_strength: float,
    rng: np.random.Generator,
    n_init: int = 3,
    var_floor: Array | float = 0.0,
) -> BatchFit:
    """Fit K = 1..max_components and keep the smallest K within 10 BIC of the best.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), NaN = missing.
    max_components
        Largest K tried (also capped so that every component has ~2(d+1) points).
    covariance_type, reg_covar, prior_cov, prior_strength
        As in :func:`fit_batch_em`.
    rng
        Random generator (advanced in place).
    n_init
        Restarts per K.
    var_floor
        As in :func:`fit_batch_em`.

    Returns
    -------
    BatchFit
        The chosen fit.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> X = np.vstack([rng.normal(-6, 1, (300, 2)), rng.normal(6, 1, (300, 2))])
    >>> len(select_components(X, 4, "full", 1e-6, np.eye(2), 0.0, rng).weights)
    2
    """
    n, d = X.shape
    max_k = max(1, min(max_components, n // max(2 * (d + 1), 4)))
    fits = []
    for k in range(1, max_k + 1):
        fit = fit_batch_em(
            X, k, covariance_type, reg_covar, prior_cov, prior_strength, rng, n_init=n_init,
            var_floor=var_floor,
        )
        bic = -2.0 * fit.log_likelihood * n + n_parameters(k, d, covariance_type) * np.log(n)
        fits.append((bic, fit))
    best_bic = min(b for b, _ in fits)
    for bic, fit in fits:
        if bic - best_bic < 10.0:
            return fit
    return fits[-1][1]


def warm_up_fit(
    X: Array,
    n_components: int,
    auto: bool,
    covariance_type: str,
    reg_covar: float,
    prior_strength: float | None,
    rng: np.random.Generator,
    n_init: int,
    max_iter: int,
    tol: float,
    var_floor: Array | float = 0.0,
) -> tuple[BatchFit, Array, float]:
    """The warm-up: data-scale NIW prior, batch EM (K by BIC when ``auto``), online prior.

    Parameters
    ----------
    X
        Warm-up buffer, shape (n_samples, n_features), NaN = missing.
    n_components
        K, or the largest K tried when ``auto``.
    auto
        Choose K by BIC.
    covariance_type, reg_covar
        As in :func:`fit_batch_em`.
    prior_strength
        NIW strength in pseudo-events (None: ``2 d + 4``).
    rng
        Random generator (advanced in place).
    n_init, max_iter, tol
        Batch-EM restarts and stopping rule.
    var_floor
        As in :func:`fit_batch_em`.

    Returns
    -------
    fit
        The batch fit.
    prior_cov
        The prior for the online phase: the pooled within-component variances (the whole
        data's spread includes the distances between the means and would inflate every
        covariance).
    kappa
        Prior strength.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    >>> fit, prior, kappa = warm_up_fit(X, 4, True, "diag", 1e-6, None, rng, 2, 100, 1e-4)
    >>> len(fit.weights), np.round(prior, 0).tolist(), kappa
    (2, [1.0, 1.0], 8.0)
    """
    d = X.shape[1]
    nan = np.isnan(X)
    if nan.any():
        seen = ~nan.all(axis=0)
        var = np.ones(d)
        var[seen] = np.nanvar(X[:, seen], axis=0)
    else:  # X.var: the same values, several times faster than the NaN-aware path
        var = X.var(axis=0)
    var = np.where(np.isfinite(var) & (var > 0), var, 1.0)
    scale = float(n_components) ** (2.0 / d)
    prior_cov = (np.diag(var) if covariance_type == "full" else var) / scale
    kappa = float(prior_strength if prior_strength is not None else 2 * d + 4)
    if auto:
        fit = select_components(
            X, n_components, covariance_type, reg_covar, prior_cov, kappa, rng, n_init,
            var_floor=var_floor,
        )
    else:
        fit = fit_batch_em(
            X, n_components, covariance_type, reg_covar, prior_cov, kappa, rng, n_init,
            max_iter, tol, var_floor=var_floor,
        )
    ml_var = fit.ml_covariances if covariance_type == "diag" else np.diagonal(
        fit.ml_covariances, axis1=1, axis2=2
    )
    pooled = np.maximum(fit.weights @ ml_var, 1e-3 * var / scale)
    return fit, (np.diag(pooled) if covariance_type == "full" else pooled), kappa
