"""Event time in the :class:`~streamem.Detector`: the ``times=`` of a batch, checked, and the
clock the mixture's forgetting starts from after the warm-up.

A ``half_life`` given as a duration (``"7d"``, ``"90m"``) is measured in event time
(:mod:`streamem.model._forgetting`): every batch then needs one timestamp (seconds) per
event. A half-life in events ignores the timestamps. The warm-up events are fitted at
equal weight by batch EM; their latest timestamp starts the mixture's clock, so the first
live event decays the warm-up by the gap since it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.model._forgetting import check_half_life
from streamem.model.gmm import OnlineGMM

__all__ = ["check_times", "in_event_time", "start_clock", "warm_clock"]

Array = NDArray[np.float64]


def in_event_time(half_life: object) -> bool:
    """True when ``half_life`` is a duration (event time).

    Examples
    --------
    >>> in_event_time(50_000), in_event_time("7d")
    (False, True)
    """
    return check_half_life(half_life)[0] == "seconds"


def check_times(times: ArrayLike | None, n: int, half_life: object) -> Array | None:
    """The batch's timestamps as floats (seconds; NaN = unknown), or None (none given, or
    a half-life in events, which does not use them).

    Parameters
    ----------
    times
        Shape (n,): epoch seconds, or ``datetime64`` values.
    n
        Rows in the batch.
    half_life
        The detector's ``half_life``.

    Raises
    ------
    InvalidInputError
        No times with a half-life in event time, or the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> check_times(np.array(["2026-01-01T00:00:01"], dtype="datetime64[s]"), 1, "1h").tolist()
    [1767225601.0]
    >>> check_times(None, 3, "7d")
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: half_life='7d' is in event time; pass times= ...
    """
    timed = in_event_time(half_life)
    if times is None or not timed:  # a half-life in events does not read the times
        if timed:
            raise InvalidInputError(
                f"half_life={half_life!r} is in event time; pass times= (epoch seconds, one per "
                "event) to process(), or give half_life as a number of events (50000)"
            )
        return None
    raw = np.asarray(times)
    if np.issubdtype(raw.dtype, np.datetime64):
        ts = raw.astype("datetime64[ns]").astype(np.int64) / 1e9
        ts = np.where(np.isnat(raw), np.nan, ts)
    else:
        ts = np.asarray(raw, dtype=float)
    ts = ts.reshape(-1)
    if len(ts) != n:
        raise InvalidInputError(f"times has {len(ts)} entries for {n} events; give one "
                                "timestamp (seconds) per row of X")
    out: Array = np.where(np.isfinite(ts), ts, np.nan)
    return out


def warm_clock(clock: float, times: Array | None) -> float:
    """The running maximum of the warm-up timestamps (NaN: none seen).

    Examples
    --------
    >>> import numpy as np
    >>> warm_clock(float("nan"), np.array([5.0, np.nan, 3.0])), warm_clock(7.0, None)
    (5.0, 7.0)
    """
    if times is None or not len(times):
        return clock
    return float(np.fmax(clock, np.nanmax(np.append(times, np.nan))))


def start_clock(model: OnlineGMM, clock: float) -> None:
    """Start the fitted mixture's event-time clock at the warm-up's latest event.

    Examples
    --------
    >>> import numpy as np
    >>> m = OnlineGMM(n_components=1, n_warmup=20, half_life="1h", random_state=0)
    >>> _ = m.partial_fit(np.random.default_rng(0).normal(size=(20, 2)))
    >>> start_clock(m, 60.0); m._forget.clock
    60.0
    """
    if not math.isnan(clock):
        model._forget.observe(np.array([clock]))
