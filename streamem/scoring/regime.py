"""Regime-change tracking: when most recent events are flagged, the world has changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.model._versioned import StateReader

__all__ = ["RegimeTracker"]

Array = NDArray[np.float64]


class RegimeTracker:
    """Ring buffer of the last ``patience`` events and their anomaly flags.

    A protected model never learns flagged events, so after a lasting change it would alarm
    forever. :meth:`observe` reports a regime change when the buffer is full and at least
    ``fraction`` of its events were flagged; the caller then refits on :attr:`recent`.

    With ``min_events`` it also offers an earlier candidate (:meth:`persistent`): the last
    ``min_events`` events, all seen since the last change, were nearly all (``persistence``)
    flagged. A burst or an incident shorter than ``min_events`` never qualifies; the caller
    decides whether the flagged events form a coherent new regime (and calls
    :meth:`checked` when they do not, which postpones the next candidate by a quarter of
    ``min_events``).

    Parameters
    ----------
    patience
        Events remembered (and the minimum time between two regime changes).
    fraction
        Share of flagged events in the buffer that declares a new regime.
    n_features
        Width of the events.
    min_events
        Length of the persistent run of flags that makes an early candidate (None: off).
    persistence
        Share of flagged events among the last ``min_events`` required for a candidate.

    Examples
    --------
    >>> import numpy as np
    >>> tr = RegimeTracker(patience=10, fraction=0.5, n_features=2)
    >>> tr.observe(np.zeros((10, 2)), np.zeros(10, dtype=bool))
    False
    >>> tr.observe(np.ones((6, 2)), np.ones(6, dtype=bool))
    True
    >>> tr.recent.shape
    (10, 2)
    """

    def __init__(
        self,
        patience: int,
        fraction: float,
        n_features: int,
        min_events: int | None = None,
        persistence: float = 0.9,
    ) -> None:
        self.patience = patience
        self.fraction = fraction
        self.min_events = None if min_events is None else min(int(min_events), patience)
        self.persistence = persistence
        self.recent = np.zeros((patience, n_features))
        self.flags = np.zeros(patience, dtype=bool)
        self.pos = 0
        self.full = False
        self.n_since_reset = 0
        self.n_since_check = 0

    def observe(self, Z: Array, flagged: NDArray[np.bool_]) -> bool:
        """Remember a batch; True when a new regime is declared.

        Parameters
        ----------
        Z
            Shape (n, n_features), the (scaled) events.
        flagged
            Shape (n,), their anomaly flags.

        Returns
        -------
        bool

        Examples
        --------
        >>> import numpy as np
        >>> tr = RegimeTracker(patience=4, fraction=0.5, n_features=1)
        >>> tr.observe(np.ones((3, 1)), np.ones(3, dtype=bool))   # buffer not yet full
        False
        """
        P = self.patience
        n = len(Z)
        self.n_since_reset += n
        self.n_since_check += n
        if n >= P:
            self.recent[:] = Z[-P:]
            self.flags[:] = flagged[-P:]
            self.pos, self.full = 0, True
        else:  # ring buffer: at most two slice copies
            head = min(n, P - self.pos)
            self.recent[self.pos : self.pos + head] = Z[:head]
            self.flags[self.pos : self.pos + head] = flagged[:head]
            self.recent[: n - head] = Z[head:]
            self.flags[: n - head] = flagged[head:]
            self.full = self.full or self.pos + n >= P
            self.pos = int((self.pos + n) % P)
        if not self.full or not flagged.any():
            return False
        return bool(np.count_nonzero(self.flags) / P >= self.fraction)

    def _last(self, m: int) -> tuple[Array, NDArray[np.bool_]]:
        """The last ``m`` events and flags, oldest first."""
        order = (self.pos - m + np.arange(m)) % self.patience
        return self.recent[order], self.flags[order]

    def persistent(self) -> bool:
        """True when the last ``min_events`` events (all since the last change) are nearly
        all flagged and no failed check happened in the last ``min_events // 4`` events.

        Returns
        -------
        bool

        Examples
        --------
        >>> import numpy as np
        >>> tr = RegimeTracker(patience=100, fraction=0.5, n_features=1, min_events=20)
        >>> _ = tr.observe(np.zeros((50, 1)), np.zeros(50, dtype=bool))
        >>> _ = tr.observe(np.ones((17, 1)), np.ones(17, dtype=bool))   # 17 of the last 20
        >>> tr.persistent()
        False
        >>> _ = tr.observe(np.ones((1, 1)), np.ones(1, dtype=bool)); tr.persistent()  # 18
        True
        >>> tr.checked(); tr.persistent()
        False
        """
        m = self.min_events
        if m is None or self.n_since_reset < m or self.n_since_check < max(m // 4, 1):
            return False
        return bool(self._last(m)[1].mean() >= self.persistence)

    def checked(self) -> None:
        """Record a failed coherence check: the next candidate comes ``min_events // 4``
        events later at the earliest.

        Examples
        --------
        >>> tr = RegimeTracker(10, 0.5, 1, min_events=8); tr.checked(); tr.n_since_check
        0
        """
        self.n_since_check = 0

    def candidate_events(self) -> Array:
        """The flagged events among the last ``min_events``, oldest first.

        Examples
        --------
        >>> import numpy as np
        >>> tr = RegimeTracker(patience=6, fraction=0.5, n_features=1, min_events=3)
        >>> _ = tr.observe(np.arange(6.0)[:, None], np.array([0, 0, 0, 1, 0, 1], dtype=bool))
        >>> tr.candidate_events()[:, 0].tolist()
        [3.0, 5.0]
        """
        Z, f = self._last(self.min_events or self.patience)
        return np.asarray(Z[f].copy())

    def new_regime_events(self) -> Array:
        """The most recent events, as many as were flagged, oldest first: the new regime.

        Right after an abrupt change nearly every new event is flagged and the old ones are
        not, so the last ``flags.sum()`` events are (mostly) the new regime only; refitting on
        the whole buffer would mix both regimes into one model.

        Examples
        --------
        >>> import numpy as np
        >>> tr = RegimeTracker(patience=4, fraction=0.5, n_features=1)
        >>> _ = tr.observe(np.arange(6.0)[:, None], np.array([0, 0, 0, 0, 1, 1], dtype=bool))
        >>> tr.new_regime_events()[:, 0].tolist()
        [4.0, 5.0]
        """
        m = max(int(self.flags.sum()), 1)
        order = (self.pos + np.arange(self.patience)) % self.patience  # oldest first
        return np.asarray(self.recent[order[-m:]].copy())

    def reset(self) -> None:
        """Forget the flags after a regime change (the events stay, unused until refilled).

        Examples
        --------
        >>> import numpy as np
        >>> tr = RegimeTracker(2, 0.5, 1); _ = tr.observe(np.ones((2, 1)), np.ones(2, dtype=bool))
        >>> tr.reset(); tr.full, int(tr.flags.sum())
        (False, 0)
        """
        self.flags[:] = False
        self.full = False
        self.pos = 0
        self.n_since_reset = 0
        self.n_since_check = 0

    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars.

        Examples
        --------
        >>> tr = RegimeTracker(10, 0.5, 2)
        >>> RegimeTracker.from_state(tr.to_state()).patience
        10
        """
        return {
            "patience": self.patience, "fraction": self.fraction,
            "recent": self.recent.copy(), "recent_flags": self.flags.copy(),
            "recent_pos": self.pos, "recent_full": self.full,
            "min_events": self.min_events, "persistence": self.persistence,
            "n_since_reset": self.n_since_reset, "n_since_check": self.n_since_check,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RegimeTracker:
        """Rebuild from :meth:`to_state` (a defect raises :class:`~streamem.StateError`).

        Examples
        --------
        >>> RegimeTracker.from_state(RegimeTracker(12, 0.5, 3).to_state()).recent.shape
        (12, 3)
        """
        r = StateReader.of(state, "RegimeTracker")
        with r.guard():
            recent = r.array("recent")
            # min_events is absent in snapshots from before the early path
            min_events = None if r.get("min_events") is None else r.integer("min_events")
            tr = cls(r.integer("patience"), r.number("fraction"), recent.shape[1], min_events,
                     r.number("persistence", 0.9))
            tr.recent = recent.copy()
            tr.flags = r.array("recent_flags", bool).copy()
            tr.pos = r.integer("recent_pos")
            tr.full = r.flag("recent_full")
            tr.n_since_reset = r.integer("n_since_reset", 0)
            tr.n_since_check = r.integer("n_since_check", 0)
            return tr
