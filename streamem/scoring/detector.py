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

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._catcodes import CategoricalBatch
from streamem.model._validation import check_array
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.categorical import CategoricalPart
from streamem.scoring.detector_state import dump_state, load_state
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.event_time import check_times, start_clock, warm_clock
from streamem.scoring.feedback import learn_false_positive
from streamem.scoring.learning import PendingEvents, learn_pending, learnable
from streamem.scoring.live import score_batch
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


class Detector(DetectorReports):
    """Streaming anomaly detector with sensible defaults for any numeric data.

    Each call to :meth:`process` scores the batch with the model *as it was*, flags events
    whose tail probability is below the threshold, then learns from the normal ones
    (``protect_model``).

    The first 31 events are buffered; from the 32nd to ``warmup`` a provisional Student-t
    model scores them (:mod:`~streamem.scoring.warmup`), then the mixture, learned online,
    with a threshold calibrated on live surprises only. When anomalies persist, a coherent
    new regime is *added* to the mixture (:mod:`~streamem.scoring.acceptance`): the old
    regime stays known, and the threshold stays calibrated.

    Parameters
    ----------
    n_components
        Mixture size, or ``"auto"`` (BIC on the warm-up data).
    covariance_type
        ``"full"``, ``"diag"`` or ``"auto"`` (default): the lower BIC on the warm-up data
        among the structures it can support (:mod:`streamem.scoring.structure`).
    half_life
        Forgetting, in events; or a duration (``"7d"``, ``"90m"``) in event time, when every
        :meth:`process` call passes ``times=`` (:mod:`~streamem.scoring.event_time`).
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
        The early path: a new regime once 90 % of the last ``regime_min_events`` events are
        flagged *and* form a stationary new cluster (:mod:`streamem.scoring.acceptance`).
        ``None`` (default): off, or a sustained coherent fault (a stuck valve) would become
        normal. Turn it on (400) for streams whose regime changes are frequent and legitimate.
    feature_names
        Names used in explanations.
    drift_window
        Events per drift-test window.
    learn_every
        Learning (and the threshold and drift updates) waits until this many events are
        scored, then is one vectorised step (:mod:`streamem.scoring.learning`).
    detrend_half_life
        Drift tolerance for slowly varying features (:mod:`~streamem.scoring.baseline`): a
        feature whose warm-up lag-1 autocorrelation is at least ``detrend_min_autocorr`` is
        seen as its residual from a moving baseline with this half-life (events), so slow
        drifts never alarm while abrupt jumps still do. ``"auto"`` fits one half-life per
        slow feature. ``None`` (default): off, since a fault that holds a slow reading at a
        wrong level then alarms only until the baseline has caught up.
    detrend_min_autocorr
        Lag-1 autocorrelation (warm-up) from which a feature counts as slow.
    smooth_window
        Flag on the trailing mean of the last ``smooth_window`` surprises (across batches;
        :mod:`streamem.scoring.smoothing`): sustained anomalies stand out from isolated
        noise, and the threshold is fitted on the smoothed values. A single event is still
        flagged when its surprise exceeds ``smooth_window`` times the threshold. ``1``: off.
    cold_start
        Score the warm-up (from the 32nd event on) with the provisional model, flag and
        protect as later (default). ``False``: a blind warm-up; the first ``warmup`` events
        are a trusted normal reference, learned without being scored (NaN scores), as for
        a training set known to hold every operating point.
    categorical
        Categorical field names: each component also holds a categorical distribution per
        field (:mod:`~streamem.scoring.categorical`); :meth:`process` then takes their values.
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
        half_life: float | str = 50_000,
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
        categorical: Sequence[str] | None = None,
    ) -> None:
        # the keywords in signature order (the state's params); the threshold's state is
        # saved on its own
        args = {k: v for k, v in locals().items() if k not in ("self", "threshold", "categorical")}
        threshold, alert_rate = resolve_threshold(threshold, alert_rate)
        self.params: dict[str, Any] = check_params(
            {**args, "alert_rate": alert_rate, "cold_start": bool(cold_start)}
        )
        self.alert_rate, self.warmup, self.learn_every = alert_rate, warmup, learn_every
        self.protect_model, self.feature_names = protect_model, feature_names
        self.regime_patience, self.regime_fraction = regime_patience, regime_fraction
        self.regime_min_events = None if regime_min_events is None else int(regime_min_events)
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
        self.n_events_ = self.n_anomalies_ = self.n_learned_ = self.regime_changes_ = 0
        self.ready_ = False
        # categorical counts decay per event (an event-time half-life: the default events)
        cat_hl = float(half_life) if isinstance(half_life, (int, float)) else 50_000.0
        self.categorical_ = CategoricalPart(categorical, cat_hl) if categorical else None
        self.warm_clock_ = float("nan")  # latest warm-up timestamp (event time)

    # ------------------------------------------------------------------ processing
    def process(self, X: ArrayLike, learn: ArrayLike | None = None, *,
                times: ArrayLike | None = None,
                categorical: CategoricalBatch | Mapping[str, Any] | None = None
                ) -> DetectionResult:
        """Score a batch with the current model, flag, then learn from the normal events.

        Parameters
        ----------
        X
            Shape (n_samples, n_features); NaN marks a missing reading.
        learn
            Shape (n_samples,), bool: events that may be learned (None: all). An event
            outside it is scored and flagged as usual but never learned (operator rules'
            ``skip_learning``).
        times
            Shape (n_samples,): event times, epoch seconds or ``datetime64`` (NaN/NaT:
            unknown). Required when ``half_life`` is a duration; ignored otherwise.
        categorical
            With ``Detector(categorical=...)``: the events' values, ``{field: values}`` or a
            :class:`~streamem.model._catcodes.CategoricalBatch` (None or ``""``: missing).

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
        ts = check_times(times, n, self.params["half_life"])
        cat = None
        if categorical is not None and self.categorical_ is not None:
            cat = CategoricalBatch.of(categorical, self.categorical_.fields)
            if len(cat) != n:
                raise InvalidInputError(f"categorical has {len(cat)} events for {n} rows of X; "
                                        "give one value per event")
        if self.n_features_in_ is None and n:
            self.n_features_in_ = A.shape[1]
        if n == 0:
            return warming_result(0)  # empty arrays; nothing changes
        if self.ready_:
            return self._score_and_learn(A, allow, ts, cat)
        cold = self.cold_
        warm = cold.process(A, self.smoother_ if self.smoother_.active else None, allow)
        take = len(warm)
        if cat is not None and self.categorical_ is not None:
            self.categorical_.warm(cat.rows(slice(0, take)), warm.learned)
        self.warm_clock_ = warm_clock(self.warm_clock_, None if ts is None else ts[:take])
        self.n_events_ += take
        self.n_anomalies_ += int(np.count_nonzero(warm.is_anomaly))
        self.n_learned_ += int(np.count_nonzero(warm.learned))
        if not cold.done:
            return warm
        self.model_, self.regime_ = hand_over(
            cold.buffer(), self.params, self.baseline_, self.scaler_, self.drift_
        )
        start_clock(self.model_, self.warm_clock_)
        self.cold_ = new_cold_start(self.params)  # emptied: the mixture has the events now
        self.ready_ = True
        if self.categorical_ is not None:
            self.categorical_.start(self.model_.weights_)
        if take == n:
            return warm
        rest = self._score_and_learn(A[take:], None if allow is None else allow[take:],
                                     None if ts is None else ts[take:],
                                     None if cat is None else cat.rows(slice(take, n)))
        return concat_results(warm, rest)

    def _score_and_learn(self, A: Array, allow: NDArray[np.bool_] | None,
                         ts: Array | None = None, cat: CategoricalBatch | None = None
                         ) -> DetectionResult:
        """Score with the mixture, flag, and queue the batch for learning."""
        n = A.shape[0]
        Z, log_resp, u, scores = score_batch(
            A, self.model_, self.scaler_, self.baseline_, self.smoother_
        )
        if cat is not None and self.categorical_ is not None:  # the joint model
            log_resp, u, _ = self.categorical_.score(cat, log_resp, u)
        thr = self.threshold_model_.threshold_
        flagged = u > thr
        ok = np.ones(n, dtype=bool) if allow is None else allow
        if cat is not None and self.categorical_ is not None:
            self.categorical_.learn(cat, log_resp, learnable(flagged, ok, self.protect_model))
        if self.pending_.add(Z, log_resp, u, flagged, ok, ts):
            self._flush()
        self.n_events_ += n
        self.n_anomalies_ += int(np.count_nonzero(flagged))
        return DetectionResult(
            scores=scores,
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

    def learn_false_positive(self, x: ArrayLike, *, weight: float = 0.02) -> None:
        """Learn an operator's false positive: ``x`` (shape (n_features,)) becomes a small
        known mode at mixture weight ``weight``, so the same pattern stops alarming
        (:mod:`streamem.scoring.feedback`).

        Raises
        ------
        NotFittedError
            Still warming up.
        InvalidInputError
            ``weight`` outside (0, 0.5), or a bad ``x``.
        """
        learn_false_positive(self, x, weight)

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
