"""Reservoir sampling of complete (NaN-free) events, kept for re-seeding dead components."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamem.model._numeric import has_nan

__all__ = ["reservoir_update"]

Array = NDArray[np.float64]


def reservoir_update(
    reservoir: Array,
    offered: int,
    X: Array,
    size: int,
    rng: np.random.Generator,
    window: float = np.inf,
) -> tuple[Array, int]:
    """Offer the complete rows of ``X`` to a reservoir (Vitter's algorithm R, with forgetting).

    Row number ``j`` (counting every complete row offered) replaces a random slot with
    probability ``size / min(j, window)``: a uniform sample of everything while
    ``j <= window``, then a sample biased to about the last ``window`` rows, so that
    re-seeding uses points of the current regime.

    Parameters
    ----------
    reservoir
        Current sample, shape (m, n_features) with ``m <= size``.
    offered
        Complete rows offered so far (including the warm-up).
    X
        New rows, shape (n, n_features); rows with NaN are skipped.
    size
        Reservoir capacity.
    rng
        Random generator (advanced in place).
    window
        Memory of the sample in rows (the model's effective memory); ``inf`` = uniform.

    Returns
    -------
    reservoir, offered
        The updated sample (modified in place once full) and count.

    Examples
    --------
    >>> import numpy as np
    >>> r, n = reservoir_update(np.empty((0, 1)), 0, np.arange(5.0)[:, None], 3,
    ...                         np.random.default_rng(0))
    >>> r.shape, n
    ((3, 1), 5)
    """
    complete = X[~np.isnan(X).any(axis=1)] if has_nan(X) else X
    m = complete.shape[0]
    if m == 0 or size == 0:
        return reservoir, offered
    start = offered
    offered += m
    free = size - len(reservoir)
    if free > 0:
        reservoir = np.vstack([reservoir, complete[:free]])
        complete, start = complete[free:], start + free
        if complete.shape[0] == 0:
            return reservoir, offered
    m = complete.shape[0]
    seen = np.arange(start + 1, start + 1 + m, dtype=np.float64)  # exact below 2**53
    np.minimum(seen, max(window, size), out=seen)
    u: Array = np.asarray(rng.random(m))
    u *= seen
    slots = u.astype(np.int64)  # truncation is the floor here: u >= 0
    keep = np.flatnonzero(slots < size)
    reservoir[slots[keep]] = complete[keep]
    return reservoir, offered
