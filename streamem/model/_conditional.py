"""Private kernels for seasonal context: cyclic phase features and the closed-form conditional
density ``p(x | c)`` of a full-covariance Gaussian mixture over ``z = [x, c]``.

Why condition a joint mixture rather than keep per-slot baselines: the phase enters as the
features ``c = (sin 2 pi t / P, cos 2 pi t / P)`` for every period ``P``, and each component's
joint Gaussian gives, by the Schur complement,

``x | c, k ~ N(mu_x + S_xc S_cc^-1 (c - mu_c), S_xx - S_xc S_cc^-1 S_cx)``

with weights ``w_k(c) ∝ pi_k N(c; mu_c, S_cc)``. So one mixture learns the normal of each
phase from all the data (a 3 a.m. reading informs 2 a.m. and 4 a.m.; 24 x 7 slot baselines
would each see 1/168 of it and jump at slot edges), the mean of a component follows the phase
smoothly, several components cover shapes that are not sinusoidal, the covariance of ``x`` is
shared with the i.i.d. model, and the phase is context only: it is conditioned on, never
scored. Conditioning on a subset of the periods is the same formula on sub-blocks (the others
are marginalised out), which is how a period with less than one cycle of history is left out.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamem.model._numeric import LOG_2PI
from streamem.model._tail import log_chi2_sf

__all__ = ["conditional_log_prob", "phase_features", "row_mixture_log_tail"]

Array = NDArray[np.float64]


def phase_features(timestamps: Array, periods: Array) -> Array:
    """``[sin(2 pi t / P_1), cos(2 pi t / P_1), sin(2 pi t / P_2), ...]`` for every event.

    Parameters
    ----------
    timestamps
        Seconds (epoch, UTC or local: the phase origin is 0), shape (n_samples,).
    periods
        Seconds, shape (n_periods,).

    Returns
    -------
    Shape (n_samples, 2 n_periods).

    Examples
    --------
    >>> import numpy as np
    >>> np.round(phase_features(np.array([0.0, 21600.0]), np.array([86400.0])), 6).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    ang = 2.0 * math.pi * (np.asarray(timestamps, dtype=float)[:, None] % periods) / periods
    out = np.empty((ang.shape[0], 2 * ang.shape[1]))
    out[:, 0::2] = np.sin(ang)
    out[:, 1::2] = np.cos(ang)
    return out


def row_mixture_log_tail(log_w: Array, log_norm_const: Array, log_f: Array,
                         df: Array | float) -> Array:
    """Chi-square mixture bound on ``P(f(X) <= f(x))`` with per-row mixture weights.

    ``tau_n <= sum_k w_nk S_{chi2_d}(2 (log w_nk + log|U_k| - d/2 log 2 pi - log f(x_n)))``.

    Parameters
    ----------
    log_w
        Log weights per row, shape (n_samples, n_components).
    log_norm_const
        ``log|U_k| - d/2 log 2 pi``, shape (n_components,) or (n_samples, n_components).
    log_f
        Log density of each row under the mixture, shape (n_samples,).
    df
        Dimension per row (shape (n_samples,)) or a scalar.

    Returns
    -------
    Shape (n_samples,), in ``(-inf, 0]``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> lt = row_mixture_log_tail(np.zeros((1, 1)), np.array([-0.5 * np.log(2 * np.pi)]),
    ...                           np.array([norm.logpdf(2.0)]), 1.0)
    >>> bool(np.isclose(np.exp(lt[0]), 2 * norm.sf(2.0)))
    True
    """
    c = 2.0 * (log_w + log_norm_const - log_f[:, None])
    dfs = df if isinstance(df, float) else np.asarray(df, dtype=float)[:, None]
    terms = log_chi2_sf(c, dfs) + log_w
    top = terms.max(axis=1)
    out: Array = np.log(np.exp(terms - top[:, None]).sum(axis=1)) + top
    return np.minimum(out, 0.0)


def _gauss_logpdf(diff: Array, chol: Array) -> tuple[Array, Array]:
    """``log N(diff; 0, S_k)`` for diff of shape (n, K, d) and lower Cholesky of S (K, d, d);
    also ``log|U_k| - d/2 log 2 pi`` (U the precision Cholesky)."""
    d = diff.shape[2]
    # solve L_k y = diff_nk for every k: batched triangular solve on (K, d, n)
    y = np.linalg.solve(chol, np.transpose(diff, (1, 2, 0)))
    maha = np.einsum("kdn,kdn->nk", y, y)
    lnc = -np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1) - 0.5 * d * LOG_2PI
    return lnc[None, :] - 0.5 * maha, lnc


def conditional_log_prob(
    X: Array, C: Array, weights: Array, means: Array, covariances: Array,
    context: NDArray[np.intp], reg_covar: float = 0.0,
) -> tuple[Array, Array]:
    """``log p(x | c)`` under a full-covariance mixture over ``[x, all context features]``.

    Parameters
    ----------
    X
        Readings, shape (n_samples, n_x); rows with NaN give NaN.
    C
        Context features, shape (n_samples, n_c) (all of them; ``context`` picks the used).
    weights, means, covariances
        The joint mixture: (K,), (K, n_x + n_c), (K, n_x + n_c, n_x + n_c).
    context
        Indices into ``C`` of the features conditioned on (the others are marginalised; an
        empty index gives the marginal ``p(x)``).
    reg_covar
        Added to the conditional covariance diagonals.

    Returns
    -------
    log_prob
        Shape (n_samples,).
    log_tail
        Chi-square mixture bound on the conditional tail probability, shape (n_samples,).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> cov = np.array([[[1.0, 0.8], [0.8, 1.0]]])       # x and c correlated 0.8
    >>> lp, _ = conditional_log_prob(np.array([[1.0]]), np.array([[1.0]]), np.ones(1),
    ...                              np.zeros((1, 2)), cov, np.array([0]))
    >>> bool(np.isclose(lp[0], norm(0.8, 0.6).logpdf(1.0)))
    True
    """
    n, dx = X.shape
    ix = np.arange(dx)
    ic = dx + np.asarray(context, dtype=np.intp)
    mx = means[:, ix]
    Sxx = covariances[:, ix][:, :, ix] + reg_covar * np.eye(dx)
    if ic.size:
        Cu = C[:, context]
        Scc = covariances[:, ic][:, :, ic] + reg_covar * np.eye(ic.size)
        Sxc = covariances[:, ix][:, :, ic]
        Lc: Array = np.asarray(np.linalg.cholesky(Scc), dtype=float)
        gain = np.transpose(np.linalg.solve(Scc, np.transpose(Sxc, (0, 2, 1))), (0, 2, 1))
        S = Sxx - gain @ np.transpose(Sxc, (0, 2, 1))
        dc = Cu[:, None, :] - means[None, :, ic]
        mu = mx[None, :, :] + np.einsum("kxc,nkc->nkx", gain, dc)
        log_c, _ = _gauss_logpdf(dc, Lc)
        log_w = np.log(weights)[None, :] + log_c
        log_w -= np.logaddexp.reduce(log_w, axis=1, keepdims=True)
    else:
        S = Sxx
        mu = np.broadcast_to(mx[None, :, :], (n, *mx.shape))
        log_w = np.broadcast_to(np.log(weights)[None, :], (n, len(weights)))
    S = 0.5 * (S + np.transpose(S, (0, 2, 1)))
    log_x, lnc = _gauss_logpdf(X[:, None, :] - mu, np.linalg.cholesky(S))
    log_prob = np.logaddexp.reduce(log_w + log_x, axis=1)
    bad = np.isnan(X).any(axis=1)
    log_prob = np.where(bad, np.nan, log_prob)
    tail = row_mixture_log_tail(log_w, lnc, np.where(bad, 0.0, log_prob), float(dx))
    return log_prob, np.where(bad, np.nan, tail)
