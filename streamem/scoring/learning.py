"""Deferred learning: scored events wait until ``learn_every`` have gathered, then one
vectorised step learns them, accepts a new regime or updates the threshold.

Scoring always uses the model as it was; what waits, and when it is learned, is
deterministic and part of the detector's state, so a restored detector continues exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from streamem.model.gmm import OnlineGMM
from streamem.scoring.acceptance import accept_regime, is_coherent
from streamem.scoring.drift import DriftMonitor
from streamem.scoring.regime import RegimeTracker
from streamem.scoring.threshold import Threshold

__all__ = ["Pending", "PendingEvents", "learn_pending", "learnable"]

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]


class Pending(NamedTuple):
    """Scored events not yet learned, in scaled units.

    Examples
    --------
    >>> import numpy as np
    >>> p = Pending(np.zeros((2, 1)), np.zeros((2, 1)), np.ones(2), np.zeros(2, bool),
    ...             np.ones(2, bool))
    >>> len(p.surprise)
    2
    """

    Z: Array
    """Shape (n, n_features)."""
    log_resp: Array
    """Shape (n, n_components): log responsibilities from scoring."""
    surprise: Array
    """Shape (n,): the surprises compared with the threshold."""
    flagged: Mask
    """Shape (n,)."""
    allow: Mask
    """Shape (n,): may be learned (the caller's ``learn`` mask)."""
    times: Array | None = None
    """Shape (n,): event times in seconds (NaN: unknown), or None (none were given)."""


def learnable(flagged: Mask, allow: Mask, protect_model: bool) -> Mask:
    """Events that will be learned: allowed, and not flagged when the model is protected.

    Examples
    --------
    >>> import numpy as np
    >>> learnable(np.array([True, False]), np.array([True, True]), True).tolist()
    [False, True]
    """
    return (~flagged if protect_model else np.ones(len(flagged), dtype=bool)) & allow


class PendingEvents:
    """The scored-but-not-learned events of a detector, batch by batch.

    Parameters
    ----------
    learn_every
        Events that make a learning step due.

    Examples
    --------
    >>> import numpy as np
    >>> q = PendingEvents(learn_every=3)
    >>> q.add(np.zeros((2, 1)), np.zeros((2, 1)), np.ones(2), np.zeros(2, bool), np.ones(2, bool))
    False
    >>> q.add(np.ones((2, 1)), np.zeros((2, 1)), np.ones(2), np.zeros(2, bool), np.ones(2, bool))
    True
    >>> q.take().Z[:, 0].tolist(), len(q)
    ([0.0, 0.0, 1.0, 1.0], 0)
    """

    def __init__(self, learn_every: int) -> None:
        self.learn_every = learn_every
        # plain tuples in Pending's field order (a NamedTuple per scored batch costs more)
        self._batches: list[tuple[Array, Array, Array, Mask, Mask, Array | None]] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, Z: Array, log_resp: Array, surprise: Array, flagged: Mask, allow: Mask,
            times: Array | None = None) -> bool:
        """Queue a scored batch (the fields of :class:`Pending`); True when a learning step
        is due."""
        self._batches.append((Z, log_resp, surprise, flagged, allow, times))
        self._n += len(surprise)
        return self._n >= self.learn_every

    def take(self) -> Pending | None:
        """All queued events as one batch (None when empty); the queue is emptied."""
        if not self._batches:
            return None
        b = self._batches
        if len(b) == 1:
            out = Pending(*b[0])
        else:
            out = Pending(
                np.vstack([p[0] for p in b]),
                # (K, n) layout, as the E-step makes it: the learning kernels run along events
                np.hstack([p[1].T for p in b]).T,
                np.concatenate([p[2] for p in b]),
                np.concatenate([p[3] for p in b]),
                np.concatenate([p[4] for p in b]),
                _join_times([p[5] for p in b], [len(p[2]) for p in b]),
            )
        self._batches = []
        self._n = 0
        return out

    def to_state(self) -> list[list[Any]]:
        """Each batch as ``[Z, log_resp, surprise, flagged, allow]``, then ``times`` when
        it has event times."""
        return [list(p) if p[5] is not None else list(p[:5]) for p in self._batches]

    def load_state(self, state: Sequence[Sequence[Any]]) -> None:
        """Restore :meth:`to_state` output (entries of older states have no ``allow``: all
        their events are learnable)."""
        self._batches = [
            (np.asarray(p[0], dtype=float), np.asarray(p[1], dtype=float),
             np.asarray(p[2], dtype=float), np.asarray(p[3], dtype=bool),
             np.asarray(p[4], dtype=bool) if len(p) > 4 else np.ones(len(p[2]), dtype=bool),
             np.asarray(p[5], dtype=float) if len(p) > 5 else None)
            for p in state
        ]
        self._n = sum(len(p[2]) for p in self._batches)


def _join_times(parts: list[Array | None], sizes: list[int]) -> Array | None:
    """The batches' times end to end (NaN for a batch without), None when none has any."""
    if all(t is None for t in parts):
        return None
    return np.concatenate([np.full(k, np.nan) if t is None else t
                           for t, k in zip(parts, sizes, strict=True)])


def learn_pending(batch: Pending, model: OnlineGMM, drift: DriftMonitor,
                  tracker: RegimeTracker, threshold: Threshold, protect_model: bool
                  ) -> tuple[int, bool]:
    """One learning step: a new regime, or the learnable events into the model and drift
    monitor and the surprises into the threshold.

    Parameters
    ----------
    batch
        The events (see :meth:`PendingEvents.take`).
    model, drift, tracker, threshold
        The detector's parts, changed in place.
    protect_model
        Flagged events are not learned.

    Returns
    -------
    n_learned
        Events that count as learned (all of them when a new regime takes them).
    new_regime
        Whether a new regime was accepted.

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.scoring.threshold import SpotThreshold
    >>> rng = np.random.default_rng(0)
    >>> m = OnlineGMM(n_components=1, n_warmup=100, random_state=0)
    >>> _ = m.partial_fit(rng.normal(size=(100, 2)))
    >>> drift = DriftMonitor(window=50); drift.set_reference(m, rng.normal(size=(100, 2)))
    >>> Z = rng.normal(size=(40, 2)); _, log_resp, _, _ = m._estimate(Z)
    >>> b = Pending(Z, log_resp, np.zeros(40), np.arange(40) < 4, np.ones(40, bool))
    >>> learn_pending(b, m, drift, RegimeTracker(100, 0.5, 2), SpotThreshold(), True)
    (36, False)
    """
    flagged = batch.flagged
    if tracker.observe(batch.Z, flagged):
        accept_regime(model, drift, tracker, tracker.new_regime_events())
        return len(flagged), True
    if tracker.persistent():
        events = tracker.candidate_events()
        if is_coherent(events, model):
            accept_regime(model, drift, tracker, events)
            return len(flagged), True
        tracker.checked()
    learn = learnable(flagged, batch.allow, protect_model)
    n_learn = int(np.count_nonzero(learn))
    if n_learn:
        Z, log_resp, times = batch.Z, batch.log_resp, batch.times
        if n_learn < len(learn):  # np.compress: 2-3x faster than a boolean index here
            Z = np.compress(learn, Z, axis=0)
            log_resp = np.compress(learn, log_resp.T, axis=1).T
            times = None if times is None else np.compress(learn, times)
        model._learn(Z, np.exp(log_resp), times)
        drift.update(Z, model)
    threshold.update(batch.surprise, flagged)
    return n_learn, False
