"""Detection-quality metrics on labelled streams (pure numpy).

Point metrics treat every event on its own; event metrics treat each contiguous run of
label 1 as one *event* that counts as detected when any alarm falls inside it. Ranking
metrics (ROC-AUC, average precision) use the raw scores and need no threshold; they match
``sklearn.metrics.roc_auc_score`` and ``average_precision_score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError

__all__ = [
    "Confusion",
    "EventMetrics",
    "average_precision",
    "confusion",
    "detection_delays",
    "event_metrics",
    "event_windows",
    "false_alarm_rate",
    "roc_auc",
]


def _binary(values: ArrayLike, name: str) -> NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(
            f"{name} must be 1-D, got shape {arr.shape}; pass one value per event"
        )
    if arr.dtype != np.bool_:
        bad = ~np.isin(arr, (0, 1))
        if bad.any():
            raise InvalidInputError(
                f"{name} must hold only 0/1 or booleans, found {arr[bad][0]!r}; "
                "threshold scores first or pass the is_anomaly array"
            )
    return arr.astype(bool)


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    t, p = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if t.shape != p.shape:
        raise InvalidInputError(
            f"y_true has {t.size} values but y_pred has {p.size}; pass arrays of equal length"
        )
    return t, p


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


@dataclass(frozen=True)
class Confusion:
    """Point-wise confusion counts; ``a + b`` pools two streams (micro-averaging).

    Parameters
    ----------
    tp, fp, tn, fn
        True positives, false positives, true negatives, false negatives.

    Examples
    --------
    >>> c = Confusion(tp=3, fp=1, tn=5, fn=1)
    >>> c.precision, c.recall, c.f1
    (0.75, 0.75, 0.75)
    >>> (c + c).tp
    6
    """

    tp: int
    fp: int
    tn: int
    fn: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn
        )

    @property
    def n(self) -> int:
        """Number of events counted."""
        return self.tp + self.fp + self.tn + self.fn

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing was flagged."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when there are no positives."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """TP / (TP + (FP + FN) / 2), the harmonic mean of precision and recall."""
        return _ratio(self.tp, self.tp + (self.fp + self.fn) / 2)

    @property
    def false_alarm_rate(self) -> float:
        """FP / (FP + TN), a fraction (SKAB's FAR is this × 100)."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def miss_rate(self) -> float:
        """FN / (FN + TP), a fraction (SKAB's MAR is this × 100)."""
        return _ratio(self.fn, self.fn + self.tp)


def confusion(y_true: ArrayLike, y_pred: ArrayLike) -> Confusion:
    """Count the point-wise confusion matrix.

    Parameters
    ----------
    y_true
        Labels, shape (n,), 1 = anomalous.
    y_pred
        Alarms, shape (n,), 1 = flagged.

    Returns
    -------
    Confusion
        The four counts with precision, recall, F1 and rates as properties.

    Examples
    --------
    >>> confusion([0, 1, 1, 0, 0], [0, 1, 0, 1, 0])
    Confusion(tp=1, fp=1, tn=2, fn=1)
    """
    t, p = _pair(y_true, y_pred)
    return Confusion(
        tp=int(np.sum(t & p)),
        fp=int(np.sum(~t & p)),
        tn=int(np.sum(~t & ~p)),
        fn=int(np.sum(t & ~p)),
    )


def false_alarm_rate(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of normal events that were flagged, FP / (FP + TN).

    Parameters
    ----------
    y_true
        Labels, shape (n,).
    y_pred
        Alarms, shape (n,).

    Returns
    -------
    float
        In [0, 1]; 0 when there are no normal events.

    Examples
    --------
    >>> false_alarm_rate([0, 0, 0, 0, 1], [1, 0, 0, 0, 1])
    0.25
    """
    return confusion(y_true, y_pred).false_alarm_rate


def event_windows(labels: ArrayLike) -> list[tuple[int, int]]:
    """Split labels into events: maximal runs of 1, as half-open ``(start, stop)`` pairs.

    Parameters
    ----------
    labels
        Shape (n,), 0/1.

    Returns
    -------
    list of tuple of int
        ``labels[start:stop]`` is all ones for each pair, in order.

    Examples
    --------
    >>> event_windows([0, 1, 1, 0, 1, 0, 0, 1])
    [(1, 3), (4, 5), (7, 8)]
    """
    lab = _binary(labels, "labels").astype(np.int8)
    edges = np.diff(np.concatenate(([0], lab, [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def detection_delays(
    y_true: ArrayLike, y_pred: ArrayLike, timestamps: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Delay from each event's start to its first alarm inside the event.

    Parameters
    ----------
    y_true
        Labels, shape (n,).
    y_pred
        Alarms, shape (n,).
    timestamps
        Optional times, shape (n,), increasing; without them delays are in events.

    Returns
    -------
    ndarray
        Shape (n_events,); NaN for an event with no alarm inside it.

    Examples
    --------
    >>> detection_delays([0, 1, 1, 1, 0, 1, 1], [0, 0, 0, 1, 0, 0, 0]).tolist()
    [2.0, nan]
    """
    t, p = _pair(y_true, y_pred)
    times = np.arange(t.size, dtype=float) if timestamps is None else np.asarray(timestamps, float)
    if times.shape != t.shape:
        raise InvalidInputError(
            f"timestamps has {times.size} values for {t.size} labels; pass one time per event"
        )
    out = np.full(len(event_windows(t)), np.nan)
    for i, (a, b) in enumerate(event_windows(t)):
        hits = np.flatnonzero(p[a:b])
        if hits.size:
            out[i] = times[a + hits[0]] - times[a]
    return out


@dataclass(frozen=True)
class EventMetrics:
    """Event-level detection summary (see :func:`event_metrics`).

    Parameters
    ----------
    n_events
        Labelled events (runs of 1).
    n_detected
        Events with at least one alarm inside.
    n_alarm_runs
        Runs of consecutive alarms.
    n_false_alarm_runs
        Alarm runs that touch no labelled event.
    mean_delay
        Mean delay of the detected events (NaN if none).

    Examples
    --------
    >>> EventMetrics(4, 3, 5, 1, 2.0).recall
    0.75
    """

    n_events: int
    n_detected: int
    n_alarm_runs: int
    n_false_alarm_runs: int
    mean_delay: float

    @property
    def recall(self) -> float:
        """Detected events / events."""
        return _ratio(self.n_detected, self.n_events)

    @property
    def precision(self) -> float:
        """Alarm runs that touch an event / alarm runs."""
        return _ratio(self.n_alarm_runs - self.n_false_alarm_runs, self.n_alarm_runs)

    @property
    def f1(self) -> float:
        """Harmonic mean of event precision and event recall."""
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r)


def event_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, timestamps: ArrayLike | None = None
) -> EventMetrics:
    """Score detection per event window instead of per point.

    An event is a maximal run of label 1. It is detected if any alarm falls inside it; an
    alarm run (maximal run of flagged events) is false if it overlaps no event.

    Parameters
    ----------
    y_true
        Labels, shape (n,).
    y_pred
        Alarms, shape (n,).
    timestamps
        Optional times for the delay, shape (n,).

    Returns
    -------
    EventMetrics
        Counts, mean delay, and event precision/recall/F1 as properties.

    Examples
    --------
    >>> m = event_metrics([0, 1, 1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 1, 0, 0, 1])
    >>> m.n_events, m.n_detected, m.n_alarm_runs, m.n_false_alarm_runs, m.mean_delay
    (2, 1, 3, 2, 1.0)
    """
    t, p = _pair(y_true, y_pred)
    delays = detection_delays(t, p, timestamps)
    runs = event_windows(p)
    false_runs = sum(1 for a, b in runs if not t[a:b].any())
    detected = int(np.sum(~np.isnan(delays)))
    mean = float(np.nanmean(delays)) if detected else float("nan")
    return EventMetrics(len(delays), detected, len(runs), false_runs, mean)


def _check_scores(
    y_true: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    t = _binary(y_true, "y_true")
    s = np.asarray(scores, dtype=float)
    if s.shape != t.shape:
        raise InvalidInputError(
            f"scores has shape {s.shape}, labels {t.shape}; pass one score per event"
        )
    if not np.isfinite(s).all():
        raise InvalidInputError("scores contain NaN or inf; drop warm-up events (NaN scores) first")
    if t.all() or not t.any():
        raise InvalidInputError(
            "ranking metrics need both classes in y_true; this stream has only one"
        )
    return t, s


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties).

    Parameters
    ----------
    y_true
        Labels, shape (n,), both classes present.
    scores
        Higher = more anomalous, shape (n,), finite.

    Returns
    -------
    float
        Probability that a random positive outscores a random negative (ties count 1/2).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    t, s = _check_scores(y_true, scores)
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size)
    # mid-ranks: every member of a tie group gets the mean of the group's 1-based ranks
    uniq_start = np.flatnonzero(np.concatenate(([True], sorted_s[1:] != sorted_s[:-1])))
    uniq_stop = np.concatenate((uniq_start[1:], [s.size]))
    mid = (uniq_start + uniq_stop + 1) / 2.0
    ranks[order] = np.repeat(mid, uniq_stop - uniq_start)
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Average precision (area under the precision-recall step curve).

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds in decreasing
    order, the definition scikit-learn uses (no interpolation).

    Parameters
    ----------
    y_true
        Labels, shape (n,), both classes present.
    scores
        Higher = more anomalous, shape (n,), finite.

    Returns
    -------
    float
        In (0, 1]; the positive rate for uninformative scores.

    Examples
    --------
    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    t, s = _check_scores(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, t_sorted = s[order], t[order]
    last_of_group = np.concatenate((np.flatnonzero(np.diff(s_sorted) != 0), [s.size - 1]))
    tps = np.cumsum(t_sorted)[last_of_group]
    fps = (last_of_group + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))
