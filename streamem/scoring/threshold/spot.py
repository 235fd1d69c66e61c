"""SPOT: an extreme-value (generalised Pareto) threshold with a target false-alarm rate.

Siffer et al., KDD 2017. Peaks over a high quantile ``t`` of the score are fitted with a GPD
(Grimshaw's maximum likelihood, method of moments as the fallback; the better likelihood wins),
and the threshold for risk ``q`` is
``z_q = t + sigma/gamma * ((q n / N_t)**(-gamma) - 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError
from streamem.model._versioned import StateReader
from streamem.scoring.threshold.gpd import fit_gpd

__all__ = ["SpotThreshold"]

Array = NDArray[np.float64]


class SpotThreshold:
    """Streaming SPOT threshold on surprise scores with bounded, forgetting peak memory.

    Parameters
    ----------
    q
        Target probability of flagging a normal event (``alert_rate``).
    level
        Quantile of the initial scores used as the excess threshold ``t``; default chooses
        ``1 - max(5 q, 200 / n)`` for ``n`` initial scores, capped to [0.9, 0.999].
    max_excess
        Peaks kept (a ring buffer): the tail model forgets older peaks.
    refit_every
        Refit the GPD after this many new peaks.
    gross_factor
        Flagged scores above the ``q * gross_factor`` tail quantile are left out of the tail
        model (gross anomalies); flagged scores below it are learned, so that the tail is not
        truncated at the threshold.
    n_init
        Without an explicit :meth:`fit`, :meth:`update` collects this many live
        (out-of-sample) scores and then fits on them. Until then the threshold is the
        model-calibrated ``-log10(q)`` (valid for surprise scores of a well-specified model;
        the chi-square bound is conservative). Fitting on the warm-up data's own in-sample
        scores instead sets the threshold too low (measured: 0.44 % flagged at q = 1e-3).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> spot = SpotThreshold(q=1e-3)
    >>> spot.fit(rng.exponential(1.0, 5000))
    >>> round(spot.threshold_, 0)   # exact value for Exp(1): ln(1000) = 6.9
    7.0
    >>> live = SpotThreshold(q=1e-3, n_init=2000)
    >>> live.threshold_                      # before calibration: -log10(q)
    3.0
    >>> u = rng.exponential(1 / np.log(10), 2000)   # surprises of a calibrated model
    >>> live.update(u, u > live.threshold_)
    >>> live.fitted_, bool(2.5 < live.threshold_ < 3.6)
    (True, True)
    """

    def __init__(
        self,
        q: float = 1e-3,
        *,
        level: float | None = None,
        max_excess: int = 1000,
        refit_every: int = 10,
        gross_factor: float = 0.01,
        n_init: int = 2000,
    ) -> None:
        if not 0 < q < 0.5:
            raise InvalidInputError(f"alert_rate q={q!r} must be in (0, 0.5); 1e-3 is typical")
        self.q = q
        self.level = level
        self.max_excess = max_excess
        self.refit_every = refit_every
        self.gross_factor = gross_factor
        self.n_init = n_init
        self._calib: list[Array] = []
        self.t_ = 0.0
        self.gamma_ = 0.0
        self.sigma_ = 1.0
        self.n_ = 0.0
        self.n_peaks_ = 0.0
        self._peaks = np.empty(0)
        self._head = 0
        self._since_fit = 0
        self._z = -math.log10(q)
        self.fitted_ = False

    @property
    def threshold_(self) -> float:
        """Current threshold ``z_q`` on the score scale (``-log10(q)`` before calibration).

        Examples
        --------
        >>> SpotThreshold(q=1e-3).threshold_
        3.0
        """
        return self._z

    @property
    def peaks_(self) -> Array:
        """The excesses currently in the tail buffer (at most ``max_excess``).

        Examples
        --------
        >>> import numpy as np
        >>> spot = SpotThreshold(q=1e-3)
        >>> spot.fit(np.random.default_rng(0).exponential(1.0, 5000))
        >>> len(spot.peaks_)   # 1 - level = 200 / 5000 of the scores
        200
        """
        return self._peaks

    def fit(self, scores: Array) -> None:
        """Calibrate from initial scores: set ``t``, collect peaks, fit the GPD.

        Parameters
        ----------
        scores
            Shape (n,), at least 10 finite values (non-finite ones are dropped).

        Raises
        ------
        InvalidInputError
            Fewer than 10 finite scores.

        Examples
        --------
        >>> import numpy as np
        >>> spot = SpotThreshold(q=1e-3)
        >>> spot.fit(np.random.default_rng(0).exponential(1.0, 5000))
        >>> spot.fitted_, round(spot.t_, 1)   # t at the 0.96 quantile of Exp(1)
        (True, 3.2)
        """
        s = np.asarray(scores, dtype=float)
        s = s[np.isfinite(s)]
        if len(s) < 10:
            raise InvalidInputError(
                f"SPOT needs at least 10 initial scores, got {len(s)}; warm up longer"
            )
        level = self.level
        if level is None:
            level = 1.0 - max(5.0 * self.q, 200.0 / len(s))
            level = min(max(level, 0.9), 0.999)
        self.t_ = float(np.quantile(s, level))
        peaks = s[s > self.t_] - self.t_
        self._peaks = peaks[-self.max_excess :].copy()
        self._head = len(self._peaks) % self.max_excess
        self.n_ = float(len(s))
        self.n_peaks_ = float(len(peaks))
        self.fitted_ = True
        self._refit()

    def _window(self) -> float:
        return self.max_excess * self.n_ / max(self.n_peaks_, 1.0)

    def _refit(self) -> None:
        if len(self._peaks) >= 3:
            self.gamma_, self.sigma_ = fit_gpd(self._peaks)
        self._since_fit = 0
        self._z = self.quantile(self.q)

    def quantile(self, q: float) -> float:
        """Score exceeded with probability ``q`` under the fitted tail.

        Parameters
        ----------
        q
            Tail probability.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> spot = SpotThreshold(q=1e-3)
        >>> spot.fit(np.random.default_rng(0).exponential(1.0, 5000))
        >>> round(spot.quantile(1e-4), 1)   # exact for Exp(1): ln(1e4) = 9.2
        9.2
        """
        if self.n_peaks_ <= 0:
            return self.t_
        r = q * self.n_ / self.n_peaks_
        if r >= 1.0:
            return self.t_
        if abs(self.gamma_) < 1e-12:
            return self.t_ - self.sigma_ * math.log(r)
        return float(self.t_ + self.sigma_ / self.gamma_ * (r ** (-self.gamma_) - 1.0))

    def tail_probability(self, scores: Array) -> Array:
        """Estimated ``P(score > s)`` from the GPD tail (for scores above ``t``).

        Parameters
        ----------
        scores
            Shape (n,).

        Returns
        -------
        ndarray of shape (n,)
            NaN for scores at or below ``t`` (not in the modelled tail).

        Examples
        --------
        >>> import numpy as np
        >>> spot = SpotThreshold(q=1e-3); spot.fit(np.random.default_rng(1).exponential(1, 20000))
        >>> bool(abs(spot.tail_probability(np.array([spot.threshold_]))[0] - 1e-3) < 1e-6)
        True
        """
        s = np.asarray(scores, dtype=float)
        ratio = self.n_peaks_ / max(self.n_, 1.0)
        y = np.maximum(s - self.t_, 0.0)
        if abs(self.gamma_) < 1e-12:
            p = ratio * np.exp(-y / self.sigma_)
        else:
            base = np.maximum(1.0 + self.gamma_ * y / self.sigma_, 1e-300)
            p = ratio * base ** (-1.0 / self.gamma_)
        return np.asarray(np.where(s > self.t_, p, np.nan))

    def update(self, scores: Array, is_anomaly: NDArray[np.bool_]) -> None:
        """Absorb a batch: count the scores, push their peaks, refit now and then.

        Before calibration the scores are collected until ``n_init`` are available. Flagged
        scores above the ``q * gross_factor`` quantile are left out.

        Parameters
        ----------
        scores
            Shape (n,).
        is_anomaly
            Shape (n,): the decisions taken with the threshold in force.

        Examples
        --------
        >>> import numpy as np
        >>> spot = SpotThreshold(q=1e-3)
        >>> spot.fit(np.random.default_rng(0).exponential(1.0, 5000))
        >>> u = np.random.default_rng(1).exponential(1.0, 1000)
        >>> spot.update(u, u > spot.threshold_)
        >>> bool(5000 < spot.n_ < 6000)   # decayed count: the window forgets old scores
        True
        """
        if not self.fitted_:
            # calibration on live scores (absurd ones left out)
            s = np.asarray(scores, dtype=float)
            self._calib.append(s[s <= 2.0 * self._z])
            if sum(len(c) for c in self._calib) >= self.n_init:
                self.fit(np.concatenate(self._calib))
                self._calib = []
            return
        # Flagged scores that a GPD tail still explains (below the q/100 quantile) are kept:
        # discarding every flagged score truncates the tail at the threshold, the refit then
        # underestimates it, the threshold falls and more is discarded (a runaway).
        keep = ~is_anomaly
        if is_anomaly.any():
            keep = keep | (scores <= self.quantile(self.q * self.gross_factor))
        normal = scores[keep]
        if normal.size == 0:
            return
        new_peaks = normal[normal > self.t_] - self.t_
        # decayed counts: the ratio N_t / n covers the same window as the peak buffer
        decay = (1.0 - 1.0 / self._window()) ** normal.size
        self.n_ = self.n_ * decay + normal.size
        self.n_peaks_ = self.n_peaks_ * decay + new_peaks.size
        if new_peaks.size == 0:
            return
        self._push(new_peaks)
        self._since_fit += new_peaks.size
        if self._since_fit >= max(self.refit_every, len(self._peaks) // 2):
            self._refit()

    def _push(self, new: Array) -> None:
        if len(self._peaks) < self.max_excess:
            room = self.max_excess - len(self._peaks)
            self._peaks = np.concatenate([self._peaks, new[:room]])
            new = new[room:]
            self._head = len(self._peaks) % self.max_excess
        new = new[-self.max_excess :]
        if new.size:  # ring-buffer write, oldest first (no slot is written twice)
            slots = np.arange(self._head, self._head + new.size) % self.max_excess
            self._peaks[slots] = new
            self._head = int((self._head + new.size) % self.max_excess)

    def health(self) -> dict[str, float]:
        """The fitted tail: GPD shape and scale, peaks held.

        Examples
        --------
        >>> SpotThreshold(q=1e-3).health()
        {'tail_shape': 0.0, 'tail_scale': 1.0, 'tail_peaks': 0.0}
        """
        return {"tail_shape": float(self.gamma_), "tail_scale": float(self.sigma_),
                "tail_peaks": float(len(self._peaks))}

    def to_state(self) -> dict[str, Any]:
        """Plain scalars and arrays (see :meth:`from_state`).

        Examples
        --------
        >>> SpotThreshold(q=1e-3).to_state()["kind"]
        'spot'
        """
        return {
            "kind": "spot", "q": self.q, "level": self.level, "max_excess": self.max_excess,
            "refit_every": self.refit_every, "gross_factor": self.gross_factor,
            "n_init": self.n_init,
            "calib": np.concatenate(self._calib) if self._calib else np.empty(0),
            "t": self.t_, "gamma": self.gamma_,
            "sigma": self.sigma_, "n": self.n_, "n_peaks": self.n_peaks_,
            "peaks": self._peaks.copy(), "head": self._head, "since_fit": self._since_fit,
            "z": self._z, "fitted": self.fitted_,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SpotThreshold:
        """Rebuild from :meth:`to_state` (a defect raises :class:`~streamem.StateError`).

        Examples
        --------
        >>> SpotThreshold.from_state(SpotThreshold(q=1e-4).to_state()).threshold_
        4.0
        """
        r = StateReader.of(state, "SpotThreshold", kind="spot")
        with r.guard():
            s = cls(r["q"], level=r["level"], max_excess=r["max_excess"],
                    refit_every=r["refit_every"], gross_factor=r.get("gross_factor", 0.01),
                    n_init=r.get("n_init", 2000))
            calib = r.array("calib", default=np.empty(0))
            s._calib = [calib] if calib.size else []
            s.t_, s.gamma_, s.sigma_ = r["t"], r["gamma"], r["sigma"]
            s.n_, s.n_peaks_ = r["n"], r["n_peaks"]
            s._peaks = r.array("peaks")
            s._head, s._since_fit = r.integer("head"), r.integer("since_fit")
            s._z, s.fitted_ = r.number("z"), r.flag("fitted")
            return s
