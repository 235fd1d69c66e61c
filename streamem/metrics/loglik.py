"""The per-event log-likelihood, summarised per micro-batch: histogram counts and a running mean.

:class:`LogLikelihoodStats` keeps what ``streamem_log_likelihood`` (bucket counts, as numpy
integers, read at scrape time) and ``streamem_log_likelihood_mean`` (an exponentially weighted
mean) export, updated with vectorised numpy once per batch. Pure: no prometheus_client here;
the caller serialises access.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NONFINITE_LL", "LogLikelihoodStats"]

NONFINITE_LL = 1e6
"""-inf/+inf log-likelihoods enter the running mean as -/+ this."""


class LogLikelihoodStats:
    """Bucket counts and an exponentially weighted mean of log-likelihoods.

    Parameters
    ----------
    bounds
        Upper bounds of the finite buckets, increasing, shape (n_buckets,); a value equal to
        a bound falls in that bound's bucket (Prometheus ``le``).
    half_life
        Half-life of the running mean, in events.

    Attributes
    ----------
    bounds : ndarray of shape (n_buckets,)
    counts : ndarray of shape (n_buckets + 1,)
        Events per bucket (not cumulative); the last one holds those above every bound.

    Examples
    --------
    >>> s = LogLikelihoodStats((-10.0, 0.0), half_life=1.0)
    >>> s.observe(np.array([-20.0, -10.0, 5.0, np.nan]))
    -2.857142857142857
    >>> s.counts.tolist()
    [2, 0, 1]
    """

    def __init__(self, bounds: Sequence[float], half_life: float) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.counts = np.zeros(self.bounds.size + 1, dtype=np.int64)
        self._decay = 0.5 ** (1.0 / half_life)
        self._ew_sum = 0.0
        self._ew_weight = 0.0

    def observe(self, log_likelihoods: np.ndarray[Any, Any]) -> float | None:
        """Count one batch (NaN entries ignored) and return the running mean after it.

        Parameters
        ----------
        log_likelihoods
            Per-event log-likelihoods, any shape; ±inf fall in the outer buckets and count
            as ±:data:`NONFINITE_LL` in the mean.

        Returns
        -------
        float or None
            The mean, or None when the batch held no value (the mean is unchanged).

        Examples
        --------
        >>> LogLikelihoodStats((0.0,), half_life=10.0).observe(np.array([np.nan])) is None
        True
        """
        ll = np.asarray(log_likelihoods, dtype=np.float64).ravel()
        ll = ll[~np.isnan(ll)]
        if not ll.size:
            return None
        idx = np.searchsorted(self.bounds, ll, side="left")
        self.counts += np.bincount(idx, minlength=self.counts.size)
        clipped = np.clip(ll, -NONFINITE_LL, NONFINITE_LL)
        weights = self._decay ** np.arange(ll.size - 1, -1, -1, dtype=np.float64)
        keep = self._decay**ll.size
        self._ew_sum = keep * self._ew_sum + float(weights @ clipped)
        self._ew_weight = keep * self._ew_weight + float(weights.sum())
        return self._ew_sum / self._ew_weight
