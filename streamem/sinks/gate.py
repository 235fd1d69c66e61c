"""The checkpoint's sink gate: no checkpoint moves past records a sink did not keep.

Before every checkpoint the daemon asks :meth:`SinkGate.durable` to flush the sinks and the
dead-letter sink. When one of them cannot make everything durable (a full disk, a closed
pipe, a spool that cannot be written, a broker that does not acknowledge), the gate is
*blocked*: the daemon writes no snapshot and commits nothing, stops reading input, waits
(:meth:`SinkGate.wait`, backoff from 0.5 s doubling to 10 s) and asks again. The gate reports
the state to the metrics (``/readyz`` 503 with the reason, ``streamem_sinks_blocked_seconds``)
and raises :class:`~streamem.errors.SinkError` after ``timeout_seconds``, or at once on a stop
request, so the process exits 1 and the next start replays from the last checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from streamem.errors import SinkError
from streamem.sinks.base import DeadLetterSink
from streamem.sinks.fanout import FanoutSink

__all__ = ["SinkGate"]

logger = logging.getLogger("streamem.daemon")


class _Reporter(Protocol):
    """What the gate needs of :class:`streamem.metrics.Metrics`."""

    def set_sinks_blocked(self, reason: str | None) -> None: ...

    def heartbeat(self) -> None: ...


class SinkGate:
    """Flush sinks before a checkpoint; hold the checkpoint back (bounded) while they fail.

    Parameters
    ----------
    timeout_seconds
        How long sinks may keep failing before :meth:`durable` raises
        (``checkpoint.sinks_failure_timeout_seconds``).
    clock
        Monotonic clock.

    Examples
    --------
    >>> import io
    >>> from streamem.sinks.jsonl import StdoutSink
    >>> class Full(StdoutSink):
    ...     def flush(self, timeout=10.0): return False
    >>> from streamem.sinks.fanout import FanoutSink
    >>> gate = SinkGate(timeout_seconds=60.0)
    >>> gate.durable(FanoutSink([StdoutSink("ok", io.StringIO())]), None), gate.blocked
    (True, False)
    >>> full = FanoutSink([Full("full", io.StringIO())])
    >>> gate.durable(full, None), gate.blocked, gate.reason
    (False, True, 'sink full: not everything delivered or durably kept within 30 s')
    >>> gate.durable(full, None, stopping=True)
    Traceback (most recent call last):
    ...
    streamem.errors.SinkError: sinks failed for 0 s (sink full: not everything delivered or ...
    """

    def __init__(self, timeout_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_seconds = float(timeout_seconds)
        self.reason = ""
        self._clock = clock
        self._since: float | None = None
        self._failures = 0

    @property
    def blocked(self) -> bool:
        """True while the last :meth:`durable` failed (the checkpoint is held back)."""
        return self._since is not None

    def durable(self, sinks: FanoutSink | None, dead_letter: DeadLetterSink | None,
                metrics: _Reporter | None = None, *, stopping: bool = False,
                last_checkpoint: str = "none") -> bool:
        """Flush ``sinks`` and ``dead_letter``; True when both made everything durable.

        Parameters
        ----------
        sinks
            The sinks (a :class:`~streamem.sinks.fanout.FanoutSink`: its ``failure`` names
            the sink and the reason).
        dead_letter
            The dead-letter sink (its ``flush`` raises :class:`SinkError` on failure).
        metrics
            Where to report blocked / released.
        stopping
            A stop was requested: raise at once instead of waiting out the timeout.
        last_checkpoint
            The last checkpoint taken, for the error message.

        Returns
        -------
        bool
            True when durable; False while blocked (retry after :meth:`wait`).

        Raises
        ------
        SinkError
            When sinks failed for ``timeout_seconds``, or fail while ``stopping``.
        """
        reasons = []
        if sinks is not None and not sinks.flush(timeout=30.0):
            reasons.append(sinks.failure or "a sink did not flush")
        if dead_letter is not None:
            try:
                dead_letter.flush()
            except SinkError as exc:
                reasons.append(f"dead letters: {exc}")
        now = self._clock()
        if not reasons:
            if self._since is not None:
                logger.warning("sinks durable again after %.0f s; checkpoints resume",
                               now - self._since)
                self._since, self._failures, self.reason = None, 0, ""
                if metrics is not None:
                    metrics.set_sinks_blocked(None)
            return True
        self.reason = "; ".join(reasons)
        if self._since is None:
            self._since = now
        self._failures += 1
        if metrics is not None:
            metrics.set_sinks_blocked(self.reason)
        failing = now - self._since
        if failing >= self.timeout_seconds or stopping:
            why = ("stopped on request" if failing < self.timeout_seconds else
                   f"gave up after checkpoint.sinks_failure_timeout_seconds="
                   f"{self.timeout_seconds:g}")
            raise SinkError(f"sinks failed for {failing:.0f} s ({self.reason}); {why}; no "
                            f"checkpoint was taken after {last_checkpoint}, so fix the output "
                            "and start again: the input from there is replayed")
        if self._failures == 1 or self._failures % 10 == 0:
            logger.error("checkpoint held back: %s; input paused, retrying (giving up after "
                         "%.0f s more)", self.reason, self.timeout_seconds - failing)
        return False

    def wait(self, stopped: Callable[[], bool], metrics: _Reporter | None = None) -> None:
        """Back off before the next attempt (returns early once ``stopped()``); heartbeats
        keep ``/healthz`` at 200 meanwhile, since the loop is alive and retrying."""
        since = self._since if self._since is not None else self._clock()
        left = self.timeout_seconds - (self._clock() - since)
        pause = min(0.25 * 2.0 ** min(self._failures, 10), 10.0, max(0.05, left))
        deadline = self._clock() + pause
        while not stopped() and self._clock() < deadline:
            if metrics is not None:
                metrics.heartbeat()
            time.sleep(min(0.1, max(0.0, deadline - self._clock())))
