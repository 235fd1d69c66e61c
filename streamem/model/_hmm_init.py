"""Private start values of an online HMM: k-means++ states and the transitions between them."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.errors import NotFittedError

__all__ = ["initial_parameters"]

Array = NDArray[np.float64]


def _kmeans(X: Array, K: int, rng: np.random.Generator, n_iter: int = 25) -> NDArray[np.int64]:
    """Lloyd's k-means from k-means++ seeds; returns the label of every row."""
    n = X.shape[0]
    centers = np.empty((K, X.shape[1]))
    centers[0] = X[rng.integers(n)]
    d2 = np.sum((X - centers[0]) ** 2, axis=1)
    for k in range(1, K):
        total = d2.sum()
        idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centers[k] = X[idx]
        d2 = np.minimum(d2, np.sum((X - centers[k]) ** 2, axis=1))
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(n_iter):
        dist = (X**2).sum(1)[:, None] - 2.0 * X @ centers.T + (centers**2).sum(1)[None, :]
        new = np.argmin(dist, axis=1).astype(np.int64)
        counts = np.bincount(new, minlength=K)
        sums = np.zeros_like(centers)
        np.add.at(sums, new, X)
        live = counts > 0
        centers[live] = sums[live] / counts[live, None]
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def initial_parameters(
    X: Array, n_components: int, reg_covar: float, rng: np.random.Generator
) -> tuple[Array, Array, Array]:
    """Means, covariances and transition matrix from k-means labels of a warm-up buffer.

    Covariances shrink towards the buffer's covariance (weight of 2 ``n_features`` events),
    so a small cluster still gets a positive-definite one; transitions count consecutive labels
    plus one per cell.

    Parameters
    ----------
    X
        Warm-up events in arrival order, shape (n_samples, n_features); rows with NaN are
        left out of the clustering.
    n_components
        Number of hidden states ``K``.
    reg_covar
        Added to the covariance diagonals.
    rng
        Seeded generator.

    Returns
    -------
    means
        Shape (K, n_features).
    covariances
        Shape (K, n_features, n_features).
    transmat
        Shape (K, K), rows summing to 1.

    Raises
    ------
    NotFittedError
        Fewer complete rows than ``2 K``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(9, 1, (50, 2))])
    >>> mu, cov, A = initial_parameters(X, 2, 1e-6, np.random.default_rng(1))
    >>> sorted(np.round(mu[:, 0]).tolist()), np.allclose(A.sum(1), 1)
    ([0.0, 9.0], True)
    """
    K = n_components
    complete = ~np.isnan(X).any(axis=1)
    Xc = X[complete]
    n, d = Xc.shape
    if n < 2 * K:
        raise NotFittedError(
            f"{n} complete warm-up events for n_components={K}; send at least {2 * K} events "
            "without missing values, or lower n_components"
        )
    labels = _kmeans(Xc, K, rng)
    glob = np.cov(Xc, rowvar=False).reshape(d, d) + reg_covar * np.eye(d)
    means = np.empty((K, d))
    covs = np.empty((K, d, d))
    c = 2.0 * d
    for k in range(K):
        rows = Xc[labels == k]
        nk = rows.shape[0]
        means[k] = rows.mean(axis=0) if nk else Xc[rng.integers(n)]
        scatter = (rows - means[k]).T @ (rows - means[k]) if nk else np.zeros((d, d))
        covs[k] = (scatter + c * glob) / (nk + c) + reg_covar * np.eye(d)
    full = np.full(X.shape[0], -1, dtype=np.int64)
    full[complete] = labels
    pairs = (full[:-1] >= 0) & (full[1:] >= 0)
    counts = np.ones((K, K))
    np.add.at(counts, (full[:-1][pairs], full[1:][pairs]), 1.0)
    return means, covs, counts / counts.sum(axis=1, keepdims=True)
