"""Seeded synthetic streams for the river adapter tests: two correlated clusters plus rare
anomalies (far points and points that break the correlation)."""

from __future__ import annotations

import numpy as np


def labelled_stream(n: int, seed: int, rate: float = 0.02) -> list[tuple[dict[str, float], bool]]:
    """``n`` events ``({"f0": .., "f3": ..}, is_anomaly)``, anomalies at ``rate``, none in the
    first 300 events (the warm-up sees normal data, as it would in production)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 5.0, 1.0], [6.0, 3.0, 0.0, -2.0]])
    cov = np.array([[1.0, 0.8, 0.0, 0.0], [0.8, 1.0, 0.0, 0.0],
                    [0.0, 0.0, 1.0, -0.6], [0.0, 0.0, -0.6, 1.0]])
    X = centres[rng.integers(0, 2, n)] + rng.multivariate_normal(np.zeros(4), cov, n)
    y = (rng.random(n) < rate) & (np.arange(n) >= 300)
    idx = np.flatnonzero(y)
    far = idx[: len(idx) // 2]
    X[far] += rng.choice([-1.0, 1.0], (len(far), 4)) * rng.uniform(5, 8, (len(far), 4))
    broken = idx[len(idx) // 2 :]  # each value in range, the pair f0/f1 anti-correlated
    X[broken, 1] = X[broken, 0] - 2 * (X[broken, 1] - X[broken, 0]) - 3.0 * np.sign(
        rng.standard_normal(len(broken)))
    rows = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in X]
    return list(zip(rows, y.tolist(), strict=True))
