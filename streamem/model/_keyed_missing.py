"""Private kernels for rows with missing readings (NaN) under per-key mixtures.

A row with missing coordinates is scored on its observed sub-vector: under each component
of its key's mixture the observed block is Gaussian with the observed entries of the mean and
the observed block of the covariance, so the log-density, the responsibilities and the
chi-square tail bound (with as many degrees of freedom as observed coordinates) follow as for
a complete row. Rows are grouped by missingness pattern; each pattern factorises the observed
blocks of all its rows' keys in one batched Cholesky (no loop per row or key).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._keyed import KeyParams, mixture_rows
from streamem.model._numeric import LOG_2PI

__all__ = ["covariances_of", "first_rows", "score_rows_missing"]

Array = NDArray[np.float64]


def covariances_of(p: KeyParams, group: NDArray[np.intp]) -> Array:
    """The covariances ``L L^T`` of the keys ``group`` indexes, shape (n, K, d, d).

    Examples
    --------
    >>> import numpy as np
    >>> from streamem.model._keyed import Population, map_parameters
    >>> z = np.zeros((1, 1, 1)); p = map_parameters(np.zeros((1, 1)), z, z[..., None],
    ...     Population.standard(1, 1), 10.0, np.array([4.0]), 0.0)
    >>> covariances_of(p, np.array([0, 0])).ravel().tolist()
    [4.0, 4.0]
    """
    L = np.tril(np.moveaxis(np.take(p.chol, group, axis=2), (0, 1), (2, 3)))
    out: Array = L @ np.swapaxes(L, -1, -2)
    return out


def first_rows(A: Array, order: NDArray[np.intp], starts: NDArray[np.intp],
               counts: NDArray[np.intp]) -> Array:
    """Each group's first row with its missing entries filled by the group's mean of the
    column (0 where the group has none): a finite anchor for a new key.

    Parameters
    ----------
    A
        Shape (n_samples, d), NaN for missing readings.
    order, starts, counts
        From :func:`~streamem.model._keyed.group_rows`.

    Returns
    -------
    Array
        Shape (n_groups, d).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[np.nan, 1.0], [4.0, 2.0], [np.nan, np.nan]])
    >>> first_rows(A, np.array([0, 1, 2]), np.array([0, 2]), np.array([2, 1])).tolist()
    [[4.0, 1.0], [0.0, 0.0]]
    """
    As = np.take(A, order, axis=0)
    seen = ~np.isnan(As)
    total = np.add.reduceat(np.where(seen, As, 0.0), starts, axis=0)
    n_seen = np.add.reduceat(seen.astype(float), starts, axis=0)
    mean = np.divide(total, n_seen, out=np.zeros_like(total), where=n_seen > 0)
    first = As[starts]
    out: Array = np.where(np.isnan(first), mean, first)
    return out


def score_rows_missing(Y: Array, group: NDArray[np.intp], p: KeyParams
                       ) -> tuple[Array, Array, Array]:
    """:func:`~streamem.model._keyed.score_rows` for rows with NaN entries, each scored on
    its observed coordinates.

    Parameters
    ----------
    Y
        Shape (n_samples, d), anchor-relative rows; NaN marks a missing reading, and every
        row has at least one observed value.
    group
        Shape (n_samples,): each row's index into ``p``.
    p
        Parameters of the keys (:func:`~streamem.model._keyed.map_parameters`).

    Returns
    -------
    log_prob, log_resp, log_tail
        Shapes (n_samples,), (n_samples, K), (n_samples,): the marginal log-density of the
        observed part, the responsibilities given it, and the tail bound with ``d_o``
        (observed coordinates) degrees of freedom.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from streamem.model._keyed import Population, map_parameters
    >>> z = np.zeros((1, 1, 2)); p = map_parameters(np.zeros((1, 1)), z, np.zeros((1, 1, 2, 2)),
    ...     Population.standard(1, 2), 10.0, np.array([4.0, 1.0]), 0.0)
    >>> lp, lr, lt = score_rows_missing(np.array([[1.0, np.nan]]), np.array([0]), p)
    >>> bool(np.isclose(lp[0], norm(0, 2).logpdf(1.0)))
    True
    >>> bool(np.isclose(np.exp(lt[0]), 2 * norm.sf(0.5)))
    True
    """
    n = Y.shape[0]
    K = p.log_weights.shape[1]
    observed = ~np.isnan(Y)
    maha, log_norm = np.empty((n, K)), np.empty((n, K))
    df = observed.sum(axis=1).astype(float)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    by_pattern = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[by_pattern], np.arange(len(patterns) + 1))
    for q, obs in enumerate(patterns):   # a loop over the (at most 2**d) patterns
        rows = by_pattern[bounds[q]:bounds[q + 1]]
        o = np.flatnonzero(obs)
        g = group[rows]
        C = covariances_of(p, g)[:, :, o[:, None], o[None, :]]          # (r, K, do, do)
        L = np.linalg.cholesky(C)
        mu = np.take(p.means, g, axis=0)[:, :, o]                        # (r, K, do)
        resid = Y[rows][:, None, o] - mu
        w = np.linalg.solve(L, resid[..., None])[..., 0]
        maha[rows] = np.einsum("rki,rki->rk", w, w)
        diag = np.diagonal(L, axis1=-2, axis2=-1)
        log_norm[rows] = -np.log(diag).sum(axis=-1) - 0.5 * len(o) * LOG_2PI
    lw = np.take(p.log_weights, group, axis=0)
    return mixture_rows(maha, lw, lw + log_norm, df)
