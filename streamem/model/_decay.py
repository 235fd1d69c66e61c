"""Per-event decay factors in event time or in event counts, and each event's remaining weight.

A half-life ``h`` seconds decays the statistics by ``2^(-gap / h)`` across a gap of ``gap``
seconds between consecutive events, so a quiet hour ages the model by an hour however few
events it holds. The clock is the running maximum of the timestamps: a late (out-of-order)
event or one without a timestamp (NaN) decays nothing and does not move the clock back.
A half-life in events decays by ``2^(-1/h)`` per event.

Entry point for the config: :func:`parse_half_life` reads ``model.half_life`` (and the regime
and drift windows) as ``("events", n)`` for a number or ``("seconds", s)`` for a duration.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamem.errors import ConfigError

__all__ = ["count_decay", "event_time_decay", "parse_half_life", "remaining_weights"]

Array = NDArray[np.float64]


def parse_half_life(value: object, path: str) -> tuple[str, float]:
    """``("events", n)`` for a number of events, ``("seconds", s)`` for a duration string.

    Parameters
    ----------
    value
        ``10000`` or ``"10000"`` (events), ``"7d"`` or ``"90m"`` (event time).
    path
        The YAML path, for the error message.

    Raises
    ------
    ConfigError
        Neither a positive number nor a duration.

    Examples
    --------
    >>> parse_half_life(10000, "model.half_life"), parse_half_life("90m", "model.half_life")
    (('events', 10000.0), ('seconds', 5400.0))
    >>> parse_half_life("-3", "model.half_life")
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: model.half_life: '-3' is not a positive number of events ...
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    digits = isinstance(value, str) and value.strip().replace(".", "", 1).lstrip("-").isdigit()
    if number or digits:
        n = float(value)  # type: ignore[arg-type]
    else:
        from streamem.config.durations import parse_duration  # config pulls in yaml: lazy

        return "seconds", parse_duration(value, path)
    if not (math.isfinite(n) and n > 0):
        raise ConfigError(path, f"{value!r} is not a positive number of events nor a duration; "
                          "write e.g. 10000 (events) or 7d (event time)")
    return "events", n


def event_time_decay(
    timestamps: Array, half_life_seconds: float, last: float = math.nan
) -> tuple[Array, float]:
    """Decay factor of each event from the gap since the previous one, in seconds.

    Parameters
    ----------
    timestamps
        Event times in seconds (epoch or any origin), shape (n_samples,); NaN = unknown.
    half_life_seconds
        Half-life of the statistics in event time.
    last
        Clock after the previous batch (NaN: none yet, the first event decays nothing).

    Returns
    -------
    factors
        Shape (n_samples,), in (0, 1].
    clock
        The clock after this batch, to pass as ``last`` next time.

    Examples
    --------
    >>> import numpy as np
    >>> f, clock = event_time_decay(np.array([0.0, 3600.0, 3000.0, 7200.0]), 3600.0)
    >>> f.tolist(), clock
    ([1.0, 0.5, 1.0, 0.5], 7200.0)
    """
    ts = np.asarray(timestamps, dtype=float)
    prev = np.array([last], dtype=float)
    clock = np.fmax.accumulate(np.concatenate([prev, ts]))
    gaps = np.diff(clock)
    gaps = np.where(np.isfinite(gaps), np.maximum(gaps, 0.0), 0.0)
    factors: Array = np.exp2(-gaps / half_life_seconds)
    return factors, float(clock[-1])


def count_decay(n_samples: int, half_life_events: float) -> Array:
    """``2^(-1/h)`` for each of ``n_samples`` events.

    Examples
    --------
    >>> count_decay(2, 1.0).tolist()
    [0.5, 0.5]
    """
    return np.full(n_samples, 2.0 ** (-1.0 / half_life_events))


def remaining_weights(factors: Array) -> tuple[Array, float]:
    """Weight of each event at the end of its batch, and the decay of the whole batch.

    ``w_t = prod_{s > t} f_s`` (event ``t``'s statistics decay by every later factor) and
    ``total = prod_s f_s`` (what the statistics from before the batch decay by).

    Parameters
    ----------
    factors
        Per-event decay factors, shape (n_samples,).

    Returns
    -------
    weights
        Shape (n_samples,).
    total
        Scalar.

    Examples
    --------
    >>> import numpy as np
    >>> w, total = remaining_weights(np.array([0.5, 1.0, 0.25]))
    >>> w.tolist(), total
    ([0.25, 0.25, 1.0], 0.125)
    """
    logf = np.log(factors)
    suffix = np.concatenate([np.cumsum(logf[::-1])[::-1][1:], [0.0]])
    return np.exp(suffix), float(np.exp(logf.sum()))
