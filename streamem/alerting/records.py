"""What alerting produces: one anomalous event's record and the incidents built from them.

:class:`AnomalyRecord` (with its :class:`FeatureContribution` explanation) is what the
pipeline hands to the sinks and the incident tracker for each flagged event; :class:`Incident`
is an alert with a lifetime, made by :class:`~streamem.alerting.incidents.IncidentTracker`.
Sinks import these; nothing here imports a sink. :class:`FeatureContribution` is defined by
:mod:`streamem.scoring.explain` (the core produces it) and re-exported here.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from streamem.scoring.explain import FeatureContribution

__all__ = ["AnomalyRecord", "FeatureContribution", "Incident"]


@dataclass(frozen=True)
class AnomalyRecord:
    """Everything a sink needs to report one anomalous event.

    Examples
    --------
    >>> r = AnomalyRecord(id="f:0:10", key="pump-1", timestamp=1.0, score=30.0,
    ...                   tail_probability=1e-6, severity=91.0, threshold=20.0)
    >>> r.to_dict()["key"]
    'pump-1'
    """

    id: str
    key: str | None
    timestamp: float | None
    score: float
    tail_probability: float
    severity: float
    threshold: float
    top_features: tuple[FeatureContribution, ...] = ()
    model_generation: int = 0
    detected_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (features as a list of dicts)."""
        d = {name: getattr(self, name) for name in _RECORD_FIELDS}  # asdict deep-copies: slow
        d["top_features"] = [{name: getattr(f, name) for name in _FEATURE_FIELDS
                              if name not in _CATEGORICAL or f.category is not None}
                             for f in self.top_features]  # category, probability: when set
        d["extra"] = deepcopy(self.extra) if any(
            isinstance(v, (dict, list)) for v in self.extra.values()) else dict(self.extra)
        return d


_RECORD_FIELDS = tuple(f.name for f in fields(AnomalyRecord))
_FEATURE_FIELDS = tuple(f.name for f in fields(FeatureContribution))
_CATEGORICAL = frozenset({"category", "probability"})


@dataclass(frozen=True)
class Incident:
    """An alert with a lifetime: opened when severity crosses the upper level, resolved after
    it stayed below the lower level for the cool-down (hysteresis).

    Examples
    --------
    >>> Incident(id="pump-1:1", key="pump-1", status="firing", started_at=0.0,
    ...          ended_at=None, max_severity=90.0, last=None).status
    'firing'
    """

    id: str
    key: str | None
    status: Literal["firing", "resolved"]
    started_at: float
    ended_at: float | None
    max_severity: float
    last: AnomalyRecord | None
    count: int = 1
