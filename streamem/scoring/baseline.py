"""Moving baselines for slowly varying features (drift-tolerant scaling).

A feature whose warm-up trajectory is smooth (lag-1 autocorrelation close to 1: a
temperature, a tank level, a bearing's thermal state) has a *level* that a short warm-up
cannot characterise: a few hundred events cover only a small stretch of a slow random walk,
so later normal levels fall outside everything the model has seen, every such event is
flagged, and a protected model never learns them. The classic remedy from statistical
process control for autocorrelated data is to chart the residuals of a one-step-ahead
forecast instead of the level (Alwan & Roberts 1988; Montgomery, *Introduction to
Statistical Quality Control*, "SPC with autocorrelated process data"), with an
exponentially weighted moving average (EWMA) as the forecast.

:class:`SlowBaseline` does exactly that for the features it classifies as slow at warm-up:
their value ``x_t`` is replaced by ``x_t - b_{t-1}``, where ``b`` is an EWMA of that feature
over **every** event (flagged or not) with the given half-life. Fast (noise-like) features
pass through unchanged, and on a stream without slow features nothing changes at all.
Abrupt jumps of a slow feature still show up as large residuals until the baseline has
caught up (a few half-lives); slow drifts never do.

With ``half_life="auto"`` each slow feature gets its own half-life: the one (from
:data:`AUTO_HALF_LIVES`) whose EWMA gives the smallest one-step-ahead squared forecast error
on the warm-up data, i.e. simple exponential smoothing fitted by least squares, the
estimator of an ARIMA(0,1,1) model. A near random walk (a temperature sampled every second)
gets a half-life of an event or two, a smooth signal with more measurement noise a longer
one, so nothing has to be tuned per stream.

Detrending is off by default in the :class:`~streamem.Detector` because it changes what an
alarm means for every slow feature: a fault that holds a slow reading at a wrong level
alarms only until the baseline has caught up (tens of events at half-life 10), and on
streams whose slow features carry the anomalies it can raise false alarms (residuals are
noisier than levels). Turn it on (10 is a good start) where slow drift of some sensors
causes most false alarms.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from streamem.model._numeric import has_nan
from streamem.model._versioned import StateReader

__all__ = ["AUTO_HALF_LIVES", "SlowBaseline", "fit_half_life", "lag1_autocorrelation"]

Array = NDArray[np.float64]

#: Candidate half-lives (events) for ``half_life="auto"``: a geometric-ish ladder from
#: "almost differencing" to "almost the warm-up mean".
AUTO_HALF_LIVES: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0,
                                      50.0, 100.0)


def _ewma_residuals(x: Array, lam: float) -> Array:
    """One-step-ahead residuals ``x_t - b_{t-1}`` of an EWMA started at the first value."""
    level = np.nan
    out = np.full(x.shape, np.nan)
    if not has_nan(x):
        from scipy.signal import lfilter  # lazily: see SlowBaseline.transform

        y = lfilter([1.0 - lam], [1.0, -lam], x, zi=[lam * x[0]])[0]
        out[1:] = x[1:] - y[:-1]
        return out
    for t, v in enumerate(x):
        if np.isnan(v):
            continue
        if np.isnan(level):
            level = v
            continue
        out[t] = v - level
        level = lam * level + (1.0 - lam) * v
    return out


def fit_half_life(x: Array, candidates: tuple[float, ...] = AUTO_HALF_LIVES) -> float:
    """The candidate half-life whose EWMA forecasts ``x`` one step ahead best (least squares).

    Parameters
    ----------
    x
        Shape (n_samples,), in time order; NaN = missing.
    candidates
        Half-lives to try, in events.

    Returns
    -------
    float
        The best candidate; the largest one when ``x`` has fewer than 3 observed values.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> walk = np.cumsum(rng.normal(size=400))
    >>> fit_half_life(walk), fit_half_life(walk + rng.normal(0, 3, 400)) > 1.0
    (0.5, True)
    """
    if int(np.sum(~np.isnan(x))) < 3:
        return float(max(candidates))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mse = [float(np.nanmean(_ewma_residuals(x, 2.0 ** (-1.0 / h)) ** 2)) for h in candidates]
    return float(candidates[int(np.nanargmin(mse))]) if np.isfinite(mse).any() else float(
        max(candidates))


def lag1_autocorrelation(X: Array) -> Array:
    """NaN-aware lag-1 autocorrelation of each column, ``1 - var(diff x) / (2 var x)``.

    Parameters
    ----------
    X
        Shape (n_samples, n_features), in time order; NaN = missing.

    Returns
    -------
    ndarray of shape (n_features,)
        Near 0 for white noise, near 1 for a smooth, slowly moving signal; 0 for a constant
        column or one with fewer than 3 observed consecutive pairs.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> walk = np.cumsum(rng.normal(size=500))
    >>> np.round(lag1_autocorrelation(np.column_stack([rng.normal(size=500), walk])), 1).tolist()
    [0.0, 1.0]
    """
    if X.shape[0] < 4:
        return np.zeros(X.shape[1])
    d = np.diff(X, axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        var_d = np.nanvar(d, axis=0)
        var_x = np.nanvar(X, axis=0)
        pairs = np.sum(~np.isnan(d), axis=0)
        rho = 1.0 - var_d / (2.0 * var_x)
    ok = np.isfinite(rho) & (var_x > 0) & (pairs >= 3)
    out: Array = np.where(ok, rho, 0.0)
    return out


class SlowBaseline:
    """Replace slow features by their residual from an EWMA baseline (a one-step forecast).

    Parameters
    ----------
    half_life
        Half-life of the baseline, in events. Short enough to follow the slow features'
        drift, long enough to average their noise. ``"auto"``: fitted per slow feature on
        the warm-up data (:func:`fit_half_life`).
    min_autocorr
        A feature is slow when its warm-up lag-1 autocorrelation is at least this.

    Attributes
    ----------
    autocorr_ : ndarray of shape (n_features,)
        Warm-up lag-1 autocorrelations.
    half_lives_ : ndarray of shape (n_features,)
        The half-life of each feature's baseline (``half_life``, or fitted with ``"auto"``;
        unused for features that are not slow).
    slow_ : ndarray of bool, shape (n_features,)
        The features measured against a baseline.
    level_ : ndarray of shape (n_features,)
        Current baseline (NaN for features that are not slow or never observed).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.normal(size=300), np.cumsum(rng.normal(0, 0.1, 300))])
    >>> b = SlowBaseline(half_life=10.0, min_autocorr=0.75)
    >>> R = b.fit_transform(X)
    >>> b.slow_.tolist(), bool(np.array_equal(R[:, 0], X[:, 0]))
    ([False, True], True)
    >>> bool(np.abs(R[:, 1]).max() < np.abs(X[:, 1] - X[0, 1]).max())
    True
    >>> a = SlowBaseline(half_life="auto"); _ = a.fit_transform(X)
    >>> bool(a.half_lives_[1] < 10.0)     # a random walk: follow it closely
    True
    """

    def __init__(
        self, half_life: float | Literal["auto"] = 10.0, min_autocorr: float = 0.75
    ) -> None:
        self.half_life: float | Literal["auto"] = (
            "auto" if half_life == "auto" else float(half_life)
        )
        self.min_autocorr = float(min_autocorr)
        self.autocorr_: Array = np.zeros(0)
        self.half_lives_: Array = np.zeros(0)
        self.slow_: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.level_: Array = np.zeros(0)

    @property
    def active(self) -> bool:
        """True when at least one feature is measured against a baseline.

        Examples
        --------
        >>> SlowBaseline().active
        False
        """
        return bool(self.slow_.any())

    def _lam(self, cols: NDArray[np.intp]) -> Array:
        out: Array = 2.0 ** (-1.0 / self.half_lives_[cols])
        return out

    def fit_transform(self, X: Array) -> Array:
        """Classify the features on warm-up data ``X`` and return its residuals.

        Parameters
        ----------
        X
            Shape (n_samples, n_features), in time order, original units.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            ``X`` with every slow column replaced by its one-step-ahead EWMA residual.

        Examples
        --------
        >>> import numpy as np
        >>> b = SlowBaseline()
        >>> R = b.fit_transform(np.column_stack([np.linspace(0, 1, 50), np.tile([0.0, 1.0], 25)]))
        >>> b.slow_.tolist(), float(R[0, 0])
        ([True, False], 0.0)
        """
        self.autocorr_ = lag1_autocorrelation(X)
        self.slow_ = self.autocorr_ >= self.min_autocorr
        self.level_ = np.full(X.shape[1], np.nan)
        if self.half_life == "auto":
            self.half_lives_ = np.array([
                fit_half_life(X[:, j]) if slow else max(AUTO_HALF_LIVES)
                for j, slow in enumerate(self.slow_)
            ])
        else:
            self.half_lives_ = np.full(X.shape[1], self.half_life)
        return self.transform(X)

    def transform(self, X: Array, update: bool = True) -> Array:
        """Residuals of the slow features against the baseline; the others unchanged.

        Each row is compared with the baseline as it was *before* that row (a one-step-ahead
        forecast); then, with ``update``, the baseline moves towards the row. A missing value
        leaves its baseline where it was; a feature's first observation has residual 0.

        Parameters
        ----------
        X
            Shape (n_samples, n_features), original units, time order.
        update
            Move the baseline (False: compare every row with the current baseline, as
            explanations do).

        Returns
        -------
        ndarray of shape (n_samples, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> b = SlowBaseline(half_life=1.0)
        >>> b.slow_, b.level_, b.half_lives_ = np.array([True]), np.array([0.0]), np.array([1.0])
        >>> b.transform(np.array([[2.0], [2.0]])).ravel().tolist(), b.level_.tolist()
        ([2.0, 1.0], [1.5])
        """
        if not self.active:
            return X
        cols = np.flatnonzero(self.slow_)
        S = X[:, cols]
        level = self.level_[cols]
        out = X.copy()
        if not update:
            out[:, cols] = S - np.where(np.isnan(level), S, level)
            return out
        lams = self._lam(cols)
        if not has_nan(S) and not has_nan(level):
            if S.shape[0] == 1:
                prev = level[None, :]
                new = lams * level + (1.0 - lams) * S[0]
            else:
                # scipy.signal costs ~1 s to import (it pulls in scipy.stats); only
                # detrending detectors pay for it.
                from scipy.signal import lfilter

                ys = np.empty_like(S)
                for lam in np.unique(lams):  # one filter call per distinct half-life
                    j = lams == lam
                    ys[:, j] = lfilter([1.0 - lam], [1.0, -lam], S[:, j], axis=0,
                                       zi=lam * level[None, j])[0]
                prev = np.vstack([level[None, :], ys[:-1]])
                new = ys[-1]
            out[:, cols] = S - prev
            self.level_[cols] = new
            return out
        res = np.empty_like(S)
        for t in range(S.shape[0]):
            x = S[t]
            first = np.isnan(level) & ~np.isnan(x)
            level = np.where(first, x, level)
            res[t] = x - level
            seen = ~np.isnan(x)
            level = np.where(seen, lams * level + (1.0 - lams) * np.where(seen, x, 0.0), level)
        out[:, cols] = res
        self.level_[cols] = level
        return out

    def offset(self) -> Array:
        """What :meth:`transform` (without update) subtracts: the baseline, 0 elsewhere.

        Examples
        --------
        >>> SlowBaseline().offset().shape
        (0,)
        """
        return np.where(self.slow_, np.nan_to_num(self.level_), 0.0)

    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars.

        Examples
        --------
        >>> sorted(SlowBaseline().to_state())
        ['autocorr', 'half_life', 'half_lives', 'level', 'min_autocorr', 'slow']
        """
        return {
            "half_life": self.half_life, "min_autocorr": self.min_autocorr,
            "autocorr": self.autocorr_.copy(), "slow": self.slow_.copy(),
            "level": self.level_.copy(), "half_lives": self.half_lives_.copy(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SlowBaseline:
        """Rebuild from :meth:`to_state` (a defect raises :class:`~streamem.StateError`).

        Examples
        --------
        >>> SlowBaseline.from_state(SlowBaseline(half_life=5.0).to_state()).half_life
        5.0
        """
        r = StateReader.of(state, "SlowBaseline")
        with r.guard():
            hl = r["half_life"]
            b = cls("auto" if hl == "auto" else r.number("half_life"), r.number("min_autocorr"))
            b.autocorr_ = r.array("autocorr").copy()
            b.slow_ = r.array("slow", bool).copy()
            b.level_ = r.array("level").copy()
            if "half_lives" in r:
                b.half_lives_ = r.array("half_lives").copy()
            else:  # written before per-feature half-lives: one half-life for all
                b.half_lives_ = np.full(len(b.slow_), r.number("half_life"))
            return b
