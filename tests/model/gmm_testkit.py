"""Shared helpers for the model and scoring tests: random mixtures and naive references.

Imported as ``gmm_testkit`` (tests/model is on the pytest ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

Array = NDArray[np.float64]


def random_pd(rng: np.random.Generator, d: int, min_eig: float = 0.1) -> Array:
    """A random symmetric positive definite matrix with eigenvalues >= ``min_eig``."""
    A = rng.normal(size=(d, d))
    return np.asarray(A @ A.T / d + min_eig * np.eye(d))


@dataclass
class Mixture:
    """Ground-truth Gaussian mixture (full covariances)."""

    weights: Array
    means: Array
    covariances: Array

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        z = rng.choice(self.n_components, size=n, p=self.weights)
        L = np.linalg.cholesky(self.covariances)
        e = rng.normal(size=(n, self.means.shape[1]))
        return np.asarray(self.means[z] + np.einsum("nij,nj->ni", L[z], e))

    def logpdf(self, X: Array) -> Array:
        """Naive scipy log density of the mixture."""
        parts = [
            np.log(w) + multivariate_normal(m, c).logpdf(X)
            for w, m, c in zip(self.weights, self.means, self.covariances, strict=True)
        ]
        return np.asarray(logsumexp(np.column_stack(parts), axis=1))


def random_mixture(
    rng: np.random.Generator, n_components: int, n_features: int, separation: float = 6.0
) -> Mixture:
    """Well-separated random mixture: means ``separation`` apart on average, PD covariances."""
    d = n_features
    means = rng.normal(0.0, separation / np.sqrt(2.0), size=(n_components, d))
    covs = np.array([random_pd(rng, d, 0.2) for _ in range(n_components)])
    weights = rng.dirichlet(np.full(n_components, 5.0))
    return Mixture(weights, means, covs)


def naive_conditional(
    x: Array, mean: Array, cov: Array
) -> tuple[Array, Array]:
    """E[x] and E[x x^T] of one Gaussian given the observed (non-NaN) part of ``x``."""
    mis = np.isnan(x)
    obs = ~mis
    ex = x.copy()
    exx_corr = np.zeros((len(x), len(x)))
    if mis.any():
        inv_oo = np.linalg.inv(cov[np.ix_(obs, obs)])
        ex[mis] = mean[mis] + cov[np.ix_(mis, obs)] @ inv_oo @ (x[obs] - mean[obs])
        exx_corr[np.ix_(mis, mis)] = (
            cov[np.ix_(mis, mis)] - cov[np.ix_(mis, obs)] @ inv_oo @ cov[np.ix_(obs, mis)]
        )
    return ex, np.outer(ex, ex) + exx_corr
