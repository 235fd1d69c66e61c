"""The model-calibrated threshold: flag ``u > -log10(q)``, nothing fitted or learned."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError
from streamem.model._versioned import StateReader

__all__ = ["FixedThreshold"]

Array = NDArray[np.float64]


class FixedThreshold:
    """The model-calibrated threshold ``u > -log10(q)`` with no tail fit.

    Exact when the mixture describes the data (the chi-square bound is conservative).

    Examples
    --------
    >>> FixedThreshold(q=1e-3).threshold_
    3.0
    """

    def __init__(self, q: float = 1e-3) -> None:
        if not 0 < q < 0.5:
            raise InvalidInputError(f"alert_rate q={q!r} must be in (0, 0.5); 1e-3 is typical")
        self.q = q

    @property
    def threshold_(self) -> float:
        """``-log10(q)``.

        Examples
        --------
        >>> FixedThreshold(q=1e-2).threshold_
        2.0
        """
        return -math.log10(self.q)

    def fit(self, scores: Array) -> None:
        """Nothing to calibrate.

        Parameters
        ----------
        scores
            Ignored.

        Examples
        --------
        >>> import numpy as np
        >>> t = FixedThreshold(q=1e-3); t.fit(np.ones(10)); t.threshold_
        3.0
        """

    def update(self, scores: Array, is_anomaly: NDArray[np.bool_]) -> None:
        """Nothing to learn.

        Parameters
        ----------
        scores, is_anomaly
            Ignored.

        Examples
        --------
        >>> import numpy as np
        >>> t = FixedThreshold(q=1e-3); t.update(np.ones(2), np.zeros(2, bool)); t.threshold_
        3.0
        """

    def health(self) -> dict[str, float]:
        """No tail is fitted: NaN shape, scale and peaks.

        Examples
        --------
        >>> FixedThreshold().health()["tail_shape"]
        nan
        """
        return {"tail_shape": math.nan, "tail_scale": math.nan, "tail_peaks": math.nan}

    def to_state(self) -> dict[str, Any]:
        """Plain scalars.

        Examples
        --------
        >>> FixedThreshold(q=1e-3).to_state()
        {'kind': 'fixed', 'q': 0.001}
        """
        return {"kind": "fixed", "q": self.q}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FixedThreshold:
        """Rebuild from :meth:`to_state` (a defect raises :class:`~streamem.StateError`).

        Examples
        --------
        >>> FixedThreshold.from_state({"kind": "fixed", "q": 0.01}).threshold_
        2.0
        """
        r = StateReader.of(state, "FixedThreshold", kind="fixed")
        with r.guard():
            return cls(r.number("q"))
