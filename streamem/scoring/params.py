"""The detector's constructor arguments: validated in one place, and the threshold resolved
from ``threshold=`` or the ``alert_rate`` convenience (which builds the default SPOT)."""

from __future__ import annotations

from typing import Any

from streamem.errors import InvalidInputError
from streamem.scoring.threshold import SpotThreshold, Threshold

__all__ = ["DEFAULT_ALERT_RATE", "check_params", "resolve_threshold"]

#: ``alert_rate`` when neither it nor a threshold is given.
DEFAULT_ALERT_RATE = 1e-3


def resolve_threshold(threshold: Threshold | None, alert_rate: float | None
                      ) -> tuple[Threshold, float]:
    """The threshold a detector composes, and its alert rate.

    Parameters
    ----------
    threshold
        Given by the caller (None: the default :class:`SpotThreshold`).
    alert_rate
        The convenience keyword; with a threshold it must be None or equal its ``q``.

    Returns
    -------
    threshold, alert_rate

    Raises
    ------
    InvalidInputError
        An object that is not a :class:`~streamem.scoring.threshold.Threshold`, or an
        ``alert_rate`` that contradicts the threshold's ``q``.

    Examples
    --------
    >>> th, rate = resolve_threshold(None, 1e-4); type(th).__name__, rate
    ('SpotThreshold', 0.0001)
    >>> resolve_threshold(SpotThreshold(q=1e-2), 1e-3)
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: alert_rate=0.001 contradicts the threshold's q=0.01; ...
    """
    if threshold is None:
        rate = DEFAULT_ALERT_RATE if alert_rate is None else alert_rate
        if not 0 < rate < 0.5:
            raise InvalidInputError(f"alert_rate={rate!r} must be in (0, 0.5); try 1e-3")
        return SpotThreshold(q=rate), rate
    if not isinstance(threshold, Threshold):
        raise InvalidInputError(
            f"threshold={threshold!r} is not a Threshold; give an object with q, threshold_, "
            "fit, update, health and to_state (see streamem.scoring.threshold)"
        )
    if alert_rate is not None and alert_rate != threshold.q:
        raise InvalidInputError(
            f"alert_rate={alert_rate!r} contradicts the threshold's q={threshold.q!r}; give "
            "one of them"
        )
    return threshold, float(threshold.q)


def check_params(p: dict[str, Any]) -> dict[str, Any]:
    """Validate the detector's parameters (``alert_rate`` is checked by its threshold).

    Parameters
    ----------
    p
        The detector's ``params``.

    Returns
    -------
    dict
        ``p`` itself.

    Raises
    ------
    InvalidInputError
        A value out of range; the message names it and a typical value.

    Examples
    --------
    >>> check_params({"warmup": 5})
    Traceback (most recent call last):
    ...
    streamem.errors.InvalidInputError: warmup=5 is too small; use at least 20 events
    """
    if p["warmup"] < 20:
        raise InvalidInputError(f"warmup={p['warmup']!r} is too small; use at least 20 events")
    if p["regime_patience"] < 10:
        raise InvalidInputError(f"regime_patience={p['regime_patience']!r}; use at least 10")
    early = p["regime_min_events"]
    if early is not None and (int(early) != early or early < 10):
        raise InvalidInputError(
            f"regime_min_events={early!r}; use None (off) or an integer >= 10 (400 is typical)"
        )
    hl = p["detrend_half_life"]
    if hl is not None and (hl != "auto" if isinstance(hl, str) else not hl > 0):
        raise InvalidInputError(
            f"detrend_half_life={hl!r} must be positive (events), 'auto' or None"
        )
    if not -1.0 <= p["detrend_min_autocorr"] <= 1.0:
        raise InvalidInputError(
            f"detrend_min_autocorr={p['detrend_min_autocorr']!r} must be in [-1, 1]; try 0.75"
        )
    w = p["smooth_window"]
    if int(w) != w or w < 1:
        raise InvalidInputError(f"smooth_window={w!r}; use an integer >= 1")
    return p
