"""SKAB's leaderboard scores: pooled binary F1/FAR/MAR and the NAB-like changepoint score.

The formulas follow the SKAB repository (``core/metrics.py``, waico/SKAB at commit b2c0d46)
as summarised in ``shared/data/skab/SOURCE.md``:

* binary: sum TP, FP, TN, FN over all files, then ``F1 = TP / (TP + (FP + FN) / 2)``,
  ``FAR = FP / (FP + TN) × 100``, ``MAR = FN / (FN + TP) × 100``;
* changepoints: each true changepoint ``t`` gets the window ``[t, t + width]`` (``righter``);
  when windows overlap the later one is cut to start where the earlier ends
  (``cut right window``). The first prediction inside a window scores
  ``y[int((t_pred - start) / (end - start) × 1000)]`` on the tanh ramp
  ``y(x) = (A_tp − A_fp)/2 · (−tanh(x) / tanh(π/2)) + (A_tp − A_fp)/2 + A_fp`` with
  ``x = linspace(−π/2, π/2, 1000)``; every prediction outside all windows scores ``A_fp``;
  every window without a prediction scores ``A_fn``. Totals over files give
  ``100 × (S − S_null) / (S_perfect − S_null)``.

SKAB rounds the printed figures to two decimals; these functions return them unrounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError
from streamem.evaluation.metrics import Confusion

__all__ = [
    "PROFILES",
    "NabCounts",
    "NabResult",
    "changepoint_predictions",
    "nab_counts",
    "nab_score",
    "nab_windows",
    "skab_binary",
]

#: NAB application profiles as SKAB defines them: name -> (A_tp, A_fp, A_fn).
PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, -0.11, -1.0),
    "low_fp": (1.0, -0.22, -1.0),
    "low_fn": (1.0, -0.11, -2.0),
}

_DETAIL = 1000
_RAMP_X = np.linspace(-np.pi / 2, np.pi / 2, _DETAIL)


def skab_binary(counts: Confusion) -> tuple[float, float, float]:
    """SKAB's outlier-detection row from a pooled confusion matrix.

    Parameters
    ----------
    counts
        TP/FP/TN/FN summed over all test parts.

    Returns
    -------
    tuple of float
        ``(F1, FAR %, MAR %)``.

    Examples
    --------
    >>> skab_binary(Confusion(tp=6, fp=2, tn=8, fn=4))
    (0.6666666666666666, 20.0, 40.0)
    """
    return counts.f1, 100.0 * counts.false_alarm_rate, 100.0 * counts.miss_rate


def changepoint_predictions(is_anomaly: ArrayLike) -> NDArray[np.bool_]:
    """Turn a 0/1 outlier series into predicted changepoints as SKAB's notebooks do.

    ``cp[0] = pred[0]`` and ``cp[i] = |pred[i] − pred[i−1]|``: every rising *and* falling
    edge of the alarm series is a predicted changepoint.

    Parameters
    ----------
    is_anomaly
        Shape (n,), 0/1.

    Returns
    -------
    ndarray of bool
        Shape (n,).

    Examples
    --------
    >>> changepoint_predictions([1, 1, 0, 0, 1, 0]).astype(int).tolist()
    [1, 0, 1, 0, 1, 1]
    """
    p = np.asarray(is_anomaly).astype(np.int8)
    if p.ndim != 1:
        raise InvalidInputError(f"is_anomaly must be 1-D, got shape {p.shape}")
    out = np.zeros(p.size, dtype=bool)
    if p.size:
        out[0] = bool(p[0])
        out[1:] = np.abs(np.diff(p)) == 1
    return out


def nab_windows(changepoints: ArrayLike, width: float) -> NDArray[np.float64]:
    """Scoring windows ``[t, t + width]`` for sorted changepoint times, overlaps cut.

    Parameters
    ----------
    changepoints
        True changepoint times, shape (m,), non-decreasing (seconds).
    width
        Window width in the same unit (SKAB: 60 s).

    Returns
    -------
    ndarray
        Shape (m, 2): start, end. Where window i reaches into window i+1, window i+1 starts
        at window i's end (SKAB's ``cut right window``).

    Examples
    --------
    >>> nab_windows([0, 30, 200], 60).tolist()
    [[0.0, 60.0], [60.0, 90.0], [200.0, 260.0]]
    """
    cps = np.asarray(changepoints, dtype=float).reshape(-1)
    if np.any(np.diff(cps) < 0):
        raise InvalidInputError("changepoint times must be sorted; sort them before scoring")
    win = np.stack((cps, cps + width), axis=1) if cps.size else np.zeros((0, 2))
    for i in range(len(win) - 1):
        if win[i, 1] >= win[i + 1, 0]:
            win[i + 1, 0] = win[i, 1]
    return win


def _ramp(position: float, a_tp: float, a_fp: float) -> float:
    y = (a_tp - a_fp) / 2 * -np.tanh(_RAMP_X) / np.tanh(np.pi / 2) + (a_tp - a_fp) / 2 + a_fp
    return float(y[min(int(position * _DETAIL), _DETAIL - 1)])


@dataclass(frozen=True)
class NabCounts:
    """Window bookkeeping of one file (see :func:`nab_counts`).

    Parameters
    ----------
    n_windows
        True changepoints (scoring windows).
    tp_positions
        For each detected window, where its first prediction sits, as a fraction in [0, 1]
        of the window (0 = at the changepoint).
    n_fp
        Predictions outside every window.
    n_fn
        Windows with no prediction (missed changepoints).
    delays
        Time from window start to the first prediction, one per detected window.

    Examples
    --------
    >>> NabCounts(2, (0.0,), 3, 1, (0.0,)).n_fn
    1
    """

    n_windows: int
    tp_positions: tuple[float, ...]
    n_fp: int
    n_fn: int
    delays: tuple[float, ...]

    def raw(self, profile: str) -> tuple[float, float, float]:
        """Raw NAB sums of this file under one profile.

        Parameters
        ----------
        profile
            A key of :data:`PROFILES`.

        Returns
        -------
        tuple of float
            ``(S, S_null, S_perfect)``.

        Examples
        --------
        >>> NabCounts(2, (0.0,), 1, 1, (0.0,)).raw("standard")
        (-0.11, -2.0, 2.0)
        """
        a_tp, a_fp, a_fn = PROFILES[profile]
        s = (
            a_fp * self.n_fp
            + a_fn * self.n_fn
            + sum(_ramp(x, a_tp, a_fp) for x in self.tp_positions)
        )
        return s, self.n_windows * a_fn, self.n_windows * a_tp


def nab_counts(changepoints: ArrayLike, predicted: ArrayLike, width: float = 60.0) -> NabCounts:
    """Match predicted changepoint times to true ones, SKAB-style, for one file.

    Parameters
    ----------
    changepoints
        True changepoint times, shape (m,), sorted (seconds).
    predicted
        Predicted changepoint times, shape (k,) (seconds).
    width
        Window width (SKAB: 60 s to the right of each changepoint).

    Returns
    -------
    NabCounts
        Detected windows, false positives, misses.

    Examples
    --------
    Changepoints at 100 s and 500 s; predictions at 10 s (outside), 130 s (half-way into
    the first window) and 140 s (ignored: only the first one in a window counts).

    >>> c = nab_counts([100, 500], [10, 130, 140])
    >>> c.tp_positions, c.n_fp, c.n_fn
    ((0.5,), 1, 1)
    """
    win = nab_windows(changepoints, width)
    pred = np.sort(np.asarray(predicted, dtype=float).reshape(-1))
    if win.shape[0] == 0:
        return NabCounts(0, (), int(pred.size), 0, ())
    outside = pred < win[0, 0]
    for i in range(len(win)):
        if i + 1 < len(win):
            outside |= (pred > win[i, 1]) & (pred < win[i + 1, 0])
    outside |= pred > win[-1, 1]
    positions: list[float] = []
    delays: list[float] = []
    n_fn = 0
    for start, end in win:
        inside = pred[(pred >= start) & (pred <= end)]
        if inside.size == 0:
            n_fn += 1
            continue
        span = end - start
        positions.append(float((inside[0] - start) / span) if span > 0 else 0.0)
        delays.append(float(inside[0] - start))
    return NabCounts(int(win.shape[0]), tuple(positions), int(outside.sum()), n_fn, tuple(delays))


@dataclass(frozen=True)
class NabResult:
    """SKAB's changepoint row (see :func:`nab_score`).

    Parameters
    ----------
    standard, low_fp, low_fn
        NAB scores in percent under the three profiles (100 = perfect, 0 = null detector).
    n_changepoints
        True changepoints scored.
    missed
        Changepoints with no prediction in their window.
    false_positives
        Predictions outside every window.
    mean_delay
        Mean time from changepoint window start to the first prediction.

    Examples
    --------
    >>> NabResult(50.0, 40.0, 60.0, 10, 2, 5, 12.0).missed
    2
    """

    standard: float
    low_fp: float
    low_fn: float
    n_changepoints: int
    missed: int
    false_positives: int
    mean_delay: float


def nab_score(files: Sequence[NabCounts]) -> NabResult:
    """Pool per-file NAB bookkeeping into SKAB's percentage scores.

    Parameters
    ----------
    files
        One :class:`NabCounts` per file.

    Returns
    -------
    NabResult
        ``100 × (S − S_null) / (S_perfect − S_null)`` per profile, summed over files.

    Examples
    --------
    One changepoint found right at its start, one missed, no false positives:
    standard = 100 × ((1 − 1) − (−2)) / (2 − (−2)) = 50.

    >>> r = nab_score([nab_counts([100, 500], [100])])
    >>> round(r.standard, 2), r.missed
    (50.0, 1)
    """
    scores: dict[str, float] = {}
    for profile in PROFILES:
        tot = np.zeros(3)
        for f in files:
            tot += np.array(f.raw(profile))
        s, s_null, s_perfect = tot
        den = s_perfect - s_null
        scores[profile] = float(100.0 * (s - s_null) / den) if den else 0.0
    delays = [d for f in files for d in f.delays]
    return NabResult(
        standard=scores["standard"],
        low_fp=scores["low_fp"],
        low_fn=scores["low_fn"],
        n_changepoints=sum(f.n_windows for f in files),
        missed=sum(f.n_fn for f in files),
        false_positives=sum(f.n_fp for f in files),
        mean_delay=float(np.mean(delays)) if delays else float("nan"),
    )
