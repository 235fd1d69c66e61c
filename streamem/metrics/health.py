"""The one mapping from detector and lane state to model-health metric values.

:func:`health_values` turns a ``Detector.health()`` mapping (or one already in metric names)
into the values of the gauges in :data:`~streamem.metrics.catalogue.HEALTH_GAUGES`, the
per-component arrays, and the increments of ``streamem_drift_events_total`` and
``streamem_regime_changes_total``. Every caller goes through it: the daemon per lane
(:func:`report_lane`, which adds the checkpoint sequence as ``model_generation``) and
:meth:`Metrics.update_health <streamem.metrics.recorder.Metrics.update_health>`. So each
metric has one meaning:

- ``threshold`` is the threshold in surprise units (``threshold_surprise``);
- ``model_generation`` is the checkpoint sequence, ``model_updates`` the M-steps
  (``generation``);
- ``threshold``, ``model_components`` and the component arrays are reported only once the
  model is ready (before that they keep their previous value, NaN at start).

Pure: no prometheus_client here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from streamem.metrics.catalogue import COMPONENT_ARRAYS, HEALTH_GAUGES, KEY_COUNTERS, KEY_GAUGES

__all__ = [
    "HEALTH_ALIASES",
    "HEALTH_CUMULATIVE",
    "HEALTH_NOT_EXPORTED",
    "HealthTarget",
    "HealthValues",
    "LaneState",
    "health_values",
    "report_lane",
]

HEALTH_ALIASES = {
    "threshold_surprise": "threshold",
    "generation": "model_updates",
    "n_components": "model_components",
    "weights": "component_weight",
    "mean_shift": "component_mean_shift",
}
"""Keys of ``Detector.health()`` and the metric (without ``streamem_``) they feed."""
HEALTH_CUMULATIVE = {"drift_alarms": "drift_events", "regime_changes": "regime_changes",
                     **{k: k for k in KEY_COUNTERS}}
"""Cumulative detector counts and the counter (without ``streamem_``, ``_total``) they advance."""
HEALTH_NOT_EXPORTED = frozenset({"events", "anomalies", "learned", "reseeds", "keys_created",
                                 "keys_forgotten", "keys_spilled"})
"""``Detector.health()`` keys that no model-health metric exports (the event counters do)."""
_WHEN_READY = frozenset({"threshold", "model_components", *COMPONENT_ARRAYS})


@dataclass(frozen=True)
class HealthValues:
    """Model-health metric values, by metric name without ``streamem_``.

    Attributes
    ----------
    gauges
        Scalar gauges (keys of :data:`~streamem.metrics.catalogue.HEALTH_GAUGES`).
    arrays
        Per-component gauges, each of shape (n_components,).
    increments
        How much ``drift_events``, ``regime_changes`` and the key counters grew (only
        positive entries).
    deltas
        How much each key gauge (:data:`~streamem.metrics.catalogue.KEY_GAUGES`) of this
        lane changed: the gauges are sums over the keyed lanes.
    ready
        Whether the model scores (``streamem_ready``), or None to leave it alone.
    unknown
        Input keys that feed no metric (the caller warns once about each).
    """

    gauges: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    increments: dict[str, float] = field(default_factory=dict)
    ready: bool | None = None
    unknown: tuple[str, ...] = ()
    deltas: dict[str, float] = field(default_factory=dict)


def health_values(health: Mapping[str, Any], *, reported: dict[str, float],
                  sequence: int | None = None) -> HealthValues:
    """Map detector health onto the model-health metrics.

    Parameters
    ----------
    health
        ``Detector.health()``, or keys already in metric names (``threshold``,
        ``component_weight``, ...; see :data:`HEALTH_ALIASES`). Missing keys are simply not
        reported.
    reported
        The cumulative counts (``drift_alarms``, ``regime_changes``) already turned into
        counter increments for this model; updated in place. A count not in it counts from 0,
        so keep one dict per model for as long as the counters live.
    sequence
        The checkpoint sequence of the model's lane (``model_generation``), if known.

    Returns
    -------
    HealthValues

    Examples
    --------
    >>> reported = {}
    >>> v = health_values({"ready": 1.0, "threshold_surprise": 3.5, "generation": 7.0,
    ...                    "weights": [0.25, 0.75], "drift_alarms": 2.0}, reported=reported,
    ...                   sequence=4)
    >>> v.gauges, v.arrays["component_weight"].tolist(), v.increments, v.ready
    ({'threshold': 3.5, 'model_updates': 7.0, 'model_generation': 4.0}, [0.25, 0.75], {'drift_events': 2.0}, True)
    >>> health_values({"drift_alarms": 3.0}, reported=reported).increments
    {'drift_events': 1.0}
    >>> health_values({"ready": 0.0, "threshold_surprise": float("nan")}, reported={}).gauges
    {}
    """  # noqa: E501
    gauges: dict[str, float] = {}
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    increments: dict[str, float] = {}
    deltas: dict[str, float] = {}
    unknown: list[str] = []
    flag = health.get("ready")
    ready = None if flag is None else bool(flag)
    for raw_key, value in health.items():
        key = HEALTH_ALIASES.get(raw_key, raw_key)
        if ready is False and key in _WHEN_READY:
            continue
        if key in COMPONENT_ARRAYS:
            arrays[key] = np.array(value, dtype=np.float64).ravel()
        elif key in HEALTH_GAUGES:
            gauges[key] = float(value)
        elif key in KEY_GAUGES:  # this lane's share of a sum over lanes
            delta = float(value) - reported.get(key, 0.0)
            reported[key] = float(value)
            if delta:
                deltas[key] = delta
        elif key in HEALTH_CUMULATIVE:
            total = float(value)
            before = reported.get(key, 0.0)
            reported[key] = total
            if total > before:
                increments[HEALTH_CUMULATIVE[key]] = total - before
        elif key != "ready" and key not in HEALTH_NOT_EXPORTED:
            unknown.append(key)
    if sequence is not None:
        gauges["model_generation"] = float(sequence)
    return HealthValues(gauges, arrays, increments, ready, tuple(unknown), deltas)


class HealthTarget(Protocol):
    """Where health values go: :class:`~streamem.metrics.recorder.Metrics`."""

    def apply_health(self, values: HealthValues) -> None: ...


class _Model(Protocol):
    def health(self) -> Mapping[str, Any]: ...


class LaneState(Protocol):
    """What :func:`report_lane` reads of a lane: its model, checkpoint sequence, and the
    cumulative counts already reported (written back)."""

    @property
    def scorer(self) -> _Model: ...

    @property
    def sequence(self) -> int: ...

    @property
    def reported(self) -> dict[str, float]: ...


def report_lane(metrics: HealthTarget, lane: LaneState) -> None:
    """Report one lane's model health; readiness is left to the caller (it spans lanes).

    Parameters
    ----------
    metrics
        Where the values go.
    lane
        The lane: ``model_generation`` is its ``sequence``, and its ``reported`` dict keeps
        the counts already turned into counter increments.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from streamem.metrics.recorder import Metrics
    >>> from streamem import Detector
    >>> from streamem.runtime.scorer import DetectorScorer
    >>> lane = SimpleNamespace(scorer=DetectorScorer(Detector(warmup=50)), sequence=3,
    ...                        reported={})
    >>> m = Metrics(); report_lane(m, lane)
    >>> m.value("streamem_model_generation"), m.value("streamem_ready")
    (3.0, 0.0)
    """
    values = health_values(lane.scorer.health(), reported=lane.reported,
                           sequence=lane.sequence)
    metrics.apply_health(replace(values, ready=None))
