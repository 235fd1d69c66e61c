"""The detector's snapshot: :func:`dump_state` and :func:`load_state` (plain data, versioned).

The layout is the one every streamem 0.1 checkpoint holds (``version`` 1); states written
before drift tolerance, smoothing and the cold start lack some keys, and
:func:`upgrade_state` fills them in (a blind warm-up, no detrending).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem.model._versioned import StateReader
from streamem.model.gmm import OnlineGMM
from streamem.scoring.baseline import SlowBaseline
from streamem.scoring.categorical import CategoricalPart
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.regime import RegimeTracker
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.threshold import load_threshold

if TYPE_CHECKING:
    from streamem.scoring.detector import Detector

__all__ = ["STATE_VERSION", "dump_state", "load_state", "upgrade_state"]

STATE_VERSION = 1


def dump_state(det: Detector) -> dict[str, Any]:
    """Everything ``det`` needs to continue exactly: plain arrays and scalars.

    Examples
    --------
    >>> from streamem import Detector
    >>> sorted(dump_state(Detector()))[:4]
    ['baseline', 'cold', 'drift', 'model']
    """
    state = {
        "version": STATE_VERSION,
        "params": dict(det.params),
        "model": det.model_.to_state(),
        "scaler": det.scaler_.to_state(),
        "threshold": det.threshold_model_.to_state(),
        "drift": det.drift_.to_state(),
        "cold": det.cold_.to_state(),
        "regime": det.regime_.to_state() if det.regime_ is not None else None,
        "n_features_in": det.n_features_in_, "n_events": det.n_events_,
        "n_anomalies": det.n_anomalies_, "n_learned": det.n_learned_,
        "regime_changes": det.regime_changes_, "ready": det.ready_,
        "pending": det.pending_.to_state(),
        "baseline": det.baseline_.to_state() if det.baseline_ is not None else None,
        "recent_surprise": det.smoother_.recent_.copy(),
    }
    if det.categorical_ is not None:  # categorical fields (otherwise the earlier layout)
        state["categorical"] = det.categorical_.to_state()
    if not np.isnan(det.warm_clock_):  # event times seen (otherwise the 0.1 layout)
        state["warm_clock"] = det.warm_clock_
    return state


def upgrade_state(state: dict[str, Any]) -> dict[str, Any]:
    """Fill in what states from before drift tolerance and the cold start lack.

    Examples
    --------
    >>> import numpy as np
    >>> old = {"params": {"covariance_type": "full"}, "buffer": np.zeros((3, 2))}
    >>> new = upgrade_state(old)
    >>> new["params"]["cold_start"], new["cold"]["n_events"], new["baseline"]
    (False, 3, None)
    """
    params = dict(state["params"]) if isinstance(state.get("params"), Mapping) else None
    if params is not None:
        if "baseline" not in state:  # written before drift tolerance and smoothing
            params.setdefault("detrend_half_life", None)
        if "cold" not in state:  # written before the cold start: a blind warm-up
            params.setdefault("cold_start", False)
        state["params"] = params
    if state.get("cold") is None and "buffer" in state and "covariance_type" in (params or {}):
        buf = np.asarray(state["buffer"], dtype=float)  # the blind warm-up's buffer
        state["cold"] = {
            "buffer": buf, "covariance_type": (params or {})["covariance_type"],
            "n_anomalies": 0, "n_events": len(buf) if buf.size else 0, "since": 0,
            "recent": np.zeros(0, dtype=bool), "rejected": np.empty((0, 0)),
        }
    state.setdefault("baseline", None)
    state.setdefault("categorical", None)  # written before categorical fields
    return state


def load_state(cls: type[Detector], state: Mapping[str, Any]) -> Detector:
    """Rebuild a detector of class ``cls`` from :func:`dump_state` output.

    Raises
    ------
    StateError
        Another version, a missing or malformed field (named by its dotted path).

    Examples
    --------
    >>> from streamem import Detector
    >>> load_state(Detector, dump_state(Detector(warmup=50))).warmup
    50
    """
    r = StateReader.of(state, "Detector", version=STATE_VERSION, upgrade=upgrade_state)
    with r.guard():
        det = cls(**r["params"])
        det.model_ = OnlineGMM.from_state(r.sub("model"))
        det.scaler_ = RobustScaler.from_state(r.sub("scaler"))
        det.threshold_model_ = load_threshold(r.sub("threshold"))
        det.drift_ = DriftMonitor.from_state(r.sub("drift"))
        det.cold_.load_state(r.sub("cold"))
        det.regime_ = RegimeTracker.from_state(r.sub("regime")) if r["regime"] is not None else None
        det.n_features_in_ = r["n_features_in"]
        det.n_events_ = r.integer("n_events")
        det.n_anomalies_ = r.integer("n_anomalies")
        det.n_learned_ = r.integer("n_learned")
        det.regime_changes_ = r.integer("regime_changes")
        det.ready_ = r.flag("ready")
        det.pending_.load_state(r["pending"])
        baseline = r["baseline"]
        det.baseline_ = SlowBaseline.from_state(r.sub("baseline")) if baseline is not None else None
        det.smoother_.recent_ = r.array("recent_surprise", default=np.zeros(0)).copy()
        if r["categorical"] is not None:
            det.categorical_ = CategoricalPart.from_state(r.sub("categorical"))
        det.warm_clock_ = r.number("warm_clock", default=float("nan"))
        return det
