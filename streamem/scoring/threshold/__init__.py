"""Decision thresholds on surprise scores: the :class:`Threshold` protocol, SPOT (the
default) and the fixed model-calibrated threshold, and the loader that picks the class of
a saved state by its ``"kind"``.

Examples
--------
>>> from streamem import Detector
>>> Detector(threshold=FixedThreshold(q=1e-4)).alert_rate
0.0001
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamem.model._versioned import StateReader
from streamem.scoring.threshold.base import Threshold
from streamem.scoring.threshold.fixed import FixedThreshold
from streamem.scoring.threshold.spot import SpotThreshold

__all__ = ["KINDS", "FixedThreshold", "SpotThreshold", "Threshold", "load_threshold"]

#: The threshold class of each state ``"kind"``.
KINDS: dict[str, Any] = {"spot": SpotThreshold, "fixed": FixedThreshold}


def load_threshold(state: Mapping[str, Any]) -> Threshold:
    """Rebuild a threshold from its ``to_state()``; the class is chosen by ``state["kind"]``.

    Parameters
    ----------
    state
        The snapshot; without a ``"kind"`` it is a SPOT state (the only kind once).

    Returns
    -------
    Threshold

    Raises
    ------
    StateError
        An unknown kind, or a malformed state.

    Examples
    --------
    >>> load_threshold(FixedThreshold(q=1e-2).to_state()).threshold_
    2.0
    >>> load_threshold({"kind": "quantile"})
    Traceback (most recent call last):
    ...
    streamem.errors.StateError: malformed threshold state: kind 'quantile' is not one of ...
    """
    r = StateReader.of(state, "threshold")
    kind = r.get("kind", "spot")
    if kind not in KINDS:
        raise r.error(f"kind {kind!r} is not one of {sorted(KINDS)}; a custom threshold is "
                      "restored by its own from_state, then given to Detector(threshold=...)")
    out: Threshold = KINDS[kind].from_state(r)
    return out
