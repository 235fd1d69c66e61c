"""Adapter: cron expressions through ``croniter`` (the only module that imports it)."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo

import numpy as np
from croniter import croniter
from numpy.typing import NDArray

__all__ = ["cron_fires", "cron_is_valid"]


def cron_is_valid(expr: str) -> bool:
    """Whether ``expr`` is a cron expression croniter accepts.

    Examples
    --------
    >>> cron_is_valid("0 2 * * sun"), cron_is_valid("61 * * * *")
    (True, False)
    """
    return bool(croniter.is_valid(expr))


def cron_fires(expr: str, tz: tzinfo, lo: float, hi: float) -> NDArray[np.float64]:
    """Epoch seconds of every firing of ``expr`` in local time ``tz`` within ``(lo, hi]``.

    Local times that do not exist (a daylight-saving gap) fire at the first valid minute
    after, as croniter does; ambiguous ones fire once.

    Examples
    --------
    >>> from datetime import timezone
    >>> cron_fires("0 * * * *", timezone.utc, 0.0, 7200.0).tolist()
    [3600.0, 7200.0]
    """
    it = croniter(expr, datetime.fromtimestamp(lo, tz=timezone.utc).astimezone(tz))
    out: list[float] = []
    while True:
        t = float(it.get_next(datetime).timestamp())
        if t > hi:
            return np.array(out)
        out.append(t)
