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
    Before :meth:`fit` the threshold is the model-calibrated ``-log10(q)``. Implementations
    also provide ``from_state`` (a classmethod) and pass
    ``tests/contracts/test_threshold_contract.py``.

    Examples
    --------
    >>> from streamem.scoring.spot import FixedThreshold, SpotThreshold
    >>> isinstance(SpotThreshold(q=1e-3), Threshold), isinstance(FixedThreshold(), Threshold)
    (True, True)
    """

    @property
    def threshold_(self) -> float:
        """Current threshold on the surprise scale.

        Examples
        --------
        >>> from streamem.scoring.spot import SpotThreshold
        >>> SpotThreshold(q=1e-4).threshold_
        4.0
        """
        ...

    def fit(self, scores: NDArray[np.float64]) -> None:
        """Calibrate on initial (normal) scores.

        Parameters
        ----------
        scores
            Shape (n_samples,).

        Examples
        --------
        >>> import numpy as np
        >>> from streamem.scoring.spot import SpotThreshold
        >>> t = SpotThreshold(q=1e-2); t.fit(np.random.default_rng(0).exponential(0.434, 5000))
        >>> round(t.threshold_)
        2
        """
        ...

    def update(self, scores: NDArray[np.float64], is_anomaly: NDArray[np.bool_]) -> None:
        """Absorb a batch of scores given the decisions taken on it.

        Parameters
        ----------
        scores
            Shape (n,).
        is_anomaly
            Shape (n,): ``scores > threshold_`` as decided before the call.

        Examples
        --------
        >>> import numpy as np
        >>> from streamem.scoring.spot import FixedThreshold
        >>> t = FixedThreshold(q=1e-3); t.update(np.array([1.0, 5.0]), np.array([False, True]))
        >>> t.threshold_
        3.0
        """
        ...

    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars.

        Examples
        --------
        >>> from streamem.scoring.spot import FixedThreshold
        >>> FixedThreshold(q=1e-3).to_state()
        {'kind': 'fixed', 'q': 0.001}
        """
        ...
