"""``OnlineGMM``: a Gaussian mixture learned by online EM on exponentially decaying statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import NotFittedError
from streamem.model._batch_em import map_covariances
from streamem.model._forgetting import Forgetting
from streamem.model._gaussian import factorize
from streamem.model._gmm_state import STATE_VERSION, dump_state, load_state
from streamem.model._init import warm_up_fit
from streamem.model._lifecycle import add_components, reseed_dead
from streamem.model._reservoir import reservoir_update
from streamem.model._scorer import Scorer
from streamem.model._sklearn import SklearnEstimatorMixin
from streamem.model._stats import centred_update, sufficient_statistics
from streamem.model._validation import check_array, check_gmm_params
from streamem.model._versioned import StateReader

__all__ = ["OnlineGMM"]

Array = NDArray[np.float64]


class OnlineGMM(SklearnEstimatorMixin):
    """Gaussian mixture fitted by online (stepwise) EM with exponential forgetting.

    The first ``n_warmup`` samples are buffered and fitted by batch EM (k-means++ seeds,
    ``n_init`` restarts, K chosen by BIC when ``n_components="auto"``). After that every
    :meth:`partial_fit` mini-batch moves the centred sufficient statistics with the step
    ``gamma = max(B / (n0 + n), 1 - lambda**B)``, ``lambda = 2**(-1/half_life)``; with a
    half-life in event time, by the exact event-time weights
    (:mod:`~streamem.model._forgetting`).

    Parameters
    ----------
    n_components
        Number of components, or ``"auto"`` to choose 1..``max_components`` by BIC.
    covariance_type
        ``"full"`` or ``"diag"``.
    half_life
        In events: an observation's weight halves after this many newer ones. A duration
        (``"7d"``, ``"90m"``) is in event time: every :meth:`partial_fit` then needs
        ``timestamps``, and a gap of one hour decays the statistics by one hour.
    reg_covar
        Added to every covariance diagonal (absolute: scale your features).
    max_components
        Upper bound for ``"auto"``.
    n_warmup
        Samples buffered before the batch-EM initialisation.
    n_init, max_iter, tol
        Batch-EM restarts and stopping rule for the warm-up fit.
    prior_strength
        NIW covariance prior in pseudo-events (default ``2 * n_features + 4``).
    rho_max
        Cap on a component's effective step, so a starved component cannot jump to an outlier.
    refresh_every
        Recompute the scoring parameters (Cholesky factors) at least every this many events.
    reservoir_size
        Normal points kept (reservoir sampling) for re-seeding dead components.
    random_state
        Seed; the generator state is part of :meth:`to_state`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components_,)
    means_ : ndarray of shape (n_components_, n_features)
    covariances_ : ndarray
        Shape (n_components_, n_features, n_features), or (n_components_, n_features) for diag.
    precisions_cholesky_ : same shape as ``covariances_``
    n_components_ : int
    n_features_in_ : int
    n_seen_ : int
        Events absorbed since the warm-up fit.
    n_reseeds_ : int
        Starved components revived (at unexplained recent points, else by a split).

    Notes
    -----
    Values up to 1e100 in magnitude are accepted (larger ones, ±inf and all-NaN rows raise
    :class:`~streamem.InvalidInputError`). Finite parameters, positive-definite covariances
    and weights summing to 1 are property-tested for any input with magnitudes up to 1e6;
    an eigenvalue floor (1e-10 relative) keeps covariances usable after far outliers.
    Scale the features (the :class:`~streamem.Detector` does) so that ``reg_covar`` is
    meaningful.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = OnlineGMM(n_components=2, n_warmup=200, random_state=0)
    >>> X = np.vstack([rng.normal(-4, 1, (500, 2)), rng.normal(4, 1, (500, 2))])
    >>> _ = m.partial_fit(rng.permutation(X))
    >>> bool(m.score_samples([[0.0, 0.0]])[0] < m.score_samples([[4.0, 4.0]])[0])
    True
    >>> m.score_samples([[4.0, np.nan]]).shape
    (1,)
    """

    def __init__(
        self,
        n_components: int | Literal["auto"] = "auto",
        *,
        covariance_type: Literal["full", "diag"] = "full",
        half_life: float | str = 10_000,
        reg_covar: float = 1e-6,
        max_components: int = 8,
        n_warmup: int = 500,
        n_init: int = 3,
        max_iter: int = 100,
        tol: float = 1e-4,
        prior_strength: float | None = None,
        rho_max: float = 0.2,
        refresh_every: int = 32,
        reservoir_size: int = 1000,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.half_life = half_life
        self.reg_covar = reg_covar
        self.max_components = max_components
        self.n_warmup = n_warmup
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.prior_strength = prior_strength
        self.rho_max = rho_max
        self.refresh_every = refresh_every
        self.reservoir_size = reservoir_size
        self.random_state = random_state
        self._check_params()
        self._rng = np.random.default_rng(random_state)
        self._buffer: list[Array] = []
        self._fitted = False
        self.n_features_in_: int | None = None
        self.n_seen_ = 0
        self.n_reseeds_ = 0
        self.generation_ = 0
        #: Per-feature variance added to every covariance (besides ``reg_covar``): the
        #: quantisation variance of discrete features, set by the Detector from its scaler.
        self._var_floor: Array | float = 0.0

    def _check_params(self) -> None:
        check_gmm_params(self)
        old = getattr(self, "_forget", None)  # absent while __init__ runs
        if old is None or old.half_life != self.half_life:  # set_params(half_life=...)
            self._forget = Forgetting(self.half_life)

    # ------------------------------------------------------------------ fitting
    @property
    def is_fitted(self) -> bool:
        """True once the warm-up fit is done and the model can score.

        Examples
        --------
        >>> OnlineGMM(n_warmup=10).is_fitted
        False
        """
        return self._fitted

    def partial_fit(self, X: ArrayLike, y: object = None, *,
                    timestamps: ArrayLike | None = None) -> OnlineGMM:
        """Learn from a mini-batch.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN marks a missing reading.
        y
            Ignored (scikit-learn convention).
        timestamps
            Shape (n_samples,), seconds (NaN: unknown); required for a half-life in event
            time, ignored otherwise.

        Returns
        -------
        self

        Raises
        ------
        InvalidInputError
            A row with ±inf or with every feature missing, or the wrong number of features.
            Nothing of the batch is learned then.

        Examples
        --------
        >>> import numpy as np
        >>> m = OnlineGMM(n_components=1, n_warmup=50, random_state=0)
        >>> m.partial_fit(np.random.default_rng(0).normal(size=(40, 2))).is_fitted
        False
        >>> m.partial_fit(np.random.default_rng(1).normal(size=(40, 2))).is_fitted
        True
        """
        A = check_array(X, self.n_features_in_)
        if A.shape[0] == 0:
            return self
        ts = None if timestamps is None else np.asarray(timestamps, dtype=float).reshape(-1)
        if not self._fitted:
            self.n_features_in_ = A.shape[1]
            self._forget.observe(ts)
            self._buffer.append(A)
            if sum(len(b) for b in self._buffer) >= self.n_warmup:
                self._initialise(np.vstack(self._buffer))
                self._buffer = []
            return self
        _, log_resp, _, _ = self._estimate(A)
        self._learn(A, np.exp(log_resp), ts)
        return self

    def _initialise(self, X: Array) -> None:
        n, d = X.shape
        self.n_features_in_ = d
        k = self.max_components if self.n_components == "auto" else int(self.n_components)
        fit, self._prior_cov, self._kappa = warm_up_fit(
            X, k, self.n_components == "auto", self.covariance_type, self.reg_covar,
            self.prior_strength, self._rng, self.n_init, self.max_iter, self.tol,
            var_floor=self._var_floor,
        )
        self._s0 = fit.weights.copy()
        self._mu = fit.means.copy()
        self._C = fit.ml_covariances.copy()
        self.n_components_ = len(fit.weights)
        self.n0_ = float(n)
        self.n_seen_ = 0
        self._pending = 0
        self._reservoir = X[~np.isnan(X).any(axis=1)][: self.reservoir_size].copy()
        self._reservoir_offered = n
        self.converged_ = fit.converged
        self._forget.start(n)
        self._fitted = True
        self._refresh()

    def add_components(self, X: ArrayLike, weight: float = 0.5) -> OnlineGMM:
        """Add components fitted to ``X`` (a new regime) without forgetting the others.

        They get total weight ``weight``; the existing components share the rest, and the
        cheapest pairs are merged when there are too many (see
        :func:`~streamem.model._lifecycle.add_components`).

        Parameters
        ----------
        X
            Shape (n_samples, n_features), the new regime's events; NaN = missing.
        weight
            Total mixture weight given to the new components, in (0, 1).

        Returns
        -------
        self

        Raises
        ------
        NotFittedError
            Before the warm-up fit.
        InvalidInputError
            ``weight`` outside (0, 1), fewer than 2 rows, or bad rows.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> m = OnlineGMM(n_components=1, n_warmup=200, random_state=0)
        >>> _ = m.partial_fit(rng.normal(size=(200, 2)))
        >>> _ = m.add_components(rng.normal(size=(200, 2)) + 8.0, weight=0.5)
        >>> m.n_components_, np.round(m.weights_, 2).tolist()
        (2, [0.5, 0.5])
        >>> np.round(m.means_[1]).tolist()
        [8.0, 8.0]
        """
        add_components(self, check_array(X, self.n_features_in_), weight)
        return self

    def _n_eff(self) -> float:
        return self._forget.n_eff(self.n0_ + self.n_seen_)

    def _refresh(self) -> None:
        """M-step: scoring parameters (MAP covariances, Cholesky factors) from the statistics."""
        self.weights_, self.covariances_, self.precisions_cholesky_ = self._m_step(
            self._s0, self._C
        )
        self.means_ = self._mu.copy()
        self._rescore()
        self._pending = 0
        self.generation_ += 1

    def _rescore(self) -> None:
        """Scoring constants of the current parameters (after an M-step or a state load)."""
        self._scorer = Scorer(
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_,
            self.covariance_type, self.reg_covar,
        )
        self._log_weights = self._scorer.log_weights

    def _m_step(self, s0: Array, C: Array) -> tuple[Array, Array, Array]:
        """Weights (Dirichlet 1.01), MAP covariances and precision factors of statistics."""
        counts = self._n_eff() * s0
        w = counts + 0.01
        covariances, prec = factorize(
            map_covariances(C, counts, self._prior_cov, self._kappa,
                            self.reg_covar + self._var_floor),
            self.covariance_type, self.reg_covar,
        )
        return w / w.sum(), covariances, prec

    def _estimate(
        self, X: Array, complete: bool | None = None
    ) -> tuple[Array, Array, Array, Array | float]:
        """E-step: ``log f(x)``, log responsibilities, log normalising constants, ``d_o``."""
        if not self._fitted:
            raise NotFittedError(
                f"the model has seen {sum(len(b) for b in self._buffer)} of n_warmup="
                f"{self.n_warmup} samples; call partial_fit with more data first"
            )
        return self._scorer.estimate(X, complete)

    def _estimate_tail(
        self, X: Array, complete: bool | None = None
    ) -> tuple[Array, Array, Array]:
        """E-step and tail: ``log f(x)``, log responsibilities, ``log P(f(Y) <= f(x))``."""
        lpn, log_resp, lnc, do = self._estimate(X, complete)
        return lpn, log_resp, self._scorer.log_tail(lnc, lpn, do)

    def _learn(self, X: Array, resp: Array, timestamps: Array | None = None) -> None:
        """Move the decaying statistics towards the batch statistics (centred form)."""
        B = X.shape[0]
        if B == 0:
            return
        gamma, w = self._forget.step(B, timestamps, self.n0_ + self.n_seen_ + B)
        self.n_seen_ += B
        if w is not None:
            resp = resp * w[:, None]
        center = self.weights_ @ self._mu
        nk, sx, sxx = sufficient_statistics(
            X, resp, self.means_, self.covariances_, self.covariance_type, self.reg_covar, center
        )
        self._s0, self._mu, self._C = centred_update(
            self._s0, self._mu, self._C, nk, sx, sxx, center, gamma, self.rho_max, B
        )
        self._update_reservoir(X)
        self._pending += B
        if self._pending >= self.refresh_every:
            self._refresh()
            reseed_dead(self)

    def _update_reservoir(self, X: Array) -> None:
        self._reservoir, self._reservoir_offered = reservoir_update(
            self._reservoir, self._reservoir_offered, X, self.reservoir_size, self._rng,
            self._forget.window(),
        )

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: plain arrays and scalars, versioned.

        Examples
        --------
        >>> import numpy as np
        >>> m = OnlineGMM(n_components=1, n_warmup=50, random_state=0)
        >>> _ = m.partial_fit(np.random.default_rng(0).normal(size=(60, 2)))
        >>> m2 = OnlineGMM.from_state(m.to_state())
        >>> bool(np.array_equal(m2.means_, m.means_))
        True
        """
        return dump_state(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> OnlineGMM:
        """Rebuild a model from :meth:`to_state` output; it continues bit for bit.

        Parameters
        ----------
        state
            The snapshot.

        Returns
        -------
        OnlineGMM

        Raises
        ------
        StateError
            Unknown version or inconsistent shapes.

        Examples
        --------
        >>> OnlineGMM.from_state({"version": 0})
        Traceback (most recent call last):
        ...
        streamem.errors.StateError: OnlineGMM state version 0 is not 1; ...written by another...
        >>> OnlineGMM.from_state({"version": 1, "params": {"half_life": -1}})
        Traceback (most recent call last):
        ...
        streamem.errors.StateError: malformed OnlineGMM state: InvalidInputError(...half_life=-1...
        """
        r = StateReader.of(state, "OnlineGMM", version=STATE_VERSION)
        with r.guard():
            m = cls(**r["params"])
        load_state(m, r)
        return m

    def __repr__(self) -> str:
        k = self.n_components_ if self._fitted else self.n_components
        return (
            f"OnlineGMM(n_components={k!r}, covariance_type={self.covariance_type!r}, "
            f"half_life={self.half_life!r}, fitted={self._fitted})"
        )


