"""The ``Threshold`` protocol: the decision rule a :class:`~streamem.Detector` is given.

Scores here are *surprises* ``u = -log10(tail probability)``: higher means more anomalous,
and on a well-calibrated model ``P(u > t) <= 10**-t``. The detector reads
:attr:`Threshold.threshold_`, flags ``u > threshold_`` and reports the batch back through
:meth:`Threshold.update`; it uses nothing else of the threshold but :attr:`Threshold.q`,
:meth:`Threshold.health` and :meth:`Threshold.to_state`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Threshold"]


@runtime_checkable
class Threshold(Protocol):
    """An adaptive decision threshold on surprise scores.

    Contract: optionally :meth:`fit` once on initial scores, then for every batch read
    :attr:`threshold_` (the value in force), decide ``u > threshold_``, and call
    :meth:`update` with the batch and the decisions (flagged scores are not learned).
    Before any calibration the threshold is the model-calibrated ``-log10(q)``.
    Implementations also provide ``from_state`` (a classmethod), write a ``"kind"`` in
    their state (see :func:`~streamem.scoring.threshold.load_threshold`) and pass
    ``tests/contracts/test_threshold_contract.py``.

    Examples
    --------
    >>> from streamem.scoring.threshold import FixedThreshold, SpotThreshold
    >>> isinstance(SpotThreshold(q=1e-3), Threshold), isinstance(FixedThreshold(), Threshold)
    (True, True)
    """

    #: Target fraction of normal events flagged (the detector's ``alert_rate``).
    q: float

    @property
    def threshold_(self) -> float:
        """Current threshold on the surprise scale.

        Examples
        --------
        >>> from streamem.scoring.threshold import SpotThreshold
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
        >>> from streamem.scoring.threshold import SpotThreshold
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
        >>> from streamem.scoring.threshold import FixedThreshold
        >>> t = FixedThreshold(q=1e-3); t.update(np.array([1.0, 5.0]), np.array([False, True]))
        >>> t.threshold_
        3.0
        """
        ...

    def health(self) -> dict[str, float]:
        """Figures for metrics: ``tail_shape``, ``tail_scale``, ``tail_peaks`` (NaN: none).

        Examples
        --------
        >>> from streamem.scoring.threshold import SpotThreshold
        >>> sorted(SpotThreshold().health())
        ['tail_peaks', 'tail_scale', 'tail_shape']
        """
        ...

    def to_state(self) -> dict[str, Any]:
        """Plain arrays and scalars, with a ``"kind"``.

        Examples
        --------
        >>> from streamem.scoring.threshold import FixedThreshold
        >>> FixedThreshold(q=1e-3).to_state()
        {'kind': 'fixed', 'q': 0.001}
        """
        ...
