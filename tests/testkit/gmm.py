"""Shared helpers for the model and scoring tests: random mixtures and naive references.

Also the exact-equality checks of states and results that the state tests share.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from streamem.model import OnlineGMM
from streamem.scoring.result import DetectionResult

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


def assert_state_equal(a: Any, b: Any, path: str = "state") -> None:
    """Deep, exact equality of plain states (dicts, lists, arrays, scalars; NaN == NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys differ"
        for k in a:
            assert_state_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: length differs"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_state_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape and x.dtype == y.dtype, f"{path}: {x.shape} vs {y.shape}"
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{path}: values differ"
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def check_parameters(m: OnlineGMM) -> None:
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(m, name))), name
    assert np.all(np.isfinite(m._s0)) and np.all(np.isfinite(m._mu)) and np.all(np.isfinite(m._C))
    assert abs(m.weights_.sum() - 1.0) < 1e-9 and np.all(m.weights_ > 0)
    if m.covariance_type == "full":
        for c in m.covariances_:
            assert np.allclose(c, c.T)
            np.linalg.cholesky(c)  # raises if not positive definite
            assert np.linalg.eigvalsh(c).min() > 0
    else:
        assert np.all(m.covariances_ > 0)


def same_result(a: DetectionResult, b: DetectionResult) -> None:
    """Field-by-field exact equality of two DetectionResults (NaN == NaN)."""
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
