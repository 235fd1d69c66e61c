"""Regime acceptance: when persistent alarms are a new normal, and how it joins the mixture.

:class:`~streamem.scoring.regime.RegimeTracker` says when to look (nearly every recent
event flagged, or a share of ``regime_fraction`` over ``regime_patience`` events); this
module decides whether the flagged events form a coherent, stationary new cluster
(:func:`is_coherent`) and adds it to the mixture (:func:`accept_regime`).

A detector accepts a new regime instead of alarming forever: early (after
``regime_min_events``) when nearly every recent event is flagged and the flagged events
form a coherent cluster (a mixture fitted to the older half of them explains the newer
half: fewer than 10 % fall in its 1 % tail), at the latest after ``regime_patience``
events whatever they look like. It then *adds* components fitted to the new regime (the
old regime stays known, so a recurring regime is not alarmed again) and keeps its
calibrated threshold. A burst or an incident shorter than ``regime_min_events`` is flagged
throughout and never learned.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamem.model.gmm import OnlineGMM
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.regime import RegimeTracker

__all__ = ["COHERENT_MISS", "COMPACT_RATIO", "NEW_REGIME_WEIGHT", "accept_regime",
           "is_coherent"]

Array = NDArray[np.float64]
#: Mixture weight given to a new regime's components (the old ones keep the rest).
NEW_REGIME_WEIGHT = 0.5
#: Largest share of a candidate regime's newer half in the 1 % tail of a fit to its older half.
COHERENT_MISS = 0.1
#: Largest spread (geometric-mean sd) of a candidate regime's components, relative to the
#: widest known component.
COMPACT_RATIO = 3.0


def log_spread(cov: Array) -> Array:
    """Mean log variance per dimension (``log|S| / d``) of each component.

    Parameters
    ----------
    cov
        Shape (n_components, n_features, n_features), or (n_components, n_features) for diag.

    Returns
    -------
    ndarray of shape (n_components,)

    Examples
    --------
    >>> import numpy as np
    >>> log_spread(np.array([[np.e, np.e]])).tolist(), log_spread(np.eye(2)[None]).tolist()
    ([1.0], [0.0])
    """
    if len(cov) == 0:
        return np.zeros(0)
    if cov.ndim == 2:
        out: Array = np.log(cov).mean(axis=1)
        return out
    return np.asarray(np.linalg.slogdet(cov)[1] / cov.shape[1], dtype=float)


def is_coherent(E: Array, model: OnlineGMM) -> bool:
    """Do the flagged events ``E`` (oldest first) form a stationary new cluster?

    A mixture fitted to the older half must explain the newer half (fewer than
    ``COHERENT_MISS`` of it in the fit's 1 % tail), and its main components (weight
    >= 0.1) must be compact: geometric-mean standard deviation at most ``COMPACT_RATIO``
    times that of the widest component of ``model``. A drifting fault (a ramp, a runaway
    sensor) or scattered faults fail; a new operating point passes. The probe fit draws
    its seed from ``model``'s generator (part of the model's state).

    Parameters
    ----------
    E
        Shape (n_samples, n_features), scaled units.
    model
        The fitted mixture of the known regimes.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = OnlineGMM(n_components=1, n_warmup=200, random_state=0)
    >>> _ = m.partial_fit(rng.normal(size=(200, 2)))
    >>> is_coherent(rng.normal(6.0, 0.5, (200, 2)), m)             # a new operating point
    True
    >>> is_coherent(np.linspace(4.0, 40.0, 400).reshape(200, 2), m)  # a ramp
    False
    """
    half = len(E) // 2
    if half < 2:
        return False
    probe = OnlineGMM(
        n_components="auto", covariance_type=model.covariance_type,
        reg_covar=model.reg_covar, max_components=model.max_components, n_warmup=half,
        n_init=1, random_state=int(model._rng.integers(2**31 - 1)),
    )
    probe._var_floor = model._var_floor
    probe.partial_fit(E[:half])
    heavy = probe.weights_ >= 0.1
    if log_spread(probe.covariances_[heavy]).max(initial=-np.inf) > (
        log_spread(model.covariances_).max() + 2.0 * math.log(COMPACT_RATIO)
    ):
        return False  # broader than any known component: scattered faults, not a regime
    log_tau = probe._estimate_tail(E[half:])[2]
    return float(np.mean(log_tau < math.log(0.01))) < COHERENT_MISS


def accept_regime(model: OnlineGMM, drift: DriftMonitor, tracker: RegimeTracker,
                  events: Array) -> None:
    """Add the new regime's components to ``model``, re-anchor ``drift``, reset ``tracker``.

    Parameters
    ----------
    model, drift, tracker
        The detector's mixture, drift monitor and regime tracker (changed in place).
    events
        Shape (n_samples, n_features), the new regime's events in scaled units.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = OnlineGMM(n_components=1, n_warmup=200, random_state=0)
    >>> _ = m.partial_fit(rng.normal(size=(200, 2)))
    >>> drift, tracker = DriftMonitor(window=100), RegimeTracker(50, 0.5, 2)
    >>> drift.set_reference(m, rng.normal(size=(200, 2)))
    >>> accept_regime(m, drift, tracker, rng.normal(6.0, 0.5, (100, 2)))
    >>> m.n_components_
    2
    """
    model.add_components(events, weight=NEW_REGIME_WEIGHT)
    drift.set_reference(model, events)
    tracker.reset()
