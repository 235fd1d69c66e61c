"""Generalised Pareto fits for SPOT: Grimshaw's maximum likelihood and the moments fallback.

Grimshaw (1993): the MLE reduces to the roots of ``w(x) = u(x) v(x) - 1`` in
``x = gamma / sigma``; the candidate with the best likelihood wins, the method of moments
included (libspot ``tail_fit`` does the same).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

__all__ = ["fit_gpd", "gpd_log_likelihood"]

Array = NDArray[np.float64]


def gpd_log_likelihood(peaks: Array, gamma: float, sigma: float) -> float:
    """Log-likelihood of excesses under GPD(gamma, sigma); ``-inf`` outside the support.

    Parameters
    ----------
    peaks
        Excesses, shape (n_peaks,).
    gamma, sigma
        Shape and scale.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> round(gpd_log_likelihood(np.array([1.0, 2.0]), 0.0, 1.0), 6)
    -3.0
    """
    if sigma <= 0:
        return -math.inf
    if abs(gamma) < 1e-12:
        return float(-len(peaks) * math.log(sigma) - peaks.sum() / sigma)
    z = 1.0 + gamma * peaks / sigma
    if np.any(z <= 0):
        return -math.inf
    return float(-len(peaks) * math.log(sigma) - (1.0 + 1.0 / gamma) * np.log(z).sum())


def _grimshaw_w(x: Array, peaks: Array) -> Array:
    """Grimshaw's ``w(x) = u(x) v(x) - 1`` for a vector of ``x`` at once."""
    s = np.multiply.outer(x, peaks)
    s += 1.0
    n = peaks.shape[-1]
    u = np.reciprocal(s).sum(axis=-1) / n
    v = np.log(s, out=s).sum(axis=-1) / n
    out: Array = u * (1.0 + v) - 1.0
    return out


def _grimshaw_w1(x: float, peaks: Array, buf: Array) -> float:
    """:func:`_grimshaw_w` at one ``x`` (the root finder's calls), in a scratch buffer."""
    s = np.multiply(peaks, x, out=buf)
    s += 1.0
    n = peaks.shape[-1]
    u = float(np.reciprocal(s).sum()) / n
    v = float(np.log(s, out=s).sum()) / n
    return float(u * (1.0 + v) - 1.0)


def _grimshaw_candidates(peaks: Array) -> list[tuple[float, float]]:
    ymin, ymax, ymean = float(peaks.min()), float(peaks.max()), float(peaks.mean())
    eps = min(2e-8, 0.5 / ymax)

    buf = np.empty_like(peaks)

    def w(x: float) -> float:
        return _grimshaw_w1(x, peaks, buf)

    brackets = [(-1.0 / ymax + eps, -eps)]
    if ymin > 0:
        brackets.append((eps, 2.0 * (ymean - ymin) / ymin**2))
    out = [(0.0, ymean)]
    grids = [np.linspace(lo, hi, 24) for lo, hi in brackets if hi > lo]
    if not grids:
        return out
    all_vals = _grimshaw_w(np.concatenate(grids), peaks)  # every bracket's grid at once
    for k, grid in enumerate(grids):
        vals = all_vals[24 * k : 24 * (k + 1)]
        for j in np.flatnonzero(vals[:-1] * vals[1:] <= 0):
            a, b = float(grid[j]), float(grid[j + 1])
            x = a if vals[j] == 0.0 else float(brentq(w, a, b, xtol=1e-12))
            g = float(np.mean(np.log1p(x * peaks)))
            if x != 0 and g != 0:
                out.append((g, g / x))
    return out


def fit_gpd(peaks: Array) -> tuple[float, float]:
    """Fit GPD(gamma, sigma) to positive excesses: best of Grimshaw roots and moments.

    Parameters
    ----------
    peaks
        Excesses over the high threshold, shape (n_peaks,), positive.

    Returns
    -------
    (gamma, sigma)

    Examples
    --------
    >>> import numpy as np
    >>> g, s = fit_gpd(np.random.default_rng(0).exponential(2.0, 5000))
    >>> abs(g) < 0.05, round(s, 1)
    (True, 2.0)
    """
    peaks = np.asarray(peaks, dtype=float)
    if len(peaks) == 0:
        return 0.0, 1.0
    mean = float(peaks.mean())
    var = float(peaks.var())
    cands = _grimshaw_candidates(peaks) if peaks.max() > 0 else []
    if var > 0:
        ratio = mean * mean / var
        cands.append((0.5 * (1.0 - ratio), 0.5 * mean * (1.0 + ratio)))
    cands.append((0.0, max(mean, 1e-12)))
    lls = _log_likelihoods(peaks, cands)
    best = cands[max(range(len(cands)), key=lls.__getitem__)]  # the first best, as max() did
    return float(best[0]), float(best[1])


def _log_likelihoods(peaks: Array, cands: list[tuple[float, float]]) -> list[float]:
    """:func:`gpd_log_likelihood` of every candidate, the log-sums in one 2-D pass."""
    n = len(peaks)
    lls = [-math.inf] * len(cands)
    rows = [i for i, (g, s) in enumerate(cands) if s > 0 and abs(g) >= 1e-12]
    for i, (g, s) in enumerate(cands):
        if s > 0 and abs(g) < 1e-12:
            lls[i] = float(-n * math.log(s) - peaks.sum() / s)
    if rows:
        G = np.array([cands[i][0] for i in rows])
        S = np.array([cands[i][1] for i in rows])
        z = np.multiply.outer(G, peaks)
        z /= S[:, None]
        z += 1.0
        valid = (z > 0).all(axis=1)
        z[~valid] = 1.0  # -inf anyway; keeps the log quiet
        logsum = np.log(z, out=z).sum(axis=1)
        for r, i in enumerate(rows):
            if valid[r]:
                g, s = cands[i]
                lls[i] = float(-n * math.log(s) - (1.0 + 1.0 / g) * logsum[r])
    return lls
