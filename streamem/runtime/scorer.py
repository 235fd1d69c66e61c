"""What a lane scores with: the :class:`Scorer` seam between the pipeline and the model.

The pipeline calls one thing whatever ``model.scope`` is: :meth:`Scorer.screen` drops the
rows the model cannot take (under scope key: rows without a usable key, reason
``invalid_key``), :meth:`Scorer.process` scores and learns the rest, :meth:`Scorer.explain`
names the features behind one row, and :meth:`Scorer.save` makes the state durable together
with the lane's input positions. :class:`DetectorScorer` wraps one
:class:`~streamem.scoring.detector.Detector` (scope global and partition: its state goes into
the lane's snapshot); :class:`KeyedScorer` wraps a :class:`~streamem.KeyedDetector` (scope
key: one model per key) whose keys live in a key store (:mod:`streamem.runtime.keyed_lane`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from streamem.events import DecodedBatch
from streamem.runtime.keying import screen_keys
from streamem.scoring.detector import Detector
from streamem.scoring.explain import FeatureContribution
from streamem.scoring.keyed import KeyedDetector
from streamem.scoring.result import DetectionResult
from streamem.state.base import CheckpointStore, Snapshot

__all__ = ["DetectorScorer", "KeyedScorer", "LaneState", "Scorer"]


class LaneState(Protocol):
    """What :meth:`Scorer.save` writes besides the model."""

    key: str

    @property
    def sequence(self) -> int: ...

    @property
    def positions(self) -> dict[int, int]: ...

    @property
    def counters(self) -> dict[str, int]: ...


class Scorer(Protocol):
    """The model of one lane, as the pipeline and the checkpointer use it."""

    @property
    def ready(self) -> bool:
        """True once the model scores and flags (after its warm-up)."""
        ...

    def screen(self, decoded: DecodedBatch) -> DecodedBatch:
        """``decoded`` without the rows this model cannot take (moved to its rejections)."""
        ...

    def process(self, decoded: DecodedBatch, learn: NDArray[np.bool_] | None
                ) -> DetectionResult:
        """Score the rows of the batch :meth:`screen` returned last, then learn."""
        ...

    def explain(self, decoded: DecodedBatch, i: int) -> list[FeatureContribution]:
        """The features that made row ``i`` of the last processed batch unusual."""
        ...

    def key(self, decoded: DecodedBatch, i: int) -> str | None:
        """The entity key of row ``i`` (records and incidents carry it)."""
        ...

    def health(self) -> Mapping[str, Any]:
        """Plain numbers for metrics and the operator page (``Detector.health`` keys)."""
        ...

    def save(self, store: CheckpointStore, lane: LaneState, parsing: Mapping[str, Any],
             feedback: Mapping[str, Any]) -> None:
        """Durably write the state with ``lane``'s positions and counters, atomically, with
        the parsing state and the lane's operator verdicts
        (:meth:`~streamem.runtime.feedback.FeedbackLoop.lane_state`)."""
        ...


class DetectorScorer:
    """One :class:`Detector` for the whole lane; its state goes into the lane's snapshot.

    Examples
    --------
    >>> from streamem.features import FeatureExtractor
    >>> s = DetectorScorer(Detector(warmup=20, random_state=0))
    >>> b = s.screen(FeatureExtractor(["a"]).decode([b'{"a": %d}' % i for i in range(30)]))
    >>> len(s.process(b, None).scores), s.ready
    (30, True)
    """

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    @property
    def ready(self) -> bool:
        """True after the detector's warm-up."""
        return bool(self.detector.ready_)

    def screen(self, decoded: DecodedBatch) -> DecodedBatch:
        """Every decoded row (the decoder already refused the rest)."""
        return decoded

    def process(self, decoded: DecodedBatch, learn: NDArray[np.bool_] | None
                ) -> DetectionResult:
        """``Detector.process`` of the batch's rows (and their ``fields.categorical``), with
        their event times (used when ``model.half_life`` is a duration)."""
        if decoded.categorical is not None:
            return self.detector.process(decoded.X, learn, categorical=decoded.categorical,
                                         times=decoded.seconds)
        return self.detector.process(decoded.X, learn, times=decoded.seconds)

    def explain(self, decoded: DecodedBatch, i: int) -> list[FeatureContribution]:
        """``Detector.explain`` of row ``i`` (its categorical values among the features)."""
        if decoded.categorical is not None:
            return self.detector.explain(decoded.X[i],
                                         categorical=decoded.categorical.values(i))
        return self.detector.explain(decoded.X[i])

    def key(self, decoded: DecodedBatch, i: int) -> str | None:
        """``fields.key`` of row ``i``, if any."""
        return decoded.key(i)

    def health(self) -> Mapping[str, Any]:
        """``Detector.health()``."""
        return self.detector.health()

    def save(self, store: CheckpointStore, lane: LaneState, parsing: Mapping[str, Any],
             feedback: Mapping[str, Any]) -> None:
        """One snapshot of the detector, positions, counters and parsing state."""
        store.save(Snapshot(
            key=lane.key, sequence=lane.sequence + 1, created_at=time.time(),
            detector=self.detector.to_state(), positions=dict(lane.positions),
            counters=dict(lane.counters), parsing=dict(parsing), feedback=dict(feedback),
        ))


class KeyedScorer:
    """One model per entity key (``model.scope: key``), held by a :class:`KeyedDetector`.

    Parameters
    ----------
    detector
        The keyed detector; its ``store`` holds the evicted and checkpointed keys.
    parts
        The ``fields.key`` fields (several: a composite key, :mod:`streamem.runtime.keying`).
    save_keys
        Writes the dirty keys with the lane's positions in one transaction
        (:func:`streamem.runtime.keyed_lane.save_lane`).

    Examples
    --------
    >>> from streamem.features import FeatureExtractor
    >>> s = KeyedScorer(KeyedDetector(warmup=20, random_state=0), ["k"], lambda *a: None)
    >>> b = s.screen(FeatureExtractor(["a"]).decode(
    ...     [b'{"a": %d, "k": "p%d"}' % (i, i % 3) for i in range(30)] + [b'{"a": 1}']))
    >>> [r.reason for r in b.rejected], len(s.process(b, None).scores), s.ready
    (['invalid_key'], 30, True)
    """

    def __init__(self, detector: KeyedDetector, parts: Sequence[str],
                 save_keys: Any) -> None:
        self.detector = detector
        self.parts = list(parts)
        self._save_keys = save_keys
        self._batch: DecodedBatch | None = None
        self._keys: list[str] = []

    @property
    def ready(self) -> bool:
        """True once the population model is fitted (every key scores and flags from then)."""
        return self.detector.population_ is not None

    def screen(self, decoded: DecodedBatch) -> DecodedBatch:
        """The rows with a usable key (the others are rejected as ``invalid_key``)."""
        self._batch, self._keys = screen_keys(decoded, self.parts)
        return self._batch

    def keys(self, decoded: DecodedBatch) -> list[str]:
        """The entity keys of the rows of ``decoded`` (the batch :meth:`screen` returned)."""
        if decoded is not self._batch:
            self.screen(decoded)
        return self._keys

    def process(self, decoded: DecodedBatch, learn: NDArray[np.bool_] | None
                ) -> DetectionResult:
        """``KeyedDetector.process`` of the rows under their keys, on the event clock."""
        keys = self.keys(decoded)
        times = decoded.seconds
        now = None if times is None or not np.isfinite(times).all() else times
        return self.detector.process(decoded.X, np.array(keys, dtype=object), learn, now=now)

    def explain(self, decoded: DecodedBatch, i: int) -> list[FeatureContribution]:
        """``KeyedDetector.explain`` of row ``i`` under its own key's model."""
        return self.detector.explain(decoded.X[i], self.keys(decoded)[i])

    def key(self, decoded: DecodedBatch, i: int) -> str | None:
        """The entity key of row ``i`` (a composite key joined, :mod:`~streamem.runtime.keying`)."""
        return self.keys(decoded)[i]

    def health(self) -> Mapping[str, Any]:
        """Events, anomalies and readiness in ``Detector.health`` terms, plus the key counts
        (``keys_in_memory``, ``keys_warming``, ``keys_evicted``, ...)."""
        d = self.detector
        c = d.counters()
        return {"ready": float(self.ready), "events": float(d.n_events_),
                "anomalies": float(d.n_anomalies_), "alert_rate_target": d.alert_rate,
                "keys_active": float(c["keys_created"] - c["keys_forgotten"]),
                **{k: float(v) for k, v in c.items()}}

    def save(self, store: CheckpointStore, lane: LaneState, parsing: Mapping[str, Any],
             feedback: Mapping[str, Any]) -> None:
        """The dirty keys, the meta, positions, counters and parsing in one key-store
        transaction (the snapshot store is not used for a keyed lane). Verdicts are not
        kept here: per-key models do not learn false positives yet (their suppressions and
        the verdict history live in the operator page's history, saved with it)."""
        self._save_keys(self.detector, lane, parsing)
