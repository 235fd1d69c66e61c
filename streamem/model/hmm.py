"""Online-EM hidden Markov model whose hidden states are Gaussian mixture components.

Each hidden state ``k`` emits a full-covariance Gaussian ``N(mu_k, Sigma_k)`` and the states
follow a Markov chain with transition matrix ``A``. A forward filter runs over every batch and
is carried across batches, so the score of an event is its predictive surprise
``-log p(x_t | x_1..t-1)``. The sufficient statistics are decayed sums under the filtered
posteriors: emission moments (as for :class:`~streamem.OnlineGMM`) and the expected
transition counts ``P(s_{t-1}=i, s_t=j | x_1..t)`` of the filter (Cappé 2011, online EM
for HMMs, with the filter's pair posterior in place of the smoothed one). One M-step follows
every batch. Missing values (NaN) are marginalised out of the emissions; an all-NaN event only
advances the chain.

The half-life is a number of events or a duration (``"7d"``): in event time a gap of an hour
decays the statistics by an hour however many events it holds (:mod:`streamem.model._decay`).

Use :meth:`OnlineHMM.forward` to score a batch without changing anything and
:meth:`OnlineHMM.update` to advance the filter and learn from it (the detector decides in
between which events are learned); :meth:`OnlineHMM.partial_fit` does both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError, NotFittedError
from streamem.model._decay import count_decay, event_time_decay, parse_half_life, remaining_weights
from streamem.model._forward import forward_filter
from streamem.model._hmm_init import initial_parameters
from streamem.model._hmm_stats import Emission, batch_statistics, emission_log_prob, m_step

__all__ = ["HMMPass", "OnlineHMM", "stationary_distribution"]

Array = NDArray[np.float64]


def stationary_distribution(trans: Array) -> Array:
    """Stationary distribution ``pi = pi A`` of a transition matrix (power iteration on A^T).

    Parameters
    ----------
    trans
        Shape (K, K), rows summing to 1.

    Returns
    -------
    Shape (K,), summing to 1.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(stationary_distribution(np.array([[0.9, 0.1], [0.2, 0.8]])), 4).tolist()
    [0.6667, 0.3333]
    """
    w, v = np.linalg.eig(trans.T)
    p = np.abs(np.real(v[:, np.argmin(np.abs(w - 1.0))]))
    return np.asarray(p / p.sum())


@dataclass(frozen=True)
class HMMPass:
    """The forward filter over one batch, computed without changing the model.

    Attributes
    ----------
    log_b
        Emission log-densities, shape (n_samples, n_components).
    alpha
        Filtered posteriors ``P(s_t | x_1..t)``, shape (n_samples, n_components).
    log_pred
        Predictive log-likelihood ``log p(x_t | x_1..t-1)``, shape (n_samples,); 0 for an
        all-NaN event.
    pred
        Predictive state distributions ``P(s_t | x_1..t-1)``, shape (n_samples, n_components).
    prev
        Filtered posterior before the batch, shape (n_components,) (the stationary
        distribution for the very first event).
    observed
        Events with at least one observed value, shape (n_samples,).
    """

    log_b: Array
    alpha: Array
    log_pred: Array
    pred: Array
    prev: Array
    observed: NDArray[np.bool_]

    def transitions(self, trans: Array, rows: NDArray[np.intp] | None = None
                    ) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
        """Transition into each event, and its prior probability ``A[i, j]``.

        For ``rows`` (default: every event) the pair ``(i, j)`` maximises
        ``P(s_{t-1}=i, s_t=j | x_1..t)``, proportional to ``alpha_{t-1}(i) A_ij b_t(j)``;
        the other events get the filtered MAP states ``argmax alpha_{t-1}``, ``argmax alpha_t``
        (cheaper, and the same pair unless the event is ambiguous).

        Parameters
        ----------
        trans
            The transition matrix the pass was run with, shape (K, K).
        rows
            Indices of the events to explain exactly (the flagged ones).

        Returns
        -------
        source, target
            State indices, shape (n_samples,).
        probability
            ``A[source, target]``, shape (n_samples,).
        """
        K = trans.shape[0]
        before = np.vstack([self.prev[None, :], self.alpha[:-1]])
        src = np.argmax(before, axis=1).astype(np.int64)
        dst = np.argmax(self.alpha, axis=1).astype(np.int64)
        idx = np.arange(len(src)) if rows is None else np.asarray(rows, dtype=np.intp)
        if idx.size:
            lb = self.log_b[idx]
            top = lb.max(axis=1, keepdims=True)
            b = np.exp(np.maximum(lb - np.where(np.isfinite(top), top, 0.0), -700.0))
            pair = before[idx, :, None] * trans[None, :, :] * b[:, None, :]
            s, d = np.divmod(np.argmax(pair.reshape(idx.size, K * K), axis=1), K)
            src[idx], dst[idx] = s, d
        return src, dst, trans[src, dst]


class OnlineHMM:
    """Streaming hidden Markov model with Gaussian emissions, learned by online EM.

    Parameters
    ----------
    n_components
        Number of hidden states ``K``.
    half_life
        Memory of the statistics: events (a number, ``math.inf`` for none) or a duration
        string in event time (``"7d"``, ``"90m"``; then every batch needs ``timestamps``).
    reg_covar
        Added to covariance diagonals.
    n_warmup
        Events buffered before the k-means start values are fitted.
    transition_prior
        Pseudo-counts spread over every row of the transition counts (keeps rows positive).
    block
        Events per block of the blocked forward filter.
    random_state
        Seed of the k-means start.

    Attributes
    ----------
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray of shape (n_components, n_features, n_features)
    transmat_ : ndarray of shape (n_components, n_components)
    n_seen_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s = np.repeat(np.tile([0, 1], 50), 20)            # 2 states, runs of 20
    >>> X = rng.normal(size=(2000, 2)) + 6.0 * s[:, None]
    >>> hmm = OnlineHMM(n_components=2, half_life=math.inf, random_state=0)
    >>> lp = hmm.partial_fit(X)
    >>> np.round(np.sort(np.diag(hmm.transmat_)), 2).tolist()
    [0.95, 0.95]
    """

    def __init__(
        self,
        n_components: int = 4,
        half_life: float | str = 10000.0,
        *,
        reg_covar: float = 1e-6,
        n_warmup: int = 500,
        transition_prior: float = 1.0,
        block: int = 32,
        random_state: int | None = None,
    ) -> None:
        if not (isinstance(n_components, int) and n_components >= 1):
            raise InvalidInputError(f"n_components={n_components!r} must be an integer >= 1")
        if n_warmup < 2 * n_components:
            raise InvalidInputError(f"n_warmup={n_warmup!r} must be at least 2 * n_components "
                                    f"= {2 * n_components}; raise it or lower n_components")
        self.n_components = n_components
        self.half_life = half_life
        if isinstance(half_life, (int, float)) and math.isinf(half_life) and half_life > 0:
            self._decay_unit, self._half = "events", math.inf
        else:
            self._decay_unit, self._half = parse_half_life(half_life, "half_life")
        self.reg_covar = reg_covar
        self.n_warmup = n_warmup
        self.transition_prior = transition_prior
        self.block = block
        self.random_state = random_state
        self.n_features_in_: int | None = None
        self.n_seen_ = 0
        self._buffer: list[Array] = []
        self._buffer_ts: list[Array] = []
        self._fitted = False
        self._clock = math.nan
        self._prev: Array | None = None  # filtered posterior of the last event
        # decayed statistics (set by the warm-up fit)
        self._shift: Array = np.empty(0)
        self._s0: Array = np.empty(0)
        self._sx: Array = np.empty((0, 0))
        self._sxx: Array = np.empty((0, 0, 0))
        self._xi: Array = np.empty((0, 0))

    # ------------------------------------------------------------------ properties
    @property
    def is_fitted(self) -> bool:
        """Whether the warm-up is over and the parameters exist."""
        return self._fitted

    @property
    def time_based(self) -> bool:
        """Whether the half-life is in event time (then batches need timestamps)."""
        return self._decay_unit == "seconds"

    # ------------------------------------------------------------------ filtering
    def _check(self, X: ArrayLike) -> Array:
        A = np.asarray(X, dtype=float)
        if A.ndim != 2:
            raise InvalidInputError(f"X has shape {A.shape}; pass shape (n_samples, n_features)")
        if self.n_features_in_ is not None and A.shape[1] != self.n_features_in_:
            raise InvalidInputError(f"X has {A.shape[1]} features, the model has "
                                    f"{self.n_features_in_}; send the same columns every batch")
        if not np.isfinite(A[~np.isnan(A)]).all():  # +-inf would poison the carried filter
            A = np.where(np.isinf(A), np.nan, A)
        return A

    def forward(self, X: ArrayLike) -> HMMPass:
        """Run the forward filter over ``X`` from the carried filter; changes nothing.

        Parameters
        ----------
        X
            Shape (n_samples, n_features), NaN for missing.

        Returns
        -------
        HMMPass

        Raises
        ------
        NotFittedError
            Before the warm-up is over.
        """
        if not self._fitted:
            raise NotFittedError(f"the HMM has {self.n_seen_} of its n_warmup={self.n_warmup} "
                                 "warm-up events; call partial_fit until is_fitted")
        A = self._check(X)
        with np.errstate(over="ignore"):  # an absurd reading: density 0, flagged downstream
            log_b = emission_log_prob(A, self._em)
        prev = self._prev if self._prev is not None else stationary_distribution(self.transmat_)
        pred0 = prev @ self.transmat_
        alpha, log_pred = forward_filter(log_b, self.transmat_, pred0, self.block)
        pred = np.empty_like(alpha)
        pred[0] = pred0
        np.matmul(alpha[:-1], self.transmat_, out=pred[1:])
        observed = np.asarray(~np.isnan(A).all(axis=1), dtype=bool)
        return HMMPass(log_b, alpha, log_pred, pred, prev, observed)

    def score_samples(self, X: ArrayLike) -> Array:
        """Predictive log-likelihoods ``log p(x_t | x_1..t-1)`` from the carried filter.

        Returns
        -------
        Shape (n_samples,).
        """
        return self.forward(X).log_pred

    def log_likelihood(self, X: ArrayLike) -> float:
        """``log p(x_1..n)`` of a whole sequence from the stationary distribution (offline).

        Returns
        -------
        float
        """
        A = self._check(X)
        log_b = emission_log_prob(A, self._em)
        pred0 = stationary_distribution(self.transmat_)
        _, log_pred = forward_filter(log_b, self.transmat_, pred0, self.block)
        return float(log_pred.sum())

    # ------------------------------------------------------------------ learning
    def _factors(self, n: int, timestamps: Array | None, learn: NDArray[np.bool_]) -> Array:
        if self._decay_unit == "seconds":
            if timestamps is None:
                raise InvalidInputError(f"half_life={self.half_life!r} is in event time; pass "
                                        "timestamps (seconds) with every batch")
            f, self._clock = event_time_decay(timestamps, self._half, self._clock)
            return f
        return np.where(learn, count_decay(n, self._half), 1.0)

    def update(self, hmm_pass: HMMPass, X: ArrayLike, learn: ArrayLike | None = None,
               timestamps: ArrayLike | None = None) -> None:
        """Advance the filter past the batch of ``hmm_pass`` and learn from its events.

        Parameters
        ----------
        hmm_pass
            :meth:`forward` of ``X``, with the current parameters.
        X
            The same batch.
        learn
            Shape (n_samples,): events whose statistics are learned (None: all).
        timestamps
            Shape (n_samples,), seconds; required for a half-life in event time.
        """
        A = self._check(X)
        n = A.shape[0]
        mask = np.ones(n, dtype=bool) if learn is None else np.asarray(learn, dtype=bool)
        mask = mask & hmm_pass.observed
        ts = None if timestamps is None else np.asarray(timestamps, dtype=float)
        w, total = remaining_weights(self._factors(n, ts, mask))
        w = np.where(mask, w, 0.0)
        s0, sx, sxx = batch_statistics(A, self._shift, hmm_pass.alpha, w, self._em)
        # pair posteriors: xi_t = alpha_{t-1} (x) b_t / c_t  (.) A, summed with weights
        wp = w * np.concatenate([[self._prev is not None], hmm_pass.observed[:-1]])
        ratio = np.minimum(hmm_pass.log_b - hmm_pass.log_pred[:, None], 700.0)
        scale = np.exp(ratio) * wp[:, None]
        pairs = np.outer(hmm_pass.prev, scale[0]) + hmm_pass.alpha[:-1].T @ scale[1:]
        xi = self.transmat_ * pairs
        self._s0 = self._s0 * total + s0
        self._sx = self._sx * total + sx
        self._sxx = self._sxx * total + sxx
        self._xi = self._xi * total + xi
        self._prev = hmm_pass.alpha[-1].copy()
        self.n_seen_ += n
        self._m_step()

    def partial_fit(self, X: ArrayLike, timestamps: ArrayLike | None = None) -> Array:
        """Score ``X`` predictively, then learn from all of it.

        Returns
        -------
        Predictive log-likelihoods, shape (n_samples,); NaN for warm-up events.
        """
        A = self._check(X)
        if A.shape[0] == 0:
            return np.empty(0)
        if not self._fitted:
            return self._warm(A, timestamps)
        p = self.forward(A)
        self.update(p, A, timestamps=timestamps)
        return p.log_pred

    def _warm(self, A: Array, timestamps: ArrayLike | None) -> Array:
        """Buffer warm-up events; fit start values and learn the buffer once it is full."""
        self.n_features_in_ = A.shape[1]
        self._buffer.append(A)
        n = A.shape[0]
        ts = np.full(n, np.nan) if timestamps is None else np.asarray(timestamps, dtype=float)
        self._buffer_ts.append(ts)
        if sum(b.shape[0] for b in self._buffer) < self.n_warmup:
            self.n_seen_ += n
            return np.full(n, np.nan)
        X = np.vstack(self._buffer)
        T = np.concatenate(self._buffer_ts)
        self.n_seen_ -= X.shape[0] - n
        self._buffer, self._buffer_ts = [], []
        self._start(X)
        p = self.forward(X)
        self.update(p, X, timestamps=None if timestamps is None else T)
        return np.full(n, np.nan)

    def _start(self, X: Array) -> None:
        rng = np.random.default_rng(self.random_state)
        means, covs, trans = initial_parameters(X, self.n_components, self.reg_covar, rng)
        K, d = means.shape
        self._shift = np.nanmean(X, axis=0)
        self._s0, self._sx = np.zeros(K), np.zeros((K, d))
        self._sxx, self._xi = np.zeros((K, d, d)), np.zeros((K, K))
        self._set(means, covs, trans)
        self._fitted = True

    def _set(self, means: Array, covs: Array, trans: Array) -> None:
        self.means_, self.covariances_, self.transmat_ = means, covs, trans
        self._em = Emission(means, covs, self.reg_covar)

    def _m_step(self) -> None:
        self._set(*m_step(self._s0, self._sx, self._sxx, self._xi, self._shift, self._em,
                          self.transition_prior))

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Versioned plain data (arrays and scalars) from which :meth:`from_state` continues
        exactly as this model would."""
        from streamem.model._hmm_state import dump_state

        return dump_state(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> OnlineHMM:
        """Rebuild a model from :meth:`to_state`.

        Raises
        ------
        StateError
            A malformed snapshot or one of another version.
        """
        from streamem.model._hmm_state import load_state

        return load_state(cls, state)

    def __repr__(self) -> str:
        return (f"OnlineHMM(n_components={self.n_components}, half_life={self.half_life!r}, "
                f"fitted={self._fitted})")
