"""Private numeric helpers: NaN test, constants, ufunc reductions and the exponential of
log-sum-exp."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["EXP_FLOOR", "LN10", "LOG_2PI", "amax", "amin", "asum", "exp_shifted", "has_nan"]

Array = NDArray[np.float64]
LOG_2PI = float(np.log(2.0 * np.pi))
#: ``ln 10``: a surprise is ``-log_tail / LN10`` (base-10 units of tail probability).
LN10 = math.log(10.0)
#: ufunc reductions without the ndarray-method wrappers: the same loops (bit-identical to
#: ``.max()`` / ``.min()`` / ``.sum()``) with less call overhead, which adds up per event
amax = np.maximum.reduce
amin = np.minimum.reduce
asum = np.add.reduce


#: numpy's exp leaves its fast SIMD path from about -708 on (results near or below the
#: smallest normal double): 6-40x slower there
EXP_FLOOR = -700.0


def exp_shifted(A: Array) -> Array:
    """``exp(A)`` for log-sum-exp: ``A <= 0`` with a 0 in every column of the sum.

    Entries below :data:`EXP_FLOOR` are raised to it before ``exp``: their exponentials
    (< 1e-304 each) vanish against the 1.0 of the column's largest entry (a partial sum that
    could tell them apart is below 1e-290, and adding 1.0 rounds it away), so sums over the
    components are bit-identical, and numpy's slow path for underflowing results is avoided
    (well separated components at d = 30 put half of the entries below -708).

    Parameters
    ----------
    A
        Shifted log-values, any shape; not modified.

    Returns
    -------
    ndarray
        A new array, same shape and memory order.

    Examples
    --------
    >>> import numpy as np
    >>> e = exp_shifted(np.array([[0.0, -1e4], [-1.0, 0.0]]))
    >>> float(e.sum(axis=1)[0]), float(e[1, 0])
    (1.0, 0.36787944117144233)
    """
    if A.size > 256 and float(amin(A, axis=None)) < EXP_FLOOR:  # (the slow path costs per element)
        out: Array = np.maximum(A, EXP_FLOOR)
        return np.exp(out, out=out)
    return np.exp(A)


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
    return bool(X.size) and bool(np.isnan(amin(X, axis=None)))
