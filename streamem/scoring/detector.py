"""``Detector``: robust scaling, an online Gaussian mixture, a calibrated tail probability and
an injected threshold, composed into one streaming anomaly detector.

The parts live in their own modules: the warm-up (:mod:`~streamem.scoring.warmup`,
:mod:`~streamem.scoring.coldstart`), smoothing (:mod:`~streamem.scoring.smoothing`),
deferred learning (:mod:`~streamem.scoring.learning`), regime acceptance
(:mod:`~streamem.scoring.acceptance`), thresholds (:mod:`~streamem.scoring.threshold`), the
snapshot (:mod:`~streamem.scoring.detector_state`) and the read-only reports
(:mod:`~streamem.scoring.report`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._numeric import has_nan
from streamem.model._validation import check_array
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.detector_state import dump_state, load_state
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.learning import Pending, PendingEvents, learn_pending, learnable
from streamem.scoring.params import check_params, resolve_threshold
from streamem.scoring.regime import RegimeTracker
from streamem.scoring.report import DetectorReports
from streamem.scoring.result import DetectionResult, concat_results, warming_result
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.severity import severity
from streamem.scoring.smoothing import SurpriseSmoother
from streamem.scoring.threshold import Threshold
from streamem.scoring.warmup import hand_over, new_cold_start, new_model

__all__ = ["DetectionResult", "Detector"]

Array = NDArray[np.float64]
_LN10 = math.log(10.0)


class Detector(DetectorReports):
    """Streaming anomaly detector with sensible defaults for any numeric data.

    Each call to :meth:`process` scores the batch with the model *as it was*, flags events
    whose tail probability is below the threshold, then learns from the normal ones
    (``protect_model``).

    The model grows with the data, and every event from the 32nd on is scored:

    * events 1-31: buffered, not scored (NaN scores, ``warming_up``): no feature scale can
      be estimated from fewer;
    * events 32 to ``warmup``: a single shrunk Gaussian, the Normal-Inverse-Wishart posterior
      predictive (multivariate Student-t) of the normal events so far, refitted every
      ``learn_every`` events (``warming_up`` is set). Its tail probability is exact under the
      model (``delta^2 / d ~ F(d, n + 3)``), so the threshold is ``alert_rate`` itself; it
      is conservative while ``n`` is small. Gross outliers (tail probability below
      ``alert_rate / 100``) are not learned, milder alarms are (the provisional model is too
      simple to judge them). See :mod:`streamem.scoring.coldstart`;
    * from ``warmup`` normal events on: the mixture (batch EM on the buffer, K by BIC), then
      online EM. Its tail probability is the chi-square mixture bound; the threshold is
      ``alert_rate`` again until 2000 *live* (out-of-sample) surprises are collected, then
      the SPOT (generalised Pareto) fit to their tail, refitted as scores arrive. Nothing is
      ever calibrated on the in-sample scores of the data a model was fitted to.

    When anomalies persist the detector accepts a new regime instead of alarming forever:
    early (after ``regime_min_events``) when nearly every recent event is flagged and the
    flagged events form a coherent, stationary cluster, at the latest after
    ``regime_patience`` events. It then *adds* components fitted to the new regime to the
    mixture (the old regime stays known, so a recurring regime is not alarmed again) and
    keeps its calibrated threshold.

    Parameters
    ----------
    n_components
        Mixture size, or ``"auto"`` (BIC on the warm-up data).
    covariance_type
        ``"full"``, ``"diag"`` or ``"auto"`` (default): the structure with the lower BIC on
        the warm-up data, where a full covariance is a candidate only if the events can
        support one (``d (d + 3) / 2 + 1 <= warmup``); when they cannot, a warning names the
        structure chosen. See :mod:`streamem.scoring.structure`.
    half_life
        Forgetting, in events.
    threshold
        The decision rule on surprises (a :class:`~streamem.scoring.threshold.Threshold`;
        the detector takes it over). Default: ``SpotThreshold(q=alert_rate)``, which keeps
        ``alert_rate`` until 2000 live surprises are collected, then fits their tail.
    alert_rate
        Target fraction of normal events flagged; the one sensitivity knob (default 1e-3).
        With ``threshold``, leave it out (it is the threshold's ``q``).
    warmup
        Normal events learned before the mixture is fitted (scored by the provisional
        Student-t model meanwhile).
    max_components, reg_covar
        See :class:`~streamem.OnlineGMM`.
    protect_model
        Do not learn flagged events.
    regime_patience
        Recent events examined for a regime change (the slow path).
    regime_fraction
        Fraction of flagged events among the last ``regime_patience`` that declares one,
        whatever the flagged events look like.
    regime_min_events
        The early path: a new regime is declared once at least 90 % of the last
        ``regime_min_events`` events were flagged *and* they form a stationary new cluster
        (see :mod:`streamem.scoring.acceptance`). Used only when smaller than
        ``regime_patience``. ``None`` (default) turns it off: a *sustained* coherent fault (a
        stuck valve) would otherwise be accepted as normal and remembered, so the same fault
        would not alarm when it recurs. Turn it on (400 is a good start) for streams whose
        regime changes are frequent and legitimate.
    feature_names
        Names used in explanations.
    drift_window
        Events per drift-test window.
    learn_every
        With small batches, learning (and the threshold and drift updates) is deferred until
        this many events have been scored, then done as one vectorised step. Scoring always
        uses the model as it was; the deferral is deterministic and part of the state.
    detrend_half_life
        Drift tolerance for slowly varying features. At warm-up, every feature whose lag-1
        autocorrelation is at least ``detrend_min_autocorr`` (a smooth trajectory: a
        temperature, a level) is classified as slow; from then on the model sees a slow
        feature as its residual from an exponentially weighted moving baseline with this
        half-life (events), updated with **every** event, flagged or not. Slow drifts of such
        a feature therefore never raise alarms, while abrupt jumps still do (for a few
        half-lives, until the baseline has caught up) and fast features keep their levels.
        ``None`` (default) turns it off. Streams without slow features are not affected. It
        is off by default because it changes what an alarm means for every slow feature: a
        fault that holds a slow reading at a wrong level alarms only until the baseline has
        caught up (tens of events at half-life 10), and on streams whose slow features carry
        the anomalies it can raise false alarms (residuals are noisier than levels). Turn it
        on (10 is a good start) where slow drift of some sensors causes most false alarms.
        ``"auto"`` fits one half-life per slow feature on the warm-up data: the one whose
        EWMA forecasts that feature best one step ahead (least squares over a ladder of
        half-lives from 0.5 to 100 events; see :mod:`streamem.scoring.baseline`).
    detrend_min_autocorr
        Lag-1 autocorrelation (warm-up) from which a feature counts as slow.
    smooth_window
        Compare the trailing mean of the last ``smooth_window`` surprises (this event and
        the ones before it, across batches) with the threshold instead of the event's own
        surprise (:mod:`streamem.scoring.smoothing`). Sustained anomalies then stand out
        from isolated noise; the threshold is fitted on the smoothed values, so the flagged
        fraction on normal data stays about ``alert_rate``. A single extreme event is still
        flagged when its surprise exceeds ``smooth_window`` times the threshold. ``1``
        (default) scores every event on its own.
    cold_start
        Score the warm-up (from the 32nd event on) with the provisional model, flag and
        protect as later (default). ``False``: a blind warm-up; the first ``warmup`` events
        are a trusted normal reference, learned without being scored (NaN scores), as for
        a training set known to hold every operating point.
    random_state
        Seed; with the same seed, the same events in the same batches give the same results.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = Detector(warmup=500, alert_rate=1e-3, random_state=0)
    >>> res = det.process(rng.normal(size=(2000, 3)))
    >>> bool(res.warming_up[:500].all()), int(np.isnan(res.scores).sum())   # 31 unscored
    (True, 31)
    >>> res = det.process(np.array([[0.0, 0.0, 0.0], [8.0, -8.0, 8.0]]))
    >>> res.is_anomaly.tolist(), bool(res.severity[1] > 90)
    ([False, True], True)
    >>> det.explain(np.array([0.0, 9.0, 0.0]))[0].name
    'x1'

    The threshold is a composed object:

    >>> from streamem.scoring.threshold import FixedThreshold
    >>> det = Detector(warmup=500, threshold=FixedThreshold(q=1e-2), random_state=0)
    >>> res = det.process(rng.normal(size=(3000, 3)))
    >>> det.alert_rate, bool(0.003 < res.is_anomaly[500:].mean() < 0.03)
    (0.01, True)

    Drift tolerance with a half-life fitted per slow feature (here a random walk):

    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.normal(size=(1500, 2)), np.cumsum(rng.normal(size=1500))])
    >>> det = Detector(warmup=500, detrend_half_life="auto", random_state=0)
    >>> int(det.process(X).is_anomaly.sum())   # the walk leaves the warm-up range: no alarm
    0
    >>> det.baseline_.slow_.tolist(), float(det.baseline_.half_lives_[2])
    ([False, False, True], 0.5)
    """

    def __init__(
        self,
        *,
        n_components: int | Literal["auto"] = "auto",
        covariance_type: Literal["full", "diag", "auto"] = "auto",
        half_life: float = 50_000,
        alert_rate: float | None = None,
        threshold: Threshold | None = None,
        warmup: int = 1000,
        max_components: int = 8,
        reg_covar: float = 1e-6,
        protect_model: bool = True,
        regime_patience: int = 2000,
        regime_fraction: float = 0.5,
        regime_min_events: int | None = None,
        feature_names: list[str] | None = None,
        drift_window: int = 1000,
        learn_every: int = 32,
        detrend_half_life: float | Literal["auto"] | None = None,
        detrend_min_autocorr: float = 0.75,
        smooth_window: int = 1,
        cold_start: bool = True,
        random_state: int | None = None,
    ) -> None:
        threshold, alert_rate = resolve_threshold(threshold, alert_rate)
        #: Constructor arguments but ``threshold`` (its state is saved on its own).
        self.params: dict[str, Any] = check_params({
            "n_components": n_components, "covariance_type": covariance_type,
            "half_life": half_life, "alert_rate": alert_rate, "warmup": warmup,
            "max_components": max_components, "reg_covar": reg_covar,
            "protect_model": protect_model, "regime_patience": regime_patience,
            "regime_fraction": regime_fraction, "regime_min_events": regime_min_events,
            "feature_names": feature_names,
            "drift_window": drift_window, "learn_every": learn_every,
            "detrend_half_life": detrend_half_life,
            "detrend_min_autocorr": detrend_min_autocorr, "smooth_window": smooth_window,
            "cold_start": bool(cold_start), "random_state": random_state,
        })
        self.alert_rate = alert_rate
        self.warmup = warmup
        self.learn_every = learn_every
        self.protect_model = protect_model
        self.regime_patience = regime_patience
        self.regime_fraction = regime_fraction
        self.regime_min_events = None if regime_min_events is None else int(regime_min_events)
        self.feature_names = feature_names
        self.smooth_window = int(smooth_window)
        self.baseline_: SlowBaseline | None = (
            SlowBaseline(detrend_half_life, detrend_min_autocorr)
            if detrend_half_life is not None else None
        )
        self.smoother_ = SurpriseSmoother(self.smooth_window)
        self.pending_ = PendingEvents(learn_every)
        self.model_ = new_model(self.params, random_state, warmup)
        self.scaler_ = RobustScaler()
        self.threshold_model_: Threshold = threshold
        self.drift_ = DriftMonitor(window=drift_window)
        self.cold_ = new_cold_start(self.params)
        self.regime_: RegimeTracker | None = None
        self.n_features_in_: int | None = None
        self.n_events_ = 0
        self.n_anomalies_ = 0
        self.n_learned_ = 0
        self.regime_changes_ = 0
        self.ready_ = False

    # ------------------------------------------------------------------ processing
    def process(self, X: ArrayLike, learn: ArrayLike | None = None) -> DetectionResult:
        """Score a batch with the current model, flag, then learn from the normal events.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN marks a missing reading.
        learn
            Shape (n_samples,), bool: events that may be learned (None: all). An event
            outside it is scored and flagged as usual but never learned (operator rules'
            ``skip_learning``).

        Returns
        -------
        DetectionResult

        Raises
        ------
        InvalidInputError
            A row with ±inf, with every feature missing, or the wrong width; nothing of the
            batch is used then.

        Examples
        --------
        >>> import numpy as np
        >>> det = Detector(warmup=100, random_state=0)
        >>> res = det.process(np.random.default_rng(0).normal(size=(150, 2)))
        >>> int(res.warming_up.sum()), bool(np.isfinite(res.scores[31:]).all())
        (100, True)
        """
        A = check_array(X, self.n_features_in_)
        n = A.shape[0]
        allow = None if learn is None else np.asarray(learn, dtype=bool).reshape(-1)
        if allow is not None and len(allow) != n:
            raise InvalidInputError(f"learn has {len(allow)} entries for {n} events; give one "
                                    "bool per row of X")
        if self.n_features_in_ is None and n:
            self.n_features_in_ = A.shape[1]
        if n == 0:
            return warming_result(0)  # empty arrays; nothing changes
        if self.ready_:
            return self._score_and_learn(A, allow)
        cold = self.cold_
        warm = cold.process(A, self.smoother_ if self.smoother_.active else None, allow)
        take = len(warm)
        self.n_events_ += take
        self.n_anomalies_ += int(np.count_nonzero(warm.is_anomaly))
        self.n_learned_ += int(np.count_nonzero(warm.learned))
        if not cold.done:
            return warm
        self.model_, self.regime_ = hand_over(
            cold.buffer(), self.params, self.baseline_, self.scaler_, self.drift_
        )
        self.cold_ = new_cold_start(self.params)  # emptied: the mixture has the events now
        self.ready_ = True
        if take == n:
            return warm
        rest = self._score_and_learn(A[take:], None if allow is None else allow[take:])
        return concat_results(warm, rest)

    def _score_and_learn(self, A: Array, allow: NDArray[np.bool_] | None) -> DetectionResult:
        """Score with the mixture, flag, and queue the batch for learning."""
        n = A.shape[0]
        if self.baseline_ is not None:
            A = self.baseline_.transform(A)
        nan = has_nan(A)
        Z = self.scaler_.transform(A)
        m = self.model_
        lpn, log_resp, lnc, do = m._estimate(Z, not nan)
        u = -m._scorer.log_tail(lnc, lpn, do) / _LN10
        if self.smoother_.active:
            u = self.smoother_(u)
        observed_log_scale = (
            (~np.isnan(A)) @ self.scaler_.log_scale() if nan else self.scaler_.log_scale_sum()
        )
        thr = self.threshold_model_.threshold_
        flagged = u > thr
        ok = np.ones(n, dtype=bool) if allow is None else allow
        if self.pending_.add(Pending(Z, log_resp, u, flagged, ok)):
            self._flush()
        self.n_events_ += n
        self.n_anomalies_ += int(np.count_nonzero(flagged))
        return DetectionResult(
            scores=observed_log_scale - lpn,
            tail_probability=np.power(10.0, -u),
            surprise=u,
            threshold=np.full(n, 10.0**-thr),
            severity=severity(u, thr),
            is_anomaly=flagged,
            learned=learnable(flagged, ok, self.protect_model),
            warming_up=np.zeros(n, dtype=bool),
        )

    def _flush(self) -> None:
        """Learn the scored-but-not-yet-learned events (at least every ``learn_every``)."""
        batch = self.pending_.take()
        if batch is None:
            return
        assert self.regime_ is not None
        n_learned, new_regime = learn_pending(
            batch, self.model_, self.drift_, self.regime_, self.threshold_model_,
            self.protect_model,
        )
        self.n_learned_ += n_learned
        self.regime_changes_ += int(new_regime)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Whole detector state: plain arrays and scalars, versioned, no pickle.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> det = Detector(warmup=200, random_state=0); _ = det.process(rng.normal(size=(300, 2)))
        >>> det2 = Detector.from_state(det.to_state())
        >>> X = rng.normal(size=(50, 2))
        >>> bool(np.array_equal(det.process(X).scores, det2.process(X).scores))
        True
        """
        return dump_state(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Detector:
        """Rebuild a detector from :meth:`to_state`; it continues bit for bit.

        The threshold is rebuilt by the ``"kind"`` of its state
        (:func:`~streamem.scoring.threshold.load_threshold`).

        Raises
        ------
        StateError
            Another version, or a missing or malformed field (named by its path).

        Examples
        --------
        >>> Detector.from_state(Detector(warmup=50).to_state()).warmup
        50
        """
        return load_state(cls, state)
