"""Explanations: which features make an event unlikely.

Under the most responsible component ``k*`` with precision ``P`` and ``delta = x - mu``, the
conditional z-score of feature ``j`` given all the others is ``(P delta)_j / sqrt(P_jj)`` and
its expected value given the others is ``x_j - (P delta)_j / P_jj`` (design note, section 6).
Missing features are marginalised out (the precision of the observed block is used).
:class:`FeatureContribution` is one feature's part in such an explanation, as anomaly records
carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["FeatureContribution", "conditional_zscores"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class FeatureContribution:
    """One feature's part in an anomaly explanation.

    Parameters
    ----------
    name
        Feature name (or ``"x3"`` when unnamed).
    index
        Column index in the feature vector.
    value
        Observed value, in original units (NaN if missing).
    expected
        Expected value given the other features, in original units.
    z
        Conditional z-score: how many standard deviations the value is from what the
        other features predict.
    category, probability
        For a categorical field only: the observed value and ``p(value | event)`` (then
        ``value`` is that probability, ``expected`` the most likely value's, and ``z`` the
        normal quantile of the value's exact tail, so both kinds rank together).

    Examples
    --------
    >>> FeatureContribution("temp", 0, 90.0, 20.0, 7.0).z
    7.0
    """

    name: str
    index: int
    value: float
    expected: float
    z: float
    category: str | None = None
    probability: float | None = None

    def describe(self) -> str:
        """One line: ``method=PURGE, p=0.0004`` or ``temp=90 (expected 20, z=7.0)``.

        Examples
        --------
        >>> FeatureContribution("method", 3, 4e-4, 0.9, 3.5, "PURGE", 4e-4).describe()
        'method=PURGE, p=0.0004'
        """
        if self.category is not None:
            return f"{self.name}={self.category}, p={self.probability:.2g}"
        return f"{self.name}={self.value:.4g} (expected {self.expected:.4g}, z={self.z:.1f})"


def conditional_zscores(
    x: Array, mean: Array, covariance: Array
) -> tuple[Array, Array]:
    """Conditional z-scores and expected values of each observed feature.

    Parameters
    ----------
    x
        One event, shape (n_features,), NaN = missing.
    mean
        Shape (n_features,).
    covariance
        Shape (n_features, n_features), or (n_features,) for a diagonal component.

    Returns
    -------
    z
        Shape (n_features,); NaN where ``x`` is missing.
    expected
        ``E[x_j | x_-j]``, shape (n_features,); for a missing feature, its conditional
        expectation given the observed ones.

    Examples
    --------
    >>> import numpy as np
    >>> cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    >>> z, e = conditional_zscores(np.array([2.0, -2.0]), np.zeros(2), cov)
    >>> bool(abs(z[0]) > 5), np.round(e, 2).tolist()
    (True, [-1.8, 1.8])
    """
    cov = np.diag(covariance) if covariance.ndim == 1 else covariance
    obs = ~np.isnan(x)
    z = np.full(x.shape, np.nan)
    expected = np.array(mean, dtype=float)
    if not obs.any():
        return z, expected
    P = np.linalg.inv(cov[np.ix_(obs, obs)])
    delta = x[obs] - mean[obs]
    pd = P @ delta
    diag = np.diag(P)
    z[obs] = pd / np.sqrt(diag)
    expected[obs] = x[obs] - pd / diag
    mis = ~obs
    if mis.any():
        expected[mis] = mean[mis] + cov[np.ix_(mis, obs)] @ (P @ delta)
    return z, expected
