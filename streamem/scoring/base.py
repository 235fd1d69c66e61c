"""The ``Threshold`` protocol: turns calibrated scores into decisions.

Scores here are *surprises* ``u = -log10(tail probability)``: higher means more anomalous,
and on a well-calibrated model ``P(u > t) <= 10**-t``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Threshold"]


@runtime_checkable
class Threshold(Protocol):
    """An adaptive decision threshold on surprise scores.

    Contract: :meth:`fit` once on initial scores, then for every batch read
    :attr:`threshold_` (the value in force), decide ``u > threshold_``, and call
    :meth:`update` with the batch and the decisions (flagged scores are not learned).
    """

    @property
    def threshold_(self) -> float:
        """Current threshold on the surprise scale."""
        ...

    def fit(self, scores: NDArray[np.float64]) -> None:
        """Calibrate on initial (normal) scores, shape (n_samples,)."""
        ...

    def update(self, scores: NDArray[np.float64], is_anomaly: NDArray[np.bool_]) -> None:
        """Absorb a batch of scores (shape (n,)) given the decisions taken on it."""
        ...

    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars."""
        ...
