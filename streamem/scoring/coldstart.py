"""``ColdStart``: the detector before its mixture is fitted, scoring from the 32nd event on.

Stages of a :class:`~streamem.Detector` (every one scores before it learns):

1. Events 1-31 are buffered, not scored: ``NaN`` scores, ``warming_up``, never flagged. The
   prior predictive would be finite, but it lives in robust-scaled space, and no scale can
   be estimated honestly from a handful of events (a MAD of five readings is noise).
2. From the 32nd event until ``warmup`` normal events are buffered: a single shrunk Gaussian,
   the Normal-Inverse-Wishart posterior predictive (a multivariate Student-t, see
   :mod:`streamem.model._student`) of the events learned so far, in the space of a robust
   scaler fitted on them. The predictive is refitted every ``refresh_every`` events (from
   running sums, for diagonal covariances), the scaler whenever the events learned have
   doubled since its last fit (31, 62, 124, ...). Its tail
   probability is exact under the model (``delta^2 / d ~ F(d, n + 3)``): the threshold is
   the target ``alert_rate`` itself, ``surprise > -log10(alert_rate)``, with nothing fitted.
   It widens honestly while ``n`` is small. With ``smooth``, the trailing mean of the
   surprises is compared, as later. Gross outliers are not learned: events whose tail
   probability is below ``alert_rate * GROSS`` (a hundredth of the threshold's). Events that
   are flagged but not gross *are* learned: a single Gaussian fitted to the first events
   cannot tell a new part of a normal cycle from a mild fault (measured on SKAB's
   training rows, known to be normal: 5.4 % flagged at ``alert_rate`` 0.1 %), and a warm-up
   that drops them starves the mixture of those parts (SKAB F1 0.84 -> 0.81). The SPOT
   threshold keeps such scores in its tail for the same reason.
3. At ``warmup`` buffered events the mixture takes over (see :class:`~streamem.Detector`).

With drift tolerance (``detrend_half_life``), the slow features are classified and their
baselines fitted on the buffer at every refit, and the provisional model sees their
residuals, as the mixture will.

``blind=True`` restores a blind warm-up: the first ``warmup`` events are a trusted normal
reference, all learned, none scored.

If more than ``regime_fraction`` of the last ``min(regime_patience, warmup // 10)`` events of
stage 2 are gross, the data have moved for good (a new operating point during the warm-up,
e.g. the busy half of a daily cycle that the first events did not show): the gross events
are learned as well, as the mixture's regime logic would do later. The window is a tenth of
the warm-up (at least ``MIN_EVENTS``) because a provisional model fitted to a few hundred
events cannot tell a sustained new operating point from a fault, and a warm-up that never
learns it hands the mixture a buffer without it: that mixture then flags the operating point
for good (measured on NAB's daily-cycle series: 45 % of all events flagged). Scattered
anomalies, even at a rate of 40 %, do not fill half of a window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._numeric import LN10
from streamem.model._student import StudentT
from streamem.model._versioned import StateReader
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.result import DetectionResult, concat_results, warming_result
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.severity import severity
from streamem.scoring.structure import full_feasible

__all__ = ["GROSS", "MIN_EVENTS", "WINDOW_SHARE", "ColdStart"]

Array = NDArray[np.float64]
#: The first event scored (1-based): the provisional model needs ``MIN_EVENTS - 1`` events.
MIN_EVENTS = 32
#: Flagged events with a tail probability below ``GROSS * alert_rate`` are not learned.
GROSS = 0.01
#: The warm-up's regime window is ``warmup // WINDOW_SHARE`` events (module doc).
WINDOW_SHARE = 10


class ColdStart:
    """Buffer, provisional scaler and Student-t predictive of the warm-up (module doc).

    Parameters
    ----------
    warmup
        Normal events to buffer before the mixture is fitted.
    alert_rate
        Target fraction of normal events flagged.
    covariance_type
        ``"full"`` or ``"diag"`` for the Student-t; ``"auto"``: full once the events
        buffered can support it (:func:`~streamem.scoring.structure.full_feasible`).
    refresh_every
        Refit the scaler and the predictive after this many events.
    regime_patience, regime_fraction
        The detector's; the window used is ``min(regime_patience, warmup // 10)`` (at least
        ``MIN_EVENTS``; see the module doc).
    detrend
        ``(detrend_half_life, detrend_min_autocorr)`` of the detector, or None.
    blind
        Score nothing; learn every event (see the module doc).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> cs = ColdStart(500, 1e-4, "full")
    >>> X = rng.normal(size=(300, 2)); X[199] = [25.0, 0.0]   # 25 sigma off at event 200
    >>> res = cs.process(X)
    >>> int(np.isnan(res.scores).sum()), bool(res.warming_up.all())
    (31, True)
    >>> np.flatnonzero(res.is_anomaly).tolist(), res.learned[199]
    ([199], np.False_)
    """

    def __init__(
        self,
        warmup: int,
        alert_rate: float,
        covariance_type: str,
        *,
        refresh_every: int = 32,
        regime_patience: int = 2000,
        regime_fraction: float = 0.5,
        detrend: tuple[float | str, float] | None = None,
        blind: bool = False,
    ) -> None:
        self.warmup = warmup
        self.alert_rate = alert_rate
        self.covariance_type = covariance_type
        self.refresh_every = max(int(refresh_every), 1)
        self.regime_patience = min(regime_patience, max(MIN_EVENTS, warmup // WINDOW_SHARE))
        self.regime_fraction = regime_fraction
        self.threshold_ = -math.log10(alert_rate)
        self._buffer: list[Array] = []
        self.n_buffered_ = 0
        self.n_events_ = 0
        self.n_anomalies_ = 0
        self._n_scaler = 0
        self._since = 0
        self._ref = np.zeros(0)
        self._moments = (np.zeros(0), np.zeros(0), np.zeros(0))  # count, sum, sum sq (ref)
        self._recent = np.zeros(0, dtype=bool)
        self._rejected = np.empty((0, 0))
        self.scaler_ = RobustScaler()
        self.model_: StudentT | None = None
        self.detrend = detrend
        self.blind = blind
        self.baseline_: SlowBaseline | None = None

    @property
    def done(self) -> bool:
        """True once ``warmup`` events are buffered (the mixture can be fitted).

        Examples
        --------
        >>> ColdStart(50, 1e-3, "full").done
        False
        """
        return self.n_buffered_ >= self.warmup

    def buffer(self) -> Array:
        """The learned (normal) events, oldest first.

        Returns
        -------
        ndarray of shape (n_buffered_, n_features)

        Examples
        --------
        >>> import numpy as np
        >>> cs = ColdStart(50, 1e-3, "full"); _ = cs.process(np.zeros((3, 2)))
        >>> cs.buffer().shape
        (3, 2)
        """
        if len(self._buffer) > 1:
            self._buffer = [np.vstack(self._buffer)]
        return self._buffer[0] if self._buffer else np.empty((0, 0))

    def _learn(self, rows: Array) -> None:
        if not len(rows):
            return
        self._buffer.append(rows)
        self.n_buffered_ += len(rows)
        if not self._ref.size:  # running sums about the first row (no cancellation)
            self._ref = np.nan_to_num(rows[0])
            d = rows.shape[1]
            self._moments = (np.zeros(d), np.zeros(d), np.zeros(d))
        dev = rows - self._ref
        cnt, s1, s2 = self._moments
        nan = np.isnan(dev)
        if nan.any():
            cnt += (~nan).sum(axis=0)
            dev[nan] = 0.0
        else:
            cnt += len(rows)
        s1 += dev.sum(axis=0)
        s2 += np.einsum("ij,ij->j", dev, dev)

    def _refit(self) -> None:
        n, d = self.n_buffered_, len(self._ref)
        ct = self.covariance_type
        if ct == "auto":
            ct = "full" if full_feasible(n, d) else "diag"
        B: Array | None = None
        if self.detrend is not None:  # the residuals depend on the baseline: refit both
            hl, ac = self.detrend
            self.baseline_ = SlowBaseline("auto" if hl == "auto" else float(hl), ac)
            B = self.baseline_.fit_transform(self.buffer())
        if n >= 2 * self._n_scaler:
            self.scaler_ = RobustScaler().fit(self.buffer() if B is None else B)
            self._n_scaler = n
        if ct == "diag" and B is None:  # from the running sums: O(d), not O(n d)
            cnt, s1, s2 = self._moments
            safe = np.maximum(cnt, 1.0)
            c, s = self.scaler_.center_, self.scaler_.scale_
            mean = np.where(cnt > 0, self._ref + s1 / safe, c)
            scatter = np.maximum(s2 - s1 * s1 / safe, 0.0)
            self.model_ = StudentT.from_moments(cnt.copy(), (mean - c) / s, scatter / (s * s),
                                                "diag")
        else:
            self.model_ = StudentT(self.scaler_.transform(self.buffer() if B is None else B), ct)
        self._since = 0

    def process(
        self, A: Array, smooth: Callable[[Array], Array] | None = None,
        allow: NDArray[np.bool_] | None = None,
    ) -> DetectionResult:
        """Score and learn rows until ``warmup`` events are buffered.

        Parameters
        ----------
        A
            Validated rows, shape (n_samples, n_features); NaN = missing.
        smooth
            Maps the surprises of consecutive events to the values compared with the
            threshold (the detector's trailing mean), or None.
        allow
            Shape (n_samples,): rows that may be learned (None: all); the others are scored
            and never buffered.

        Returns
        -------
        DetectionResult
            For the rows used, a prefix of ``A`` (all of it unless :attr:`done` became
            true on the way); every event has ``warming_up`` set.

        Examples
        --------
        >>> import numpy as np
        >>> cs = ColdStart(100, 1e-3, "diag")
        >>> len(cs.process(np.random.default_rng(0).normal(size=(150, 2)))), cs.done
        (100, True)
        """
        parts: list[DetectionResult] = []
        i, n = 0, len(A)
        ok = np.ones(n, dtype=bool) if allow is None else allow
        while i < n and not self.done:
            if self.blind:
                take = self._upto(ok[i:], self.warmup - self.n_buffered_)
                self._learn(A[i : i + take][ok[i : i + take]])
                parts.append(warming_result(take, ok[i : i + take]))
            elif self.model_ is None:
                take = self._upto(ok[i:], min(MIN_EVENTS - 1, self.warmup) - self.n_buffered_)
                self._learn(A[i : i + take][ok[i : i + take]])
                parts.append(warming_result(take, ok[i : i + take]))
                if self.n_buffered_ >= MIN_EVENTS - 1:
                    self._refit()
            else:
                take = min(n - i, self.refresh_every - self._since,
                           self._upto(ok[i:], self.warmup - self.n_buffered_))
                parts.append(self._score(A[i : i + take], smooth, ok[i : i + take]))
                self._since += take
                if self._since >= self.refresh_every and not self.done:
                    self._refit()
            self.n_events_ += take
            i += take
        out = parts[0]
        for p in parts[1:]:
            out = concat_results(out, p)
        return out

    @staticmethod
    def _upto(ok: NDArray[np.bool_], need: int) -> int:
        """How many of the next rows to take so that at most ``need`` of them are learnable."""
        if need <= 0:
            return 0
        learnable = np.flatnonzero(ok)
        return len(ok) if len(learnable) < need else int(learnable[need - 1]) + 1

    def _score(self, chunk: Array, smooth: Callable[[Array], Array] | None,
               ok: NDArray[np.bool_]) -> DetectionResult:
        assert self.model_ is not None
        n = len(chunk)
        seen = chunk if self.baseline_ is None else self.baseline_.transform(chunk)
        Z = self.scaler_.transform(seen)
        log_dens, log_tail = self.model_.estimate(Z)
        raw = -log_tail / LN10
        u = smooth(raw) if smooth is not None else raw
        nan = np.isnan(chunk)
        log_scale = (~nan) @ self.scaler_.log_scale() if nan.any() else \
            np.full(n, self.scaler_.log_scale_sum())
        flagged = u > self.threshold_
        gross = raw > self.threshold_ - math.log10(GROSS)
        self.n_anomalies_ += int(flagged.sum())
        self._learn(chunk[~gross & ok])
        self._track(chunk[ok], gross[ok])
        return DetectionResult(
            scores=log_scale - log_dens,
            tail_probability=np.power(10.0, -u),
            surprise=u,
            threshold=np.full(n, self.alert_rate),
            severity=severity(u, self.threshold_),
            is_anomaly=flagged,
            learned=~gross & ok,
            warming_up=np.ones(n, dtype=bool),
        )

    def _track(self, chunk: Array, flagged: NDArray[np.bool_]) -> None:
        """Keep the last ``regime_patience`` outcomes and flagged rows; accept a new regime."""
        p = self.regime_patience
        self._recent = np.concatenate([self._recent, flagged])[-p:]
        rej = chunk[flagged]
        self._rejected = np.vstack([self._rejected, rej])[-p:] if len(self._rejected) else rej[-p:]
        if len(self._recent) >= p and self._recent.mean() > self.regime_fraction:
            self._learn(self._rejected)
            self._recent = np.zeros(0, dtype=bool)
            self._rejected = np.empty((0, 0))

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars (the predictive by its moments).

        Examples
        --------
        >>> sorted(ColdStart(50, 1e-3, "full").to_state())[:3]
        ['baseline', 'buffer', 'covariance_type']
        """
        m = self.model_
        return {
            "buffer": self.buffer().copy(), "covariance_type": self.covariance_type,
            "n_anomalies": self.n_anomalies_, "n_events": self.n_events_,
            "n_scaler": self._n_scaler, "since": self._since, "recent": self._recent.copy(),
            "rejected": self._rejected.copy(),
            "baseline": self.baseline_.to_state() if self.baseline_ is not None else None,
            "scaler": self.scaler_.to_state(), "ref": self._ref.copy(),
            "moments": [v.copy() for v in self._moments],
            "model": None if m is None else {
                "n": m.n, "xbar": m.xbar.copy(), "scatter": m.scatter.copy(),
                "covariance_type": m.covariance_type},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`to_state` output (the constructor's arguments must match).

        Parameters
        ----------
        state
            The snapshot.

        Examples
        --------
        >>> import numpy as np
        >>> a = ColdStart(100, 1e-3, "full"); _ = a.process(np.arange(80.0).reshape(40, 2))
        >>> b = ColdStart(100, 1e-3, "full"); b.load_state(a.to_state())
        >>> X = np.ones((3, 2))
        >>> bool(np.array_equal(a.process(X).scores, b.process(X).scores))
        True
        """
        r = StateReader.of(state, "ColdStart")
        with r.guard():
            buf = r.array("buffer")
            self._buffer = [buf] if buf.size else []
            self.n_buffered_ = len(buf) if buf.size else 0
            self.covariance_type = r.text("covariance_type")
            self.n_anomalies_ = r.integer("n_anomalies")
            self.n_events_ = r.integer("n_events")
            self._recent = r.array("recent", bool)
            self._rejected = r.array("rejected")
            self._since = r.integer("since")
            has_baseline = r.get("baseline") is not None
            self.baseline_ = SlowBaseline.from_state(r.sub("baseline")) if has_baseline else None
            if "scaler" not in r:  # an older snapshot's blind warm-up buffer: replay it
                rows, self._buffer, self.n_buffered_ = buf, [], 0
                if buf.size:
                    self._learn(rows)
                    if not self.blind and self.n_buffered_ >= MIN_EVENTS - 1:
                        self._refit()
                return
            self.scaler_ = RobustScaler.from_state(r.sub("scaler"))
            self._n_scaler = r.integer("n_scaler")
            self._ref = r.array("ref")
            cnt, s1, s2 = (np.asarray(v, dtype=float) for v in r["moments"])
            self._moments = (cnt, s1, s2)
            if r["model"] is None:
                self.model_ = None
                return
            m = r.sub("model")
            n_m = m.array("n")
            with m.guard():
                self.model_ = StudentT.from_moments(
                    n_m if n_m.ndim else float(n_m), m.array("xbar"), m.array("scatter"),
                    m.text("covariance_type"))
