"""Scoring constants of one M-step, and the E-step and tail bound that use them.

Scoring runs for every event while the parameters change only at an M-step, so everything
that depends on the parameters alone (log weights, log-determinants, normalising constants,
the stacked factors of the one-GEMM E-step) is computed once per M-step here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._gaussian import LOG_2PI, full_log_prob_t, log_det_cholesky, scoring_factors
from streamem.model._numeric import amax, asum, exp_shifted, has_nan
from streamem.model._stats import estimate_weighted_log_prob, log_normalize
from streamem.model._tail import mixture_log_tail
from streamem.model._triangular import (
    BLOCK_MIN_SAMPLES,
    block_edges,
    blocked_log_prob_t,
    triangular_blocks,
)

__all__ = ["Scorer"]

Array = NDArray[np.float64]


class Scorer:
    """The scoring side of a Gaussian mixture with fixed parameters.

    Parameters
    ----------
    weights
        Shape (n_components,), positive.
    means
        Shape (n_components, n_features).
    covariances
        Shape (n_components, n_features, n_features), or (n_components, n_features) for diag.
    prec_chol
        Precision Cholesky factors of ``covariances`` (see ``precision_cholesky``).
    covariance_type
        ``"full"`` or ``"diag"``.
    reg_covar
        Variance floor for the marginal factorisations of rows with missing values.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> sc = Scorer(np.ones(1), np.zeros((1, 1)), np.ones((1, 1, 1)), np.ones((1, 1, 1)),
    ...             "full", 1e-6)
    >>> lpn, log_resp, lnc, do = sc.estimate(np.array([[2.0]]))
    >>> bool(np.isclose(lpn[0], norm.logpdf(2.0))), log_resp.tolist()
    (True, [[0.0]])
    >>> bool(np.isclose(np.exp(sc.log_tail(lnc, lpn, do))[0], 2 * norm.sf(2.0)))
    True
    """

    def __init__(
        self,
        weights: Array,
        means: Array,
        covariances: Array,
        prec_chol: Array,
        covariance_type: str,
        reg_covar: float,
    ) -> None:
        self.means = means
        self.covariances = covariances
        self.prec_chol = prec_chol
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.log_weights: Array = np.log(weights)
        self.log_det = log_det_cholesky(prec_chol, covariance_type)
        d = means.shape[1]
        #: ``log|U_k| - d/2 log 2 pi``: the log normalising constants of complete rows
        self.lnc: Array = self.log_det - 0.5 * d * LOG_2PI
        self._wconst = self.lnc + self.log_weights
        self._tail_const = 2.0 * (self.log_weights + self.lnc)
        self.factors = scoring_factors(means, prec_chol) if covariance_type == "full" else None
        self._d = float(d)
        self._edges = block_edges(d)
        self._blocks: list[Array] | None = None  # built on the first large batch

    def _complete_log_prob_t(self, X: Array) -> Array:
        """Weighted log-probabilities of complete rows, (n_components, n_samples)."""
        assert self.factors is not None
        if len(self._edges) > 2 and X.shape[0] >= BLOCK_MIN_SAMPLES:
            if self._blocks is None:
                self._blocks = triangular_blocks(self.means, self.prec_chol, self._edges)
            return blocked_log_prob_t(X, self._blocks, self._edges, self._wconst)
        return full_log_prob_t(X, self.factors, self._wconst)

    def estimate(
        self, X: Array, complete: bool | None = None
    ) -> tuple[Array, Array, Array, Array | float]:
        """E-step: ``log f(x)``, log responsibilities, log normalising constants, ``d_o``.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN marks a missing reading.
        complete
            Whether ``X`` is known to hold no NaN (None: check).

        Returns
        -------
        log_prob_norm, log_resp, log_norm_const, n_observed
            As :func:`~streamem.model._stats.estimate_weighted_log_prob` and
            :func:`~streamem.model._stats.log_normalize` return them.

        Examples
        --------
        >>> import numpy as np
        >>> sc = Scorer(np.full(2, 0.5), np.array([[-1.0], [1.0]]), np.ones((2, 1, 1)),
        ...             np.ones((2, 1, 1)), "full", 1e-6)
        >>> np.exp(sc.estimate(np.array([[0.0]]))[1]).tolist()
        [[0.5, 0.5]]
        """
        if complete is None:
            complete = not has_nan(X)
        if complete and self.factors is not None:
            wlp = self._complete_log_prob_t(X).T
            lnc: Array = self.lnc
            do: Array | float = self._d
        else:
            wlp, lnc, do = estimate_weighted_log_prob(
                X, self.log_weights, self.means, self.covariances, self.prec_chol,
                self.covariance_type, self.reg_covar, self.log_det, self.factors,
            )
        lpn, log_resp = log_normalize(wlp)
        return lpn, log_resp, lnc, do

    def log_prob_norm(self, X: Array) -> Array:
        """``log f(x)`` alone (no responsibilities).

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN marks a missing reading.

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> sc = Scorer(np.ones(1), np.zeros((1, 2)), np.eye(2)[None], np.eye(2)[None],
        ...             "full", 1e-6)
        >>> bool(np.isclose(sc.log_prob_norm(np.zeros((1, 2)))[0], -np.log(2 * np.pi)))
        True
        """
        if self.factors is None or has_nan(X):
            return self.estimate(X, complete=False)[0]
        wt = self._complete_log_prob_t(X)
        top = amax(wt, axis=0)
        wt -= top
        out: Array = np.log(asum(exp_shifted(wt), axis=0))
        out += top
        return out

    def log_tail(self, lnc: Array, lpn: Array, df: Array | float) -> Array:
        """:func:`~streamem.model._tail.mixture_log_tail` with this mixture's weights.

        Parameters
        ----------
        lnc, lpn, df
            Log normalising constants, ``log f(x)`` and ``d_o`` from :meth:`estimate`.

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> sc = Scorer(np.ones(1), np.zeros((1, 1)), np.ones((1, 1, 1)), np.ones((1, 1, 1)),
        ...             "full", 1e-6)
        >>> lpn, _, lnc, do = sc.estimate(np.array([[0.0]]))
        >>> sc.log_tail(lnc, lpn, do).tolist()   # at the mode, every event is as unlikely or more
        [0.0]
        """
        const = self._tail_const if lnc is self.lnc else None
        return mixture_log_tail(self.log_weights, lnc, lpn, df, tail_const=const)
