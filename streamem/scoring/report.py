"""Read-only views of a :class:`~streamem.Detector`: explanations, health, LL threshold.

Every method only reads the detector's fitted state; :class:`~streamem.Detector` inherits
them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.model._gaussian import LOG_2PI, log_det_cholesky
from streamem.model._numeric import LN10
from streamem.model._tail import mixture_log_tail
from streamem.model._validation import check_array
from streamem.model.gmm import OnlineGMM
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.categorical import CategoricalPart
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.explain import FeatureContribution, conditional_zscores
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.threshold import Threshold

__all__ = ["DetectorReports"]

Array = NDArray[np.float64]


class DetectorReports:
    """Explanations and health figures of a detector (mixed into :class:`~streamem.Detector`).

    Examples
    --------
    >>> from streamem import Detector
    >>> issubclass(Detector, DetectorReports)
    True
    """

    model_: OnlineGMM
    scaler_: RobustScaler
    baseline_: SlowBaseline | None
    threshold_model_: Threshold
    drift_: DriftMonitor
    feature_names: list[str] | None
    n_features_in_: int | None
    ready_: bool
    n_events_: int
    n_anomalies_: int
    n_learned_: int
    alert_rate: float
    regime_changes_: int
    categorical_: CategoricalPart | None

    # ------------------------------------------------------------------ explanation
    def explain(self, x: ArrayLike, top: int = 3, *,
                categorical: Mapping[str, Any] | None = None) -> list[FeatureContribution]:
        """Top features of one event by |conditional z-score| under its most responsible component.

        Parameters
        ----------
        x
            One event, shape (n_features,), in original units (NaN = missing).
        top
            How many features to return.
        categorical
            The event's categorical values (``{field: value}``) with
            ``Detector(categorical=...)``: they rank with the features by the z of their tail.

        Returns
        -------
        list of FeatureContribution
            Name, index, value, expected value given the other features (original units), z.
            A slow feature (see ``detrend_half_life``) is judged against its current moving
            baseline, and its expected value includes that baseline.

        Examples
        --------
        >>> from streamem import Detector
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=2000)
        >>> X = np.column_stack([a, a + rng.normal(0, 0.1, 2000)])   # x1 follows x0
        >>> det = Detector(warmup=1000, n_components=1, feature_names=["in", "out"])
        >>> _ = det.process(X)
        >>> top = det.explain(np.array([1.0, -1.0]))
        >>> top[0].name in ("in", "out"), round(top[1].expected, 1) in (-1.0, 1.0)
        (True, True)
        """
        A = check_array(np.asarray(x, dtype=float).reshape(1, -1), self.n_features_in_)
        if not self.ready_:
            return []
        b = self.baseline_
        z_row = self.scaler_.transform(b.transform(A, update=False) if b is not None else A)
        _, log_resp, _, _ = self.model_._estimate(z_row)
        k = int(log_resp[0].argmax())
        z, expected = conditional_zscores(
            z_row[0], self.model_.means_[k], self.model_.covariances_[k]
        )
        expected_orig = self.scaler_.inverse_transform(expected[None, :])[0]
        if b is not None and b.active:
            expected_orig = expected_orig + b.offset()
        order = np.argsort(-np.nan_to_num(np.abs(z), nan=-1.0))[:top]
        names = self.feature_names or [f"x{j}" for j in range(A.shape[1])]
        out = [
            FeatureContribution(names[j], int(j), float(A[0, j]), float(expected_orig[j]),
                                float(z[j]))
            for j in order if not np.isnan(z[j])
        ]
        if categorical is not None and self.categorical_ is not None:
            out += self.categorical_.contributions(categorical, np.exp(log_resp[0]),
                                                   A.shape[1])
            out = sorted(out, key=lambda c: -abs(c.z))[:top]
        return out

    # ------------------------------------------------------------------ health
    def log_likelihood_threshold(self) -> float:
        """The threshold in log-likelihood units (original scale) for a complete event.

        Returns
        -------
        float
            Events with a log-likelihood below this are (about) the flagged ones; NaN
            before warm-up.

        Examples
        --------
        >>> from streamem import Detector
        >>> import numpy as np
        >>> det = Detector(warmup=200, random_state=0)
        >>> _ = det.process(np.random.default_rng(0).normal(size=(300, 2)))
        >>> bool(det.log_likelihood_threshold() < -5)
        True
        """
        if not self.ready_:
            return math.nan
        m = self.model_
        d = m.n_features_in_ or 1
        lnc_k = log_det_cholesky(m.precisions_cholesky_, m.covariance_type) - 0.5 * d * LOG_2PI
        target = -self.threshold_model_.threshold_ * LN10
        hi = float(np.max(m._log_weights + lnc_k))
        lo = hi - 10.0
        while mixture_log_tail(m._log_weights, lnc_k, np.array([lo]), float(d))[0] > target:
            lo = hi - 2.0 * (hi - lo)
            if hi - lo > 1e6:
                break
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if mixture_log_tail(m._log_weights, lnc_k, np.array([mid]), float(d))[0] > target:
                hi = mid
            else:
                lo = mid
        return float(0.5 * (lo + hi) - np.log(self.scaler_.scale_).sum())

    def health(self) -> dict[str, Any]:
        """Plain numbers for metrics and dashboards (cheap; call once per scrape or batch).

        Examples
        --------
        >>> from streamem import Detector
        >>> Detector().health()["ready"]
        0.0
        """
        t = self.threshold_model_
        m = self.model_
        out: dict[str, Any] = {
            "ready": float(self.ready_),
            "events": float(self.n_events_),
            "anomalies": float(self.n_anomalies_),
            "learned": float(self.n_learned_),
            "alert_rate_target": self.alert_rate,
            "threshold_surprise": float(t.threshold_) if self.ready_ else math.nan,
            **t.health(),
            "drift_cusum": self.drift_.cusum_, "drift_divergence": self.drift_.divergence_,
            "drift_detected": float(self.drift_.drift_detected_),
            "drift_alarms": float(self.drift_.alarms_),
            "regime_changes": float(self.regime_changes_),
            "reseeds": float(m.n_reseeds_),
            "generation": float(m.generation_),
        }
        if self.ready_:
            out["weights"] = m.weights_.copy()
            out["mean_shift"] = self.drift_.mean_shift_.copy()
            out["n_components"] = float(m.n_components_)
        return out
