"""How much an :class:`~streamem.model.gmm.OnlineGMM` forgets per learning step: in events
or in event time.

A half-life in events gives the stepwise-EM step ``gamma = max(B / (n0 + n), 1 - lambda**B)``
with ``lambda = 2**(-1/h)``. A half-life in event time (``"7d"``, ``"90m"``, or seconds)
keeps the exact exponentially weighted sums instead: with per-event decay factors ``f_t``
from the gaps between timestamps (:func:`~streamem.model._decay.event_time_decay`), the
decayed mass is ``M' = M prod_t f_t + sum_t w_t`` (``w_t = prod_{s>t} f_s``, an event's weight
at the end of its batch), the step is ``gamma = sum_t w_t / M'`` and each event enters the
batch statistics with weight ``w_t``. So a gap of one hour decays the statistics by one hour
however many events it holds, and a single-component model's mean and covariance are the
event-time exponentially weighted ones exactly (tested against a naive sum).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.errors import ConfigError, InvalidInputError
from streamem.model._decay import event_time_decay, parse_half_life, remaining_weights

__all__ = ["Forgetting", "check_half_life"]

Array = NDArray[np.float64]


def check_half_life(value: object) -> tuple[str, float]:
    """``("events", n)`` or ``("seconds", s)`` for a half-life keyword.

    Raises
    ------
    InvalidInputError
        Neither a positive number of events nor a duration.

    Examples
    --------
    >>> check_half_life(500), check_half_life("2h")
    (('events', 500.0), ('seconds', 7200.0))
    >>> check_half_life("soon")
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: half_life='soon' is invalid; ...
    """
    try:
        return parse_half_life(value, "half_life")
    except (ConfigError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"half_life={value!r} is invalid; use a positive number of events (50000) or a "
            f"duration in event time ('7d', '90m') ({exc})"
        ) from None


class Forgetting:
    """The decay of a mixture's statistics per learning step.

    Parameters
    ----------
    half_life
        Events (a number), or event time (a duration string such as ``"7d"``).

    Attributes
    ----------
    unit : {"events", "seconds"}
    half : float
        The half-life in that unit.
    clock : float
        Latest event time learned (NaN: none yet); event time only.
    mass : float
        Decayed number of events behind the statistics; event time only.

    Examples
    --------
    >>> import numpy as np
    >>> f = Forgetting("1h"); f.observe(np.array([0.0])); f.start(100.0)
    >>> gamma, w = f.step(2, np.array([3600.0, 3600.0]))
    >>> round(gamma, 4), w.tolist(), f.mass          # 100 events halve, 2 new ones
    (0.0385, [1.0, 1.0], 52.0)
    >>> Forgetting("1h").step(1, None)
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: half_life='1h' is in event time; pass times= ...
    """

    def __init__(self, half_life: object) -> None:
        self.half_life = half_life
        self.unit, self.half = check_half_life(half_life)
        self.clock = math.nan
        self.mass = 0.0

    @property
    def in_time(self) -> bool:
        """True for a half-life in event time."""
        return self.unit == "seconds"

    def observe(self, timestamps: Array | None) -> None:
        """Move the clock over warm-up events (buffered, learned later by the batch fit)."""
        if timestamps is not None and len(timestamps) and self.in_time:
            self.clock = float(np.fmax(self.clock, np.nanmax(np.append(timestamps, np.nan))))

    def start(self, n_events: float) -> None:
        """Begin after the warm-up fit of ``n_events`` events (they weigh one each)."""
        self.mass = float(n_events)

    def step(self, n: int, timestamps: Array | None, n_total: float = 0.0
             ) -> tuple[float, Array | None]:
        """The step size of a batch of ``n`` events, and their weights (None: equal).

        Parameters
        ----------
        n
            Events in the batch.
        timestamps
            Shape (n,), seconds (NaN: unknown); required in event time.
        n_total
            Events absorbed so far including this batch (``n0 + n_seen``), for the
            count-based step.
        """
        if not self.in_time:
            lam = 2.0 ** (-1.0 / self.half)
            return max(n / n_total, 1.0 - lam**n), None
        if timestamps is None:
            raise InvalidInputError(
                f"half_life={self.half_life!r} is in event time; pass times= (seconds, one per "
                "event) with every batch, or give half_life as a number of events"
            )
        ts = np.asarray(timestamps, dtype=float).reshape(-1)
        if len(ts) != n:
            raise InvalidInputError(f"times has {len(ts)} entries for {n} events; give one "
                                    "timestamp (seconds) per row")
        factors, self.clock = event_time_decay(ts, self.half, self.clock)
        w, total = remaining_weights(factors)
        added = float(w.sum())
        self.mass = self.mass * total + added
        return added / self.mass, w * (n / added)

    def n_eff(self, n_total: float) -> float:
        """Effective number of events behind the statistics."""
        if self.in_time:
            return self.mass
        return float(min(n_total, 1.0 / (1.0 - 2.0 ** (-1.0 / self.half))))

    def window(self) -> float:
        """Events a reservoir sample should represent (the stationary memory)."""
        if self.in_time:
            return float(max(self.mass, 1.0))
        return float(1.0 / (1.0 - 2.0 ** (-1.0 / self.half)))

    def to_state(self) -> dict[str, Any]:
        """``{"clock", "mass"}``."""
        return {"clock": self.clock, "mass": self.mass}

    def load_state(self, state: Mapping[str, Any] | None) -> None:
        """Restore :meth:`to_state` output (None: a state from before event time, whose
        half-life is in events and needs neither)."""
        if state is None:
            self.clock, self.mass = math.nan, 0.0
            return
        self.clock, self.mass = float(state["clock"]), float(state["mass"])
