"""Batch EM with missing values, from k-means++ seeds: the warm-up fit of one mixture size.

Also the NIW-MAP covariance shrinkage that the online M-step shares
(:func:`map_covariances`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streamem.model._gaussian import precision_cholesky
from streamem.model._stats import estimate_weighted_log_prob, log_normalize, sufficient_statistics

__all__ = ["BatchFit", "fit_batch_em", "kmeans_pp", "map_covariances"]

Array = NDArray[np.float64]


@dataclass
class BatchFit:
    """Result of one batch-EM fit (parameters plus fit diagnostics).

    Examples
    --------
    >>> import numpy as np
    >>> fit = BatchFit(np.ones(1), np.zeros((1, 2)), np.eye(2)[None], -2.8, 3, True)
    >>> fit.converged, fit.means.shape
    (True, (1, 2))
    """

    weights: Array
    means: Array
    ml_covariances: Array
    log_likelihood: float
    n_iter: int
    converged: bool


def map_covariances(
    ml_cov: Array, counts: Array, prior_cov: Array, prior_strength: float,
    reg_covar: float | Array,
) -> Array:
    """NIW-MAP shrinkage ``(n_k C_k + kappa S_prior) / (n_k + kappa) + reg_covar I``.

    Parameters
    ----------
    ml_cov
        Shape (n_components, n_features, n_features) or (n_components, n_features) for diag.
    counts
        Effective event count per component, shape (n_components,).
    prior_cov
        Shape (n_features, n_features) or (n_features,).
    prior_strength
        ``kappa`` in pseudo-events.
    reg_covar
        Added to the diagonal (a scalar, or one value per feature).

    Examples
    --------
    >>> import numpy as np
    >>> c = map_covariances(np.array([[[2.0]]]), np.array([10.0]), np.array([[1.0]]), 10.0, 0.0)
    >>> float(c[0, 0, 0])
    1.5
    """
    w = (counts / (counts + prior_strength))
    if ml_cov.ndim == 2:
        out = w[:, None] * ml_cov + (1.0 - w)[:, None] * prior_cov[None, :] + reg_covar
        return np.asarray(out)
    d = ml_cov.shape[-1]
    out = w[:, None, None] * ml_cov
    out += (1.0 - w)[:, None, None] * prior_cov
    sym = out + np.swapaxes(out, 1, 2)
    sym *= 0.5
    sym.reshape(len(sym), d * d)[:, :: d + 1] += reg_covar  # the diagonals, in place
    return sym


def kmeans_pp(X: Array, k: int, rng: np.random.Generator, n_lloyd: int = 10) -> Array:
    """k-means++ (D^2 sampling) followed by a few Lloyd iterations.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), no NaN.
    k
        Centres wanted.
    rng
        Random generator (advanced in place).
    n_lloyd
        Lloyd iterations after the seeding.

    Returns
    -------
    ndarray of shape (k, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-5, 1, (50, 1)), rng.normal(5, 1, (50, 1))])
    >>> sorted(np.round(kmeans_pp(X, 2, rng)[:, 0]).tolist())
    [-5.0, 5.0]
    """
    n = X.shape[0]
    centers = np.empty((k, X.shape[1]))
    centers[0] = X[rng.integers(n)]
    d2 = np.sum((X - centers[0]) ** 2, axis=1)
    for j in range(1, k):
        total = d2.sum()
        idx = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centers[j] = X[idx]
        d2 = np.minimum(d2, np.sum((X - centers[j]) ** 2, axis=1))
    for _ in range(n_lloyd):
        dist = (X**2).sum(1)[:, None] - 2.0 * X @ centers.T + (centers**2).sum(1)[None, :]
        labels = dist.argmin(axis=1)
        for j in range(k):
            members = X[labels == j]
            if len(members):
                centers[j] = members.mean(axis=0)
    return centers


def fit_batch_em(
    X: Array,
    n_components: int,
    covariance_type: str,
    reg_covar: float,
    prior_cov: Array,
    prior_strength: float,
    rng: np.random.Generator,
    n_init: int = 3,
    max_iter: int = 100,
    tol: float = 1e-4,
    var_floor: Array | float = 0.0,
) -> BatchFit:
    """Batch EM (with missing values) from k-means++ seeds; the best of ``n_init`` restarts.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), NaN = missing.
    n_components
        K.
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar, prior_cov, prior_strength
        Regularisation (see :func:`map_covariances`).
    rng
        Random generator (advanced in place).
    n_init
        Restarts; the fit with the highest log-likelihood wins.
    max_iter, tol
        Stop when the mean log-likelihood improves by less than ``tol``.
    var_floor
        Per-feature variance added to every covariance diagonal besides ``reg_covar``
        (the quantisation variance of discrete features; see :class:`~streamem.OnlineGMM`).

    Returns
    -------
    BatchFit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    >>> fit = fit_batch_em(X, 2, "full", 1e-6, np.eye(2), 0.0, rng)
    >>> sorted(np.round(fit.means[:, 0]).tolist())
    [-5.0, 5.0]
    """
    n = X.shape[0]
    nan = np.isnan(X)
    seen = ~nan.all(axis=0)  # a feature never observed in the warm-up gets 0 (the scaled centre)
    median = np.zeros(X.shape[1])
    center = np.zeros(X.shape[1])
    if seen.any():
        if nan.any():
            median[seen] = np.nanmedian(X[:, seen], axis=0)
            center[seen] = np.nanmean(X[:, seen], axis=0)
        else:  # np.median: ~10x faster than np.nanmedian's per-column path
            median, center = np.median(X, axis=0), X.mean(axis=0)
    filled = np.where(nan, median[None, :], X)
    best: BatchFit | None = None
    # one component: no seeding to draw and nothing to restart (EM from the mean)
    for _ in range(n_init if n_components > 1 else 1):
        centers = (kmeans_pp(filled, n_components, rng) if n_components > 1
                   else filled.mean(axis=0, keepdims=True))
        dist = ((filled[:, None, :] - centers[None]) ** 2).sum(-1)
        resp = np.zeros((n, n_components))
        resp[np.arange(n), dist.argmin(axis=1)] = 1.0
        means = centers.copy()
        cov = np.broadcast_to(prior_cov, (n_components, *prior_cov.shape)).copy()
        prev = -np.inf
        converged = False
        ll = -np.inf
        n_iter = 0
        for it in range(1, max_iter + 1):
            n_iter = it
            nk, sx, sxx = sufficient_statistics(
                X, resp, means, cov, covariance_type, reg_covar, center
            )
            nk = nk + 10 * np.finfo(float).eps
            mb = sx / nk[:, None]
            if covariance_type == "diag":
                ml = sxx / nk[:, None] - mb**2
            else:
                ml = sxx / nk[:, None, None] - mb[:, :, None] * mb[:, None, :]
            means = mb + center
            weights = nk / nk.sum()
            cov = map_covariances(ml, nk, prior_cov, prior_strength, reg_covar + var_floor)
            U = precision_cholesky(cov, covariance_type, reg_covar)
            wlp, _, _ = estimate_weighted_log_prob(
                X, np.log(weights), means, cov, U, covariance_type, reg_covar
            )
            lpn, log_resp = log_normalize(wlp)
            resp = np.exp(log_resp)
            ll = float(lpn.mean())
            if abs(ll - prev) < tol or (n_components == 1 and not nan.any()):
                # (one component, complete rows: the first M-step is the fixed point)
                converged = True
                break
            prev = ll
        if best is None or ll > best.log_likelihood:
            best = BatchFit(weights, means, ml, ll, n_iter, converged)
    assert best is not None
    return best
