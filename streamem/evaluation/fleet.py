"""A synthetic fleet for per-key models: keys with their own normal levels and scales,
events interleaved across keys, and key-specific anomalies that are normal for the fleet
(a key jumps to another key's level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Fleet", "fleet"]


@dataclass(frozen=True)
class Fleet:
    """Rows ``X`` (n, d), their ``keys`` (n,) and ``labels`` (n,) (True: anomaly)."""

    X: NDArray[np.float64]
    keys: NDArray[np.int64]
    labels: NDArray[np.bool_]


def fleet(n_keys: int, events_per_key: int, n_features: int = 4, *,
          anomaly_rate: float = 0.01, clean_fraction: float = 0.3, spread: float = 8.0,
          seed: int = 0) -> Fleet:
    """Generate a fleet.

    Each key ``k`` has a level ``mu_k ~ N(0, spread^2 I)`` and a per-feature scale
    ``s_k ~ U(0.5, 2)``; its normal rows are ``mu_k + s_k * N(0, I)`` with a key-specific
    correlation between features 0 and 1. After its first ``clean_fraction`` of events, a
    row is an anomaly with probability ``anomaly_rate``: it is drawn from another key's
    normal (so it is normal for the fleet) at least 6 of the key's own scales away.

    Parameters
    ----------
    n_keys, events_per_key, n_features
        Size; rows are interleaved at random across keys.
    anomaly_rate, clean_fraction, spread, seed
        See above.

    Returns
    -------
    Fleet

    Examples
    --------
    >>> f = fleet(10, 100, 3, seed=1)
    >>> f.X.shape, len(np.unique(f.keys)), bool(0 < f.labels.mean() < 0.02)
    ((1000, 3), 10, True)
    """
    rng = np.random.default_rng(seed)
    d = n_features
    levels = rng.normal(0.0, spread, size=(n_keys, d))
    scales = rng.uniform(0.5, 2.0, size=(n_keys, d))
    rho = rng.uniform(-0.8, 0.8, size=n_keys)
    keys = rng.permutation(np.repeat(np.arange(n_keys, dtype=np.int64), events_per_key))
    n = len(keys)
    # position of each row in its key's own sequence
    order = np.argsort(keys, kind="stable")
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - np.repeat(np.arange(n_keys) * events_per_key, events_per_key)
    Z = rng.normal(size=(n, d))
    if d > 1:
        r = rho[keys]
        Z[:, 1] = r * Z[:, 0] + np.sqrt(1 - r * r) * Z[:, 1]
    X = levels[keys] + scales[keys] * Z
    late = pos >= clean_fraction * events_per_key
    cand = late & (rng.random(n) < anomaly_rate)
    other = rng.integers(0, n_keys, size=n)
    far = np.linalg.norm((levels[other] - levels[keys]) / scales[keys], axis=1) >= 6.0
    labels = cand & far & (other != keys)
    X[labels] = (levels[other] + scales[other] * rng.normal(size=(n, d)))[labels]
    return Fleet(X, keys, labels)
