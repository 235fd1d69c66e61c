"""The warm-up of a detector: its provisional cold start, and the handover to the mixture.

The model grows with the data, and every event from the 32nd on is scored:

* events 1-31: buffered, not scored (NaN scores, ``warming_up``): no feature scale can be
  estimated from fewer;
* events 32 to ``warmup``: a single shrunk Gaussian, the Normal-Inverse-Wishart posterior
  predictive (multivariate Student-t) of the normal events so far, refitted every
  ``learn_every`` events (``warming_up`` is set). Its tail probability is exact under the
  model (``delta^2 / d ~ F(d, n + 3)``), so the threshold is ``alert_rate`` itself; it is
  conservative while ``n`` is small. Gross outliers (tail probability below
  ``alert_rate / 100``) are not learned, milder alarms are (the provisional model is too
  simple to judge them). See :class:`~streamem.scoring.coldstart.ColdStart`;
* from ``warmup`` normal events on: the mixture (batch EM on the buffer, K by BIC, the
  covariance structure by BIC, :mod:`streamem.scoring.structure`), fitted by
  :func:`hand_over`, then online EM. Its tail probability is the chi-square mixture bound;
  the default threshold is ``alert_rate`` again until 2000 *live* (out-of-sample)
  surprises are collected, then the SPOT (generalised Pareto) fit to their tail, refitted
  as scores arrive. Nothing is ever calibrated on the in-sample scores of the data a model
  was fitted to.

With ``cold_start=False`` the warm-up is blind: the first ``warmup`` events are a trusted
normal reference, learned without being scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model.gmm import OnlineGMM
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.coldstart import ColdStart
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.regime import RegimeTracker
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.structure import choose_mixture

__all__ = ["hand_over", "new_cold_start", "new_model"]

Array = NDArray[np.float64]


def new_model(params: Mapping[str, Any], seed: int | None, n_warmup: int,
              covariance_type: str | None = None) -> OnlineGMM:
    """An unfitted mixture with the detector's parameters.

    Parameters
    ----------
    params
        The detector's ``params``.
    seed
        Random state of the mixture.
    n_warmup
        Events it buffers before its batch-EM fit.
    covariance_type
        ``"full"`` or ``"diag"`` (None: the detector's; ``"auto"`` means full).

    Returns
    -------
    OnlineGMM

    Examples
    --------
    >>> from streamem import Detector
    >>> new_model(Detector(covariance_type="diag").params, 0, 100).covariance_type
    'diag'
    """
    ct = covariance_type or params["covariance_type"]
    return OnlineGMM(
        n_components=params["n_components"], covariance_type="diag" if ct == "diag" else "full",
        half_life=params["half_life"], reg_covar=params["reg_covar"],
        max_components=params["max_components"], n_warmup=n_warmup, random_state=seed,
    )


def new_cold_start(params: Mapping[str, Any]) -> ColdStart:
    """An empty cold start with the detector's parameters.

    Examples
    --------
    >>> from streamem import Detector
    >>> new_cold_start(Detector(warmup=50).params).warmup
    50
    """
    detrend = params["detrend_half_life"]
    return ColdStart(
        params["warmup"], params["alert_rate"], params["covariance_type"],
        refresh_every=params["learn_every"], regime_patience=params["regime_patience"],
        regime_fraction=params["regime_fraction"],
        detrend=None if detrend is None else (detrend, params["detrend_min_autocorr"]),
        blind=not params["cold_start"],
    )


def hand_over(B: Array, params: Mapping[str, Any], baseline: SlowBaseline | None,
              scaler: RobustScaler, drift: DriftMonitor) -> tuple[OnlineGMM, RegimeTracker]:
    """Fit the scaling and the mixture to the warm-up buffer ``B``.

    The baseline (when drift tolerance is on) and the scaler are fitted in place, and the
    drift monitor takes the fit as its reference. No threshold is fitted: in-sample scores
    of the data a model was fitted to would set it too low; the threshold calibrates on
    live scores.

    Parameters
    ----------
    B
        Shape (n_samples, n_features), the normal warm-up events in original units.
    params
        The detector's ``params``.
    baseline, scaler, drift
        The detector's parts, fitted in place.

    Returns
    -------
    model
        The fitted mixture.
    tracker
        An empty regime tracker for the live phase.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem import Detector
    >>> B = np.random.default_rng(0).normal(size=(200, 2))
    >>> m, tr = hand_over(B, Detector(warmup=200).params, None, RobustScaler(),
    ...                   DriftMonitor(window=100))
    >>> m.is_fitted, tr.patience
    (True, 2000)
    """
    if baseline is not None:
        B = baseline.fit_transform(B)
    scaler.fit(B)
    Z = scaler.transform(B)
    floor = scaler.variance_floor()

    def make(ct: str) -> OnlineGMM:
        m = new_model(params, params["random_state"], params["warmup"], ct)
        m._var_floor = floor
        return m

    model = choose_mixture(Z, params["covariance_type"], make)
    drift.set_reference(model, Z)
    early, patience = params["regime_min_events"], params["regime_patience"]
    early = int(early) if early is not None and early < patience else None
    tracker = RegimeTracker(patience, params["regime_fraction"], B.shape[1], min_events=early)
    return model, tracker
