"""Private numeric helpers: fast row reductions for (n_samples, n_components) arrays."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["LOG_2PI", "SMALL_BATCH", "has_nan", "row_logsumexp", "row_max"]

Array = NDArray[np.float64]
LOG_2PI = float(np.log(2.0 * np.pi))
#: below this many rows plain numpy reductions beat the large-batch layouts
SMALL_BATCH = 32
_SMALL = SMALL_BATCH


def has_nan(X: Array) -> bool:
    """True if any entry is NaN (one reduction: ``min`` propagates NaN).

    Parameters
    ----------
    X
        Any array (inputs are validated not to hold ±inf, so NaN is the only non-finite).

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> has_nan(np.array([[1.0, np.nan]])), has_nan(np.ones((2, 2)))
    (True, False)
    """
    return bool(X.size) and bool(np.isnan(X.min()))


def row_max(A: Array) -> Array:
    """``A.max(axis=1)`` for a short second axis, via a contiguous transpose (much faster).

    Parameters
    ----------
    A
        Shape (n_samples, n_components).

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> row_max(np.array([[1.0, 3.0], [4.0, 2.0]])).tolist()
    [3.0, 4.0]
    """
    if A.shape[0] < _SMALL:
        small: Array = A.max(axis=1)
        return small
    out: Array = np.ascontiguousarray(A.T).max(axis=0)
    return out


def row_logsumexp(A: Array) -> Array:
    """``log(sum(exp(A), axis=1))``, stable, with the fast row reductions.

    Parameters
    ----------
    A
        Shape (n_samples, n_components).

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> round(float(row_logsumexp(np.log(np.array([[0.2, 0.6]])))[0]), 6)
    -0.223144
    """
    top = row_max(A)
    e = np.exp(A - top[:, None])  # underflow to 0 is harmless
    total = e.sum(axis=1) if A.shape[0] < _SMALL else e @ np.ones(A.shape[1])
    out: Array = top + np.log(total)
    return out
