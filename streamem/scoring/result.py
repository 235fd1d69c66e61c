"""``DetectionResult``: the per-event outcome of :meth:`streamem.Detector.process`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

__all__ = ["DetectionResult", "concat_results", "warming_result"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class DetectionResult:
    """Per-event outcome of :meth:`Detector.process`; every array has shape (n_samples,).

    Attributes
    ----------
    scores
        Anomaly score = negative log-likelihood in original units (higher = more anomalous);
        NaN for the first 31 events (not scored).
    tail_probability
        Calibrated probability of an event at least this unlikely (the Student-t tail while
        warming up, the chi-square mixture bound after).
    surprise
        ``-log10(tail_probability)``: the scale the threshold works on.
    threshold
        Tail-probability threshold in force when the event was scored:
        ``is_anomaly == tail_probability < threshold``.
    severity
        0-100; 75 at the threshold.
    is_anomaly
        Flagged events.
    learned
        Events the model learns from (normal ones, or all of them in a regime change).
    warming_up
        Events seen before the mixture was fitted: scored under the provisional Student-t
        model (from the 32nd event on) or, for the first 31, not scored.

    Examples
    --------
    >>> r = warming_result(2)
    >>> r.warming_up.tolist(), r.is_anomaly.tolist(), len(r)
    ([True, True], [False, False], 2)
    """

    scores: Array
    tail_probability: Array
    surprise: Array
    threshold: Array
    severity: Array
    is_anomaly: NDArray[np.bool_]
    learned: NDArray[np.bool_]
    warming_up: NDArray[np.bool_]

    @property
    def log_likelihood(self) -> Array:
        """``-scores``: the log-likelihood in original units.

        Examples
        --------
        >>> bool(np.isnan(warming_result(1).log_likelihood[0]))
        True
        """
        return -self.scores

    def __len__(self) -> int:
        return len(self.scores)


def warming_result(n: int, learned: NDArray[np.bool_] | None = None) -> DetectionResult:
    """Result for ``n`` events buffered unscored (the first 31): NaN scores, nothing flagged.

    Parameters
    ----------
    n
        Number of events.
    learned
        Shape (n,): which of them were buffered for learning (None: all).

    Returns
    -------
    DetectionResult

    Examples
    --------
    >>> bool(np.isnan(warming_result(1).scores[0]))
    True
    """
    nan = np.full(n, np.nan)
    yes = np.ones(n, dtype=bool)  # warm-up events are learned by the initial fit
    return DetectionResult(
        nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.zeros(n, dtype=bool),
        yes.copy() if learned is None else learned.copy(), yes,
    )


def concat_results(a: DetectionResult, b: DetectionResult) -> DetectionResult:
    """Concatenate two results event-wise (``a`` first).

    Parameters
    ----------
    a, b
        Results of consecutive parts of one batch.

    Returns
    -------
    DetectionResult

    Examples
    --------
    >>> len(concat_results(warming_result(2), warming_result(3)))
    5
    """
    parts = [np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(a)]
    return DetectionResult(*parts)
