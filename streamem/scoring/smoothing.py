"""Trailing mean of surprises, carried across batches (the detector's ``smooth_window``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["SurpriseSmoother"]

Array = NDArray[np.float64]


class SurpriseSmoother:
    """Mean of the last ``window`` surprises: this event's and the ones before it.

    The first events of a stream average over what there is. The last ``window - 1``
    surprises are carried to the next batch (:attr:`recent_`), so the result does not depend
    on how the stream is cut into batches.

    Parameters
    ----------
    window
        Events averaged (``1``: every event on its own; the detector then skips smoothing).

    Examples
    --------
    >>> import numpy as np
    >>> s = SurpriseSmoother(3)
    >>> s(np.array([3.0, 0.0])).tolist(), s(np.array([0.0, 6.0])).tolist()
    ([3.0, 1.5], [1.0, 2.0])
    """

    def __init__(self, window: int) -> None:
        self.window = int(window)
        self.recent_: Array = np.zeros(0)

    @property
    def active(self) -> bool:
        """True when more than one event is averaged.

        Examples
        --------
        >>> SurpriseSmoother(1).active
        False
        """
        return self.window > 1

    def __call__(self, u: Array) -> Array:
        """Smoothed surprises of a batch (and the carried ones updated).

        Parameters
        ----------
        u
            Shape (n,), surprises in stream order.

        Returns
        -------
        ndarray of shape (n,)

        Examples
        --------
        >>> import numpy as np
        >>> SurpriseSmoother(2)(np.array([2.0, 4.0, 0.0])).tolist()
        [2.0, 3.0, 2.0]
        """
        w = self.window
        m, n = len(self.recent_), len(u)
        ext = np.concatenate([np.zeros(w - 1 - m), self.recent_, u])
        sums = np.lib.stride_tricks.sliding_window_view(ext, w).sum(axis=1)
        counts = np.minimum(np.arange(m + 1, m + n + 1), w)
        keep = min(w - 1, m + n)
        self.recent_ = ext[len(ext) - keep :].copy() if keep else np.zeros(0)
        out: Array = sums / counts
        return out
