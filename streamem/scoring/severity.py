"""Severity on a 0-100 scale from the surprise relative to the threshold."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["KNOTS", "severity"]

#: (surprise / threshold, severity). 75 at the threshold (the default incident level),
#: 50 at three quarters of it (the default resolve level), 100 at three times it.
KNOTS = ((0.0, 0.0), (0.5, 25.0), (0.75, 50.0), (1.0, 75.0), (1.5, 90.0), (2.0, 97.0), (3.0, 100.0))
_KX = np.array([k[0] for k in KNOTS])
_KY = np.array([k[1] for k in KNOTS])


def severity(surprise: NDArray[np.float64], threshold: float) -> NDArray[np.float64]:
    """Map surprise ``u = -log10(tail probability)`` to 0-100 (piecewise linear in ``u/threshold``).

    Parameters
    ----------
    surprise
        Shape (n_samples,).
    threshold
        The anomaly threshold on the same scale; exactly at it the severity is 75.

    Returns
    -------
    Shape (n_samples,), in [0, 100].

    Examples
    --------
    >>> import numpy as np
    >>> severity(np.array([0.0, 3.0, 4.5, 30.0]), 3.0).tolist()
    [0.0, 75.0, 90.0, 100.0]
    """
    ratio = np.asarray(surprise, dtype=float) / max(threshold, 1e-12)
    return np.asarray(np.interp(ratio, _KX, _KY))
