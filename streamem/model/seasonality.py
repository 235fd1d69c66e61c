"""Seasonal normal: the density of a reading given its time of day and of week.

:class:`SeasonalModel` learns an :class:`~streamem.OnlineGMM` over ``[x, phase features]``
and scores the conditional density ``p(x | phase)`` in closed form (the reasons for this
choice over per-slot baselines are in :mod:`streamem.model._conditional`). The phase is
context: it is never scored, so a reading at an unusual hour is not anomalous for the hour.

Until the history spans a whole period that period is marginalised out (a new deployment
with two days of data scores with the daily cycle but not yet the weekly one, and with less
than a day as the i.i.d. model would); :attr:`SeasonalModel.status` says which.

Entry point for ``model.seasonality: [1d, 7d]``: ``SeasonalModel(periods=["1d", "7d"])``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError, NotFittedError
from streamem.model._conditional import conditional_log_prob, phase_features
from streamem.model.gmm import OnlineGMM

__all__ = ["SeasonalModel", "period_seconds"]

Array = NDArray[np.float64]


def period_seconds(period: float | str) -> float:
    """Seconds of a seasonality period given as a duration (``"1d"``) or seconds.

    Examples
    --------
    >>> period_seconds("7d"), period_seconds(3600)
    (604800.0, 3600.0)
    """
    if isinstance(period, (int, float)) and not isinstance(period, bool):
        value = float(period)
    else:
        from streamem.config.durations import parse_duration  # config pulls in yaml: lazy

        value = parse_duration(period, "model.seasonality")
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"seasonality period {period!r} must be a positive duration "
                                "such as 1d or 7d")
    return value


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


class SeasonalModel:
    """Mixture over readings and cyclic phase features, scored as ``p(x | phase)``.

    Parameters
    ----------
    periods
        Durations (``"1d"``, ``"7d"``) or seconds.
    n_components
        Components of the joint mixture (``"auto"``: by BIC at the warm-up).
    half_life
        Events (see :class:`~streamem.OnlineGMM`).
    **gmm_params
        Further :class:`~streamem.OnlineGMM` keywords (``n_warmup``, ``random_state``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(0, 3 * 86400, 600.0)                       # 3 days, every 10 min
    >>> x = 10 + 4 * np.cos(2 * np.pi * (t - 43200) / 86400) + rng.normal(0, 0.5, t.size)
    >>> m = SeasonalModel(periods=["1d"], n_components=3, n_warmup=300, random_state=0)
    >>> m.partial_fit(x[:, None], t)
    >>> lp_night, lp_noon = m.score_samples(np.array([[14.0], [14.0]]),
    ...                                     np.array([3 * 3600.0, 12 * 3600.0]))
    >>> bool(lp_noon > lp_night + 10), m.status
    (True, 'seasonality: using 1d')
    """

    def __init__(self, periods: Sequence[float | str] = ("1d",), n_components: Any = 4,
                 half_life: float = 50_000.0, **gmm_params: Any) -> None:
        if not periods:
            raise InvalidInputError("seasonality needs at least one period, e.g. ['1d']")
        self.periods = list(periods)
        self.seconds = np.array([period_seconds(p) for p in periods])
        self.gmm = OnlineGMM(n_components, covariance_type="full", half_life=half_life,
                             **gmm_params)
        self.first_: float = math.nan
        self.last_: float = math.nan

    @property
    def history(self) -> float:
        """Seconds of event time seen (0 before any timestamp)."""
        return 0.0 if math.isnan(self.first_) else self.last_ - self.first_

    @property
    def ready(self) -> NDArray[np.bool_]:
        """Periods with at least one full cycle of history, shape (n_periods,)."""
        return np.asarray(self.seconds <= self.history)

    @property
    def status(self) -> str:
        """Which periods are used, and why the others are not yet.

        Examples
        --------
        >>> SeasonalModel(periods=["1d", "7d"]).status
        'seasonality: 0s of history, less than one period of 1d, 7d: scoring without phase'
        """
        used = [str(p) for p, r in zip(self.periods, self.ready, strict=True) if r]
        wait = [str(p) for p, r in zip(self.periods, self.ready, strict=True) if not r]
        if not wait:
            return f"seasonality: using {', '.join(used)}"
        msg = (f"seasonality: {_human(self.history)} of history, less than one period of "
               f"{', '.join(wait)}")
        return msg + (f": using {', '.join(used)}" if used else ": scoring without phase")

    def _features(self, X: ArrayLike, timestamps: ArrayLike) -> tuple[Array, Array]:
        A = np.asarray(X, dtype=float)
        ts = np.asarray(timestamps, dtype=float)
        if A.ndim != 2 or ts.shape != (A.shape[0],):
            raise InvalidInputError(f"X has shape {A.shape} and timestamps {ts.shape}; pass "
                                    "(n_samples, n_features) and (n_samples,) seconds")
        if not np.isfinite(ts).all():
            raise InvalidInputError("timestamps must be finite seconds; drop or dead-letter "
                                    "events without a time before the seasonal model")
        return A, phase_features(ts, self.seconds)

    def partial_fit(self, X: ArrayLike, timestamps: ArrayLike) -> None:
        """Learn from readings and their times (seconds).

        Parameters
        ----------
        X
            Shape (n_samples, n_features).
        timestamps
            Shape (n_samples,).
        """
        A, C = self._features(X, timestamps)
        if A.shape[0] == 0:
            return
        ts = np.asarray(timestamps, dtype=float)
        self.first_ = float(np.fmin(self.first_, ts.min()))
        self.last_ = float(np.fmax(self.last_, ts.max()))
        self.gmm.partial_fit(np.hstack([A, C]))

    def _conditional(self, X: ArrayLike, timestamps: ArrayLike) -> tuple[Array, Array]:
        A, C = self._features(X, timestamps)
        context = np.flatnonzero(np.repeat(self.ready, 2))
        g = self.gmm
        if not g.is_fitted:
            raise NotFittedError(f"the seasonal mixture has not seen its n_warmup={g.n_warmup} "
                                 "events yet; call partial_fit first")
        return conditional_log_prob(A, C, g.weights_, g.means_, g.covariances_, context,
                                    g.reg_covar)

    def score_samples(self, X: ArrayLike, timestamps: ArrayLike) -> Array:
        """``log p(x | phase)`` per event (NaN where a reading is missing).

        Returns
        -------
        Shape (n_samples,).
        """
        return self._conditional(X, timestamps)[0]

    def tail_probability(self, X: ArrayLike, timestamps: ArrayLike) -> Array:
        """Calibrated probability of a reading at least this unlikely *at this phase*.

        Returns
        -------
        Shape (n_samples,).
        """
        return np.exp(self._conditional(X, timestamps)[1])
