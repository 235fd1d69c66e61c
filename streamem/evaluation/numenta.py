"""The Numenta Anomaly Benchmark's own scoring: windows, probation, scaled sigmoid, sweep.

This follows NAB's ``nab/sweeper.py`` (numenta/NAB; the benchmark's data commit is
ea702d7): every point of a file gets a weight from where it sits relative to the labelled
anomaly windows, the detector's anomaly scores are swept over every threshold, and the
threshold with the best total over the corpus is the detector's score. In detail:

* the first ``min(floor(0.15 n), 750)`` points of a file are probationary and never count;
* a point inside a window ``[l, r]`` (indices, inclusive, width ``w = r - l + 1``) sits at
  ``x = -(r - i + 1) / w`` and is worth ``A_tp · σ(x) / σ(-1)`` if it is the best detection
  of its window, where ``σ(x) = 2 / (1 + exp(5x)) - 1`` (``-1`` for ``x >= 3``): the first
  point of a window is worth ``A_tp``, later ones less;
* a detection outside every window costs ``A_fp · σ(|i - r_prev| / (w_prev - 1))`` after a
  window (little right after it, ``-A_fp`` far from it) and ``-A_fp`` before the first one;
* a window without a detection costs ``-A_fn``;
* the normalised score is ``100 · (S - S_null) / (S_perfect - S_null)`` with
  ``S_null = -A_fn · windows`` (nothing detected) and ``S_perfect = A_tp · windows``.

A point is detected when its score is at least the threshold. Profiles are NAB's:
standard ``(A_tp, A_fp, A_fn) = (1, 0.11, 1)``, reward low FP ``(1, 0.22, 1)``, reward low
FN ``(1, 0.11, 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streamem.errors import InvalidInputError

__all__ = ["PROFILES", "NabFile", "best_threshold", "nab_file", "normalised", "raw_score",
           "scaled_sigmoid"]

#: NAB cost matrices: name -> (A_tp, A_fp, A_fn).
PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_fp": (1.0, 0.22, 1.0),
    "reward_low_fn": (1.0, 0.11, 2.0),
}

PROBATION = -2  # window id of probationary points
OUTSIDE = -1  # window id of points outside every window


def scaled_sigmoid(x: ArrayLike) -> NDArray[np.float64]:
    """NAB's ``scaledSigmoid``: ``2 / (1 + exp(5x)) - 1``, and -1 from ``x = 3`` on.

    Examples
    --------
    >>> np.round(scaled_sigmoid([-1.0, 0.0, 1.0, 3.0]), 5).tolist()
    [0.98661, 0.0, -0.98661, -1.0]
    """
    v = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * v)) - 1.0
    return np.where(v >= 3.0, -1.0, out)


@dataclass(frozen=True)
class NabFile:
    """One file's sweep weights (see :func:`nab_file`).

    Parameters
    ----------
    position_score
        Per point: ``σ(x) / σ(-1)`` inside a window, ``σ(x)`` outside (before ``A_tp`` or
        ``A_fp`` is applied).
    window
        Per point: the window's index in this file, ``-1`` outside, ``-2`` probationary.
    n_windows
        Windows with at least one scorable (non-probationary) point.

    Examples
    --------
    >>> f = nab_file(100, [(50, 59)])
    >>> f.n_windows, int((f.window == 0).sum()), int((f.window == -2).sum())
    (1, 10, 15)
    """

    position_score: NDArray[np.float64]
    window: NDArray[np.int64]
    n_windows: int


def nab_file(n: int, windows: Sequence[tuple[int, int]], probation: float = 0.15) -> NabFile:
    """Sweep weights of a file of ``n`` points with windows given as inclusive index pairs.

    Parameters
    ----------
    n
        Number of points.
    windows
        ``(first, last)`` indices of each window, sorted, not overlapping.
    probation
        Fraction of the file (at most ``probation × 5000`` points) that never counts.

    Returns
    -------
    NabFile
        The per-point weights and window ids.

    Examples
    --------
    The first point of a window is worth 1 (times ``A_tp``); a detection right after the
    window costs a quarter of ``A_fp``, one far after it the full ``A_fp``.

    >>> f = nab_file(1000, [(400, 409)])
    >>> round(float(f.position_score[400]), 3), round(float(f.position_score[410]), 3)
    (1.0, -0.271)
    >>> float(f.position_score[900])
    -1.0
    """
    idx = np.arange(n)
    pos = np.full(n, -1.0)  # before the first window: sigma(3) = -1
    win = np.full(n, OUTSIDE, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    prev_right, prev_width = -1, 0.0
    for k, (lo, hi) in enumerate(windows):
        if not 0 <= lo <= hi < n or lo <= prev_right:
            raise InvalidInputError(
                f"window {k} = ({lo}, {hi}) must lie in [0, {n}) after the previous one; "
                "pass sorted, non-overlapping index pairs"
            )
        if prev_right >= 0:  # the stretch after the previous window
            after = idx[prev_right + 1 : lo]
            pos[after] = scaled_sigmoid(np.abs(prev_right - after) / max(prev_width - 1.0, 1.0))
        width = float(hi - lo + 1)
        inside = idx[lo : hi + 1]
        pos[inside] = scaled_sigmoid(-(hi - inside + 1) / width) / max_tp
        win[inside] = k
        prev_right, prev_width = hi, width
    if prev_right >= 0:
        after = idx[prev_right + 1 :]
        pos[after] = scaled_sigmoid(np.abs(prev_right - after) / max(prev_width - 1.0, 1.0))
    n_prob = int(min(math.floor(probation * n), probation * 5000))
    win[:n_prob] = PROBATION
    n_windows = len({int(w) for w in win[win >= 0]})
    return NabFile(pos, win, n_windows)


def _check(files: Sequence[NabFile], scores: Sequence[ArrayLike]) -> list[NDArray[np.float64]]:
    if len(files) != len(scores):
        raise InvalidInputError(f"{len(scores)} score arrays for {len(files)} files")
    out = []
    for f, s in zip(files, scores, strict=True):
        a = np.nan_to_num(np.asarray(s, dtype=float), nan=-np.inf)
        if a.shape != f.window.shape:
            raise InvalidInputError(f"scores of shape {a.shape} for a file of {f.window.size}")
        out.append(a)
    return out


def raw_score(
    files: Sequence[NabFile], scores: Sequence[ArrayLike], threshold: float,
    profile: str = "standard",
) -> float:
    """NAB's raw score ``S`` of a corpus at one threshold (NaN scores never detect).

    Examples
    --------
    >>> f = nab_file(1000, [(400, 409)])
    >>> s = np.zeros(1000); s[400] = 1.0; s[900] = 1.0
    >>> round(raw_score([f], [s], 0.5), 2)  # one window hit at its start, one far FP
    0.89
    """
    a_tp, a_fp, a_fn = PROFILES[profile]
    total = 0.0
    for f, s in zip(files, _check(files, scores), strict=True):
        hit = s >= threshold
        fp = hit & (f.window == OUTSIDE)
        total += a_fp * float(f.position_score[fp].sum())
        best = np.full(f.n_windows and int(f.window.max()) + 1, -np.inf)
        inw = hit & (f.window >= 0)
        np.maximum.at(best, f.window[inw], a_tp * f.position_score[inw])
        present = np.unique(f.window[f.window >= 0])
        b = best[present]
        total += float(np.maximum(b, -a_fn).sum())
    return total


def best_threshold(
    files: Sequence[NabFile], scores: Sequence[ArrayLike], profile: str = "standard"
) -> tuple[float, float]:
    """The threshold with the highest corpus score, swept over every distinct score.

    Returns
    -------
    tuple of float
        ``(threshold, S)``; ``(inf, S_null)`` when detecting nothing is best.

    Examples
    --------
    >>> f = nab_file(1000, [(400, 409)])
    >>> s = np.linspace(0, 0.5, 1000); s[405] = 2.0
    >>> t, raw = best_threshold([f], [s])
    >>> t, round(raw, 3)
    (2.0, 0.86)
    """
    a_tp, a_fp, a_fn = PROFILES[profile]
    arrays = _check(files, scores)
    vals, gains = [], []
    base = 0.0
    for f, s in zip(files, arrays, strict=True):
        keep = (f.window != PROBATION) & np.isfinite(s)
        out = keep & (f.window == OUTSIDE)
        vals.append(s[out])
        gains.append(a_fp * f.position_score[out])
        for w in np.unique(f.window[f.window >= 0]):
            base -= a_fn
            m = keep & (f.window == w)
            order = np.argsort(-s[m], kind="stable")
            sw, pw = s[m][order], a_tp * f.position_score[m][order]
            if sw.size == 0:
                continue
            best = np.maximum.accumulate(pw)
            delta = np.diff(np.concatenate(([-a_fn], np.maximum(best, -a_fn))))
            vals.append(sw)
            gains.append(delta)
    v = np.concatenate(vals) if vals else np.zeros(0)
    g = np.concatenate(gains) if gains else np.zeros(0)
    if v.size == 0:
        return float("inf"), base
    order = np.argsort(-v, kind="stable")
    v, g = v[order], g[order]
    curve = base + np.cumsum(g)
    ends = np.concatenate((np.flatnonzero(np.diff(v) != 0), [v.size - 1]))
    k = int(np.argmax(curve[ends]))
    if curve[ends][k] <= base:
        return float("inf"), base
    return float(v[ends][k]), float(curve[ends][k])


def normalised(raw: float, n_windows: int, profile: str = "standard") -> float:
    """``100 · (S - S_null) / (S_perfect - S_null)``; 0 for a corpus without windows.

    Examples
    --------
    >>> normalised(0.0, 2), normalised(2.0, 2), normalised(-2.0, 2)
    (50.0, 100.0, 0.0)
    """
    a_tp, _, a_fn = PROFILES[profile]
    null, perfect = -a_fn * n_windows, a_tp * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0
