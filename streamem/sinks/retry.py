"""Retry policy of the network sinks: which answers to retry, and how long to wait (pure).

Exponential backoff with *full jitter* (the wait is drawn uniformly between zero and the
exponential ceiling), so many daemons recovering together do not hit a receiver in step.
A ``Retry-After`` from the peer is a floor on the wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from streamem.config.rules import check_backoff, check_sink_value

__all__ = ["Outcome", "RetryPolicy", "classify_status"]

Outcome = Literal["delivered", "retry", "reject"]


def classify_status(status: int) -> Outcome:
    """What to do after an HTTP answer.

    Parameters
    ----------
    status
        The HTTP status code.

    Returns
    -------
    str
        ``"delivered"`` for 2xx; ``"retry"`` for 408, 429 and 5xx (the receiver may accept
        it later); ``"reject"`` for every other answer (a 4xx or a redirect will not change
        by retrying: fix the request or the url).

    Examples
    --------
    >>> [classify_status(s) for s in (200, 204, 408, 429, 503, 400, 401, 301)]
    ['delivered', 'delivered', 'retry', 'retry', 'retry', 'reject', 'reject', 'reject']
    """
    if 200 <= status < 300:
        return "delivered"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "reject"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one delivery.

    Parameters
    ----------
    max_retries
        Retries after the first attempt before the delivery goes to the spool.
    backoff_base_seconds
        Ceiling of the first wait; it doubles with each retry...
    backoff_max_seconds
        ...up to this ceiling.

    Raises
    ------
    ConfigError
        For a negative count or non-positive times.

    Examples
    --------
    >>> policy = RetryPolicy(max_retries=3, backoff_base_seconds=0.5, backoff_max_seconds=2)
    >>> rng = random.Random(0)
    >>> [round(policy.delay(a, rng), 3) for a in range(4)]
    [0.422, 0.758, 0.841, 0.518]
    >>> policy.delay(0, rng, retry_after=5.0)
    5.0
    """

    max_retries: int = 5
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    def __post_init__(self) -> None:
        check_sink_value("max_retries", self.max_retries)  # the config's rules
        check_backoff(self.backoff_base_seconds, self.backoff_max_seconds)

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the wait before retry number ``attempt + 1``."""
        return min(self.backoff_max_seconds, self.backoff_base_seconds * 2.0 ** min(attempt, 60))

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """The wait before the next attempt.

        Parameters
        ----------
        attempt
            Attempts failed so far, minus one (0 after the first failure).
        rng
            Source of the jitter.
        retry_after
            The peer's ``Retry-After`` in seconds, if any: a floor on the wait.

        Returns
        -------
        float
            Seconds to wait.
        """
        wait = rng.uniform(0.0, self.ceiling(attempt))
        return wait if retry_after is None else max(wait, retry_after)
