"""Private calibration kernels: chi-square tail (tabulated) and the mixture tail bound."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.special import erfc, gammaincc, gammaln

from streamem.model._numeric import amax, asum, exp_shifted

__all__ = ["log_chi2_sf", "mixture_log_tail"]

Array = NDArray[np.float64]

_TABLE_STEP = 1.0 / 64.0
_TABLE_MAX = 400.0
_TABLES: dict[float, tuple[Array, Array]] = {}


def _log_chi2_sf_exact(x: Array, df: Array | float) -> Array:
    a = 0.5 * np.asarray(df, dtype=float)
    h = 0.5 * np.maximum(x, 0.0)
    with np.errstate(divide="ignore"):
        out: Array = np.log(gammaincc(a, h))
    far = ~(out > -600.0)
    if far.any():
        # Q(a, h) ~ h^(a-1) e^-h / Gamma(a) * (1 + (a-1)/h + (a-1)(a-2)/h^2)
        hf = np.broadcast_to(h, out.shape)[far]
        af = np.broadcast_to(a, out.shape)[far]
        hh = np.maximum(hf, 1.0)
        series = 1.0 + (af - 1.0) / hh + (af - 1.0) * (af - 2.0) / hh / hh
        out[far] = (af - 1.0) * np.log(hh) - hh - gammaln(af) + np.log(
            np.maximum(series, 1e-300)
        )
    return out


def _table(df: float) -> tuple[Array, Array]:
    """``log S`` on the grid and the slope to the next grid point, per ``df`` (cached)."""
    tab = _TABLES.get(df)
    if tab is None:
        grid = np.arange(0.0, _TABLE_MAX + _TABLE_STEP, _TABLE_STEP)
        values = _log_chi2_sf_exact(grid, df)
        slope = np.append(values[1:] - values[:-1], 0.0)
        tab = _TABLES[df] = (values, slope)
    return tab


def log_chi2_sf(x: Array, df: Array | float) -> Array:
    """Log survival function of the chi-square distribution, finite far into the tail.

    For speed, values come from a per-``df`` table of ``log(gammaincc)`` (step 1/64 up to
    400) with linear interpolation, absolute error below 1e-5 in log space (exact values are
    used below 1 for ``df < 4``, where the log survival function is not smooth); beyond the
    table the leading terms of the asymptotic expansion of the upper incomplete gamma
    function are used (relative error below 1e-5 for ``df <= 20``).

    Parameters
    ----------
    x
        Points, any shape.
    df
        Degrees of freedom, a scalar or broadcastable to ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import chi2
    >>> bool(np.isclose(log_chi2_sf(np.array([23.2]), 10.0)[0], chi2(10).logsf(23.2)))
    True
    >>> bool(np.isfinite(log_chi2_sf(np.array([1e5]), 10.0)[0]))
    True
    """
    x = np.asarray(x, dtype=float)
    if isinstance(df, float):
        d0 = df
    else:
        dfa = np.asarray(df, dtype=float)
        d0 = float(dfa.flat[0])
        if dfa.ndim and not (dfa == d0).all():
            return _log_chi2_sf_mixed_df(x, dfa)
    tab, slope = _table(d0)
    # grid position, clipped before the int cast (a huge x must not overflow); x > 400 is
    # redone below, and x = 400 reads the last knot (its slope is 0)
    pos = np.multiply(x, 1.0 / _TABLE_STEP)
    if pos.size > 64:
        np.clip(pos, 0.0, len(tab) - 1.0, out=pos)
    else:  # the same values; np.clip's Python wrapper costs more than these few elements
        np.maximum(pos, 0.0, out=pos)
        np.minimum(pos, len(tab) - 1.0, out=pos)
    i = pos.astype(np.intp)
    pos -= np.floor(pos)
    pos *= slope.take(i)
    out: Array = tab.take(i)
    out += pos
    if x.size and amax(x, axis=None) > _TABLE_MAX:
        far = x > _TABLE_MAX
        out[far] = _log_chi2_sf_exact(x[far], d0)
    if d0 < 4.0:  # log S is not smooth at 0 for df < 4: interpolation would be off there
        near = x < 1.0
        if near.any():
            out[near] = _log_chi2_sf_closed(x[near], d0)
    return out


def _log_chi2_sf_closed(x: Array, df: float) -> Array:
    """Exact ``log S`` by the closed forms for df = 1, 2, 3 (erfc and exp, far cheaper than
    gammaincc at a = 1/2); any other df goes to :func:`_log_chi2_sf_exact`."""
    h = 0.5 * np.maximum(x, 0.0)
    if df == 2.0:
        return -h
    if df not in (1.0, 3.0):
        return _log_chi2_sf_exact(x, df)
    r = np.sqrt(h)
    q = erfc(r)
    if df == 3.0:
        q += (2.0 / math.sqrt(math.pi)) * r * np.exp(-h)
    with np.errstate(divide="ignore"):
        out: Array = np.log(q)
    return out


def _log_chi2_sf_mixed_df(x: Array, dfa: Array) -> Array:
    dfb = np.broadcast_to(dfa, x.shape)
    res = np.empty(x.shape)
    for value in np.unique(dfb):
        sel = dfb == value
        res[sel] = log_chi2_sf(x[sel], float(value))
    return res


def mixture_log_tail(
    log_weights: Array,
    log_norm_const: Array,
    log_prob_norm: Array,
    df: Array | float,
    tail_const: Array | None = None,
) -> Array:
    """Log of the chi-square mixture bound on the density-level tail probability.

    ``tau(x) = P(f(X) <= f(x)) <= sum_k pi_k S_{chi2_d}(c_k)`` with
    ``c_k = 2 (log pi_k + log|U_k| - d/2 log 2 pi - log f(x))`` (design note, section 4.2).

    Parameters
    ----------
    log_weights
        ``log pi_k``, shape (n_components,).
    log_norm_const
        ``log|U_k| - d_o/2 log 2 pi`` of the observed block, shape (n_samples, n_components)
        or (n_components,).
    log_prob_norm
        ``log f(x)``, shape (n_samples,).
    df
        Observed dimension ``d_o`` per row, shape (n_samples,), or a scalar.
    tail_const
        Precomputed ``2 (log pi_k + log_norm_const_k)`` for a 1-D ``log_norm_const``
        (optional, saves time).

    Returns
    -------
    log_tau
        Shape (n_samples,), in ``(-inf, 0]``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> lnc = np.array([-0.5 * np.log(2 * np.pi)])
    >>> lt = mixture_log_tail(np.array([0.0]), lnc, np.array([norm.logpdf(2.0)]), 1.0)
    >>> bool(np.isclose(np.exp(lt[0]), 2 * norm.sf(2.0)))
    True
    """
    # component-major (K, n) layout: the reductions run along the samples
    if log_norm_const.ndim == 1:
        if tail_const is None:
            tail_const = 2.0 * (log_weights + log_norm_const)
        c = tail_const[:, None] - 2.0 * log_prob_norm
    else:
        c = log_weights[:, None] + log_norm_const.T
        c -= log_prob_norm
        c *= 2.0
    if not isinstance(df, float):
        df = np.asarray(df, dtype=float)
        df = df[None, :] if df.ndim == 1 else df
    terms = log_chi2_sf(c, df)
    terms += log_weights[:, None]
    top = amax(terms, axis=0)
    terms -= top
    out: Array = np.log(asum(exp_shifted(terms), axis=0))
    out += top
    np.minimum(out, 0.0, out=out)
    return out
