"""Sequence-aware detection: :class:`HMMDetector` scores each event by the predictive surprise
of an :class:`~streamem.model.hmm.OnlineHMM` and explains it by its least expected transition.

An event is anomalous when it is unlikely *given the events before it*: a reading normal by
itself but arriving in the wrong order (a cycle that skips a stage) has a small predictive
density ``p(x_t | x_1..t-1) = sum_k P(s_t = k | x_1..t-1) N(x_t; mu_k, Sigma_k)`` because the
chain gives its state little predictive weight. The density is calibrated to a tail
probability by the chi-square mixture bound of the i.i.d. detector, with the predictive state
distribution as the mixture weights, and the surprise ``-log10(tail probability)`` goes to the
same :class:`~streamem.scoring.threshold.Threshold` protocol.

Entry point for ``Detector(temporal="hmm")`` and ``model.temporal: hmm``:
:func:`make_temporal` builds the detector for a kind; :meth:`HMMDetector.process` has the
contract of :meth:`streamem.Detector.process` (plus ``timestamps``) and returns a
:class:`TemporalResult`, a :class:`~streamem.scoring.result.DetectionResult` with the
transition of every event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import ConfigError, InvalidInputError
from streamem.model._conditional import phase_features, row_mixture_log_tail
from streamem.model._hmm_stats import Emission, emission_log_prob
from streamem.model._missing import estimate_log_gaussian_prob_missing
from streamem.model._numeric import LOG_2PI
from streamem.model._versioned import StateReader
from streamem.model.hmm import HMMPass, OnlineHMM
from streamem.model.seasonality import period_seconds
from streamem.scoring.params import resolve_threshold
from streamem.scoring.result import DetectionResult
from streamem.scoring.severity import severity
from streamem.scoring.threshold import Threshold, load_threshold

__all__ = ["KINDS", "HMMDetector", "TemporalResult", "explain_transition", "make_temporal",
           "predictive_log_tail"]

Array = NDArray[np.float64]

#: The temporal models :func:`make_temporal` knows.
KINDS = ("hmm",)


@dataclass(frozen=True)
class TemporalResult(DetectionResult):
    """:class:`DetectionResult` plus the most probable transition into each event.

    Attributes
    ----------
    source, target
        Hidden states before and at the event, shape (n_samples,); -1 while warming up.
    transition_probability
        ``A[source, target]`` in force when the event was scored, shape (n_samples,).
    """

    source: NDArray[np.int64]
    target: NDArray[np.int64]
    transition_probability: Array


def explain_transition(source: int, target: int, probability: float) -> str:
    """The explanation of an event by its transition.

    Examples
    --------
    >>> explain_transition(2, 0, 0.0031)
    'state 2 -> state 0, probability 0.003'
    """
    return f"state {source} -> state {target}, probability {probability:.3g}"


def predictive_log_tail(hmm: OnlineHMM, Z: Array, p: HMMPass, n_context: int = 0
                        ) -> tuple[Array, Array]:
    """Predictive log density of the readings and the chi-square mixture bound on its tail.

    The last ``n_context`` columns of ``Z`` are context (phase features): observed, filtered
    on, but not scored. With ``w_tk ∝ P(s_t = k | x_1..t-1) N(c_t; mu_c,k, S_cc,k)`` the
    score is ``log f_t(x_t) = log p(x_t, c_t | past) - log p(c_t | past)`` and
    ``tau_t <= sum_k w_tk S_{chi2_d}(2 (log w_tk + log|U_k,x|c| - d/2 log 2 pi - log f_t))``
    over the observed readings, with ``|U_x|c| = |U| / |U_cc|`` (Schur complement).

    Parameters
    ----------
    hmm
        The fitted model the pass was run with.
    Z
        The batch, readings then context, shape (n_samples, n_features).
    p
        Its forward pass.
    n_context
        Trailing context columns.

    Returns
    -------
    log_f
        Shape (n_samples,); NaN for events without a reading.
    log_tail
        Shape (n_samples,), in ``(-inf, 0]``; NaN for events without a reading.
    """
    dx = Z.shape[1] - n_context
    nan = np.isnan(Z)
    df = (~nan[:, :dx]).sum(axis=1).astype(float)
    em = hmm._em
    lnc = np.broadcast_to(em.log_det - 0.5 * Z.shape[1] * LOG_2PI, p.log_b.shape).copy()
    partial = nan.any(axis=1) & p.observed
    if partial.any():
        _, lnc[partial] = estimate_log_gaussian_prob_missing(
            Z[partial], em.means, em.covariances, "full", em.reg_covar)
    logw = np.log(np.maximum(p.pred, 1e-300))
    log_f = p.log_pred
    if n_context:
        ctx = Emission(em.means[:, dx:], em.covariances[:, dx:, dx:], em.reg_covar)
        log_c = emission_log_prob(Z[:, dx:], ctx)
        logw = logw + log_c
        norm = np.logaddexp.reduce(logw, axis=1)
        logw -= norm[:, None]
        log_f = log_f - norm
        lnc -= ctx.log_det - 0.5 * n_context * LOG_2PI
    scored = df > 0
    full = bool(df.min() == dx)
    out = row_mixture_log_tail(logw, lnc, np.where(scored, log_f, 0.0),
                               float(dx) if full else np.maximum(df, 1.0))
    return np.where(scored, log_f, np.nan), np.where(scored, out, np.nan)


class HMMDetector:
    """Streaming anomaly detector on an online HMM: predictive surprise, SPOT threshold.

    Parameters
    ----------
    n_components
        Hidden states.
    half_life
        Events, ``math.inf`` or a duration in event time (``"7d"``; then pass timestamps).
    alert_rate
        Target fraction of normal events flagged (default 1e-3 via the threshold).
    threshold
        A :class:`~streamem.scoring.threshold.Threshold` (default SPOT at ``alert_rate``).
    n_warmup
        Events buffered before the HMM is fitted (scored NaN, not flagged).
    reg_covar
        Added to covariance diagonals.
    random_state
        Seed of the start values.
    seasonality
        Periods (``["1d", "7d"]`` or seconds): the phase features of each event join the
        emissions as context, so states can be phase-specific; the readings are scored
        given the phase (``process`` then needs timestamps). The HMM conditions on every
        period from its warm-up on, so let the warm-up span the longest one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> cycle = np.repeat(np.tile([0.0, 5.0, 10.0], 400), 10)   # stages 0 -> 5 -> 10 -> 0
    >>> X = (cycle + rng.normal(0, 0.5, cycle.size))[:, None]
    >>> X[9005:9010] = 10.0 + rng.normal(0, 0.5, (5, 1))         # 0 -> 10: stage 5 skipped
    >>> det = HMMDetector(n_components=3, alert_rate=1e-3, random_state=0)
    >>> res = [det.process(X[i:i + 1000]) for i in range(0, 12000, 1000)]
    >>> bool(res[9].is_anomaly[5]), det.explain(res[9], 5)
    (True, 'state 1 -> state 2, probability 0.000118')
    """

    def __init__(
        self,
        n_components: int = 4,
        half_life: float | str = 50_000.0,
        *,
        alert_rate: float | None = None,
        threshold: Threshold | None = None,
        n_warmup: int = 1000,
        reg_covar: float = 1e-6,
        random_state: int | None = None,
        seasonality: Sequence[float | str] = (),
    ) -> None:
        self.threshold, self.alert_rate = resolve_threshold(threshold, alert_rate)
        self.hmm = OnlineHMM(n_components, half_life, n_warmup=n_warmup, reg_covar=reg_covar,
                             random_state=random_state)
        self.seasonality = list(seasonality)
        self._periods = np.array([period_seconds(q) for q in self.seasonality])

    def _with_context(self, A: Array, timestamps: ArrayLike | None) -> Array:
        if not self.seasonality:
            return A
        if timestamps is None:
            raise InvalidInputError(f"seasonality={self.seasonality!r} needs timestamps "
                                    "(seconds) with every batch")
        ts = np.asarray(timestamps, dtype=float)
        if ts.shape != (A.shape[0],) or not np.isfinite(ts).all():
            raise InvalidInputError(f"timestamps have shape {ts.shape} for {A.shape[0]} events "
                                    "or are not finite; pass one time in seconds per event")
        return np.hstack([A, phase_features(ts, self._periods)])

    def process(self, X: ArrayLike, timestamps: ArrayLike | None = None, *,
                learn: ArrayLike | None = None, times: ArrayLike | None = None
                ) -> TemporalResult:
        """Score, decide and learn one batch in arrival order.

        Parameters
        ----------
        X
            Shape (n_samples, n_features), NaN for missing.
        timestamps
            Seconds, shape (n_samples,); required for a half-life in event time.
        learn
            Shape (n_samples,), bool: events that may be learned (None: all), as in
            :meth:`streamem.Detector.process`.
        times
            The same as ``timestamps`` (the keyword of :meth:`streamem.Detector.process`).

        Returns
        -------
        TemporalResult
        """
        A = np.asarray(X, dtype=float)
        if A.ndim != 2:
            raise InvalidInputError(f"X has shape {A.shape}; pass shape (n_samples, n_features)")
        n = A.shape[0]
        timestamps = times if timestamps is None else timestamps
        allow = np.ones(n, dtype=bool) if learn is None else np.asarray(learn, dtype=bool)
        if allow.shape != (n,):
            raise InvalidInputError(f"learn has shape {allow.shape} for {n} events; give one "
                                    "bool per row of X")
        A = np.where(np.isinf(A), np.nan, A)  # +-inf is read as missing (as by the HMM)
        Z = self._with_context(A, timestamps)
        if not self.hmm.is_fitted:
            self.hmm.partial_fit(Z, timestamps)
            return _warming(n)
        p = self.hmm.forward(Z)
        trans = self.hmm.transmat_
        log_f, log_tail = predictive_log_tail(self.hmm, Z, p, Z.shape[1] - A.shape[1])
        tail = np.exp(log_tail)
        surprise = -log_tail / math.log(10.0)
        thr = self.threshold.threshold_
        flagged = np.nan_to_num(surprise, nan=-np.inf) > thr
        self.hmm.update(p, Z, learn=~flagged & allow, timestamps=timestamps)
        scored = np.isfinite(log_f)
        self.threshold.update(surprise[scored], flagged[scored])
        src, dst, prob = p.transitions(trans, np.flatnonzero(flagged))
        scores = -log_f
        return TemporalResult(
            scores, tail, surprise, np.full(n, 10.0 ** -thr), severity(surprise, thr),
            flagged, scored & ~flagged & allow, np.zeros(n, dtype=bool), src, dst, prob)

    def explain(self, result: TemporalResult, i: int) -> str:
        """The transition of event ``i`` of ``result`` in words.

        Examples
        --------
        >>> HMMDetector().explain(_warming(1), 0)
        'warming up: no transition yet'
        """
        if result.source[i] < 0:
            return "warming up: no transition yet"
        return explain_transition(int(result.source[i]), int(result.target[i]),
                                  float(result.transition_probability[i]))

    def to_state(self) -> dict[str, Any]:
        """Versioned plain data: the HMM's state and the threshold's."""
        return {"version": 1, "kind": "hmm_detector", "hmm": self.hmm.to_state(),
                "threshold": self.threshold.to_state(), "seasonality": list(self.seasonality)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> HMMDetector:
        """Rebuild a detector from :meth:`to_state`; it continues exactly.

        Raises
        ------
        StateError
            A malformed snapshot.
        """
        r = StateReader.of(state, "HMMDetector", version=1, kind="hmm_detector")
        det = cls.__new__(cls)
        det.hmm = OnlineHMM.from_state(r.sub("hmm"))
        det.threshold = load_threshold(r.sub("threshold"))
        det.alert_rate = det.threshold.q
        with r.guard():
            det.seasonality = list(r.get("seasonality", []))
            det._periods = np.array([period_seconds(q) for q in det.seasonality])
        return det


def _warming(n: int) -> TemporalResult:
    nan = np.full(n, np.nan)
    no = np.zeros(n, dtype=bool)
    minus = np.full(n, -1, dtype=np.int64)
    return TemporalResult(nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), no, ~no,
                          ~no, minus, minus.copy(), nan.copy())


def make_temporal(kind: str, **params: Any) -> HMMDetector:
    """The temporal detector of ``kind`` (``Detector(temporal=...)``, ``model.temporal``).

    Raises
    ------
    ConfigError
        An unknown kind.

    Examples
    --------
    >>> type(make_temporal("hmm", n_components=3)).__name__
    'HMMDetector'
    >>> make_temporal("lstm")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: model.temporal: 'lstm' is not one of ('hmm',); ...
    """
    if kind not in KINDS:
        raise ConfigError("model.temporal", f"{kind!r} is not one of {KINDS}; use 'hmm' or "
                          "leave it out for the i.i.d. model")
    return HMMDetector(**params)
