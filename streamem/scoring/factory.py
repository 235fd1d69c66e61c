"""One entry point for the detector a configuration asks for: the i.i.d.
:class:`~streamem.Detector`, or the sequence-aware
:class:`~streamem.scoring.temporal.HMMDetector` (``temporal="hmm"``, optionally with
``seasonality``).

A factory rather than extra ``Detector`` keywords: the two models share the calling contract
(``process(X, learn=, times=)`` returning a :class:`~streamem.scoring.result.DetectionResult`,
``explain``, ``to_state`` / ``from_state``) but not their internals, so a ``Detector`` that
secretly held an HMM would have two meanings for every attribute. :func:`make_detector`
returns the right class; :func:`detector_from_state` rebuilds either from its state.

Seasonality is offered through the temporal model, which scores the readings given the
phase (``p(x | phase)``, :mod:`streamem.model._conditional`). The i.i.d. ``Detector`` has no
conditional scorer: ``seasonality`` without ``temporal`` is refused with the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamem.errors import InvalidInputError
from streamem.scoring.detector import Detector
from streamem.scoring.temporal import HMMDetector, make_temporal

__all__ = ["AnyDetector", "detector_from_state", "make_detector"]

AnyDetector = Detector | HMMDetector

#: ``Detector`` keywords the HMM detector takes too (under its own names).
_SHARED = {"n_components": "n_components", "half_life": "half_life",
           "alert_rate": "alert_rate", "threshold": "threshold", "warmup": "n_warmup",
           "reg_covar": "reg_covar", "random_state": "random_state"}


def make_detector(*, temporal: str | None = None, seasonality: Sequence[float | str] | None = None,
                  **params: Any) -> AnyDetector:
    """The detector for ``temporal`` and ``seasonality``, with the ``Detector`` keywords.

    Parameters
    ----------
    temporal
        None (default): the i.i.d. :class:`~streamem.Detector`. ``"hmm"``: an
        :class:`~streamem.scoring.temporal.HMMDetector`, which takes ``n_components`` (an
        integer; ``"auto"`` means 4), ``half_life``, ``alert_rate``, ``threshold``,
        ``warmup``, ``reg_covar`` and ``random_state``; the i.i.d.-only keywords are ignored.
    seasonality
        Periods (``["1d", "7d"]``): readings are scored given the time of day and week.
        Needs ``temporal="hmm"``.
    **params
        :class:`~streamem.Detector` keywords.

    Raises
    ------
    InvalidInputError
        ``seasonality`` without ``temporal``.
    ConfigError
        An unknown ``temporal`` kind.

    Examples
    --------
    >>> import numpy as np
    >>> type(make_detector(warmup=100)).__name__
    'Detector'
    >>> det = make_detector(temporal="hmm", n_components=2, warmup=200, random_state=0)
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.tile([0.0, 6.0], 300), 5)[:, None] + rng.normal(0, 0.3, (3000, 1))
    >>> res = det.process(X[:2000])
    >>> res = det.process(X[2000:], learn=np.ones(1000, bool))
    >>> type(det).__name__, int(res.is_anomaly.sum()) <= 5
    ('HMMDetector', True)
    >>> make_detector(seasonality=["1d"])
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: seasonality=['1d'] needs temporal='hmm' ...
    """
    if temporal is None:
        if seasonality:
            raise InvalidInputError(
                f"seasonality={list(seasonality)!r} needs temporal='hmm' (the i.i.d. Detector "
                "does not condition on the phase); add temporal='hmm' or drop seasonality")
        return Detector(**params)
    kw = {_SHARED[k]: v for k, v in params.items() if k in _SHARED}
    if kw.get("n_components") == "auto":
        kw["n_components"] = 4
    return make_temporal(temporal, seasonality=list(seasonality or ()), **kw)


def detector_from_state(state: Mapping[str, Any]) -> AnyDetector:
    """Rebuild a :func:`make_detector` detector from its ``to_state()``.

    Examples
    --------
    >>> type(detector_from_state(make_detector(temporal="hmm").to_state())).__name__
    'HMMDetector'
    >>> type(detector_from_state(make_detector().to_state())).__name__
    'Detector'
    """
    if state.get("kind") == "hmm_detector":
        return HMMDetector.from_state(state)
    return Detector.from_state(state)
