"""Process lifecycle: signal capture that restores the previous handlers, the periodic
status line, and the run's closing summary.

The first SIGTERM or SIGINT asks for a graceful stop (finish the batch, flush the sinks, a
final checkpoint). A second one ends the process at once with exit code 130, without
waiting for sinks or peers: like a ``kill -9``, what was not yet durable is replayed from
the last checkpoint on the next start, so nothing is lost.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

__all__ = ["EXIT_FORCED", "RunSummary", "StatusLog", "capture_signals"]

logger = logging.getLogger(__name__)
_daemon_log = logging.getLogger("streamem.daemon")  # the status line: the daemon's logger

EXIT_FORCED = 130
"""Exit code of a forced stop (the second signal), as for a shell's Ctrl-C."""


def _exit_now(signum: int) -> None:
    """End the process at once: no sink is closed, no checkpoint written."""
    try:
        logger.warning("received %s again; exiting at once (what is not durable yet is "
                       "replayed from the last checkpoint)", signal.Signals(signum).name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.write("streamem: interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(EXIT_FORCED)


@contextmanager
def capture_signals(on_stop: Callable[[], None], enabled: bool = True) -> Iterator[None]:
    """Route SIGTERM and SIGINT to ``on_stop`` (graceful); a second signal exits at once.

    The second signal (either kind) ends the process with :data:`EXIT_FORCED` (130)
    immediately, without unwinding: sinks and peers that are slow to close cannot hold it.
    Handlers are installed only in the main thread and restored on exit.

    Examples
    --------
    >>> stopped = []
    >>> with capture_signals(lambda: stopped.append(1)):
    ...     signal.raise_signal(signal.SIGTERM)
    >>> stopped
    [1]
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if seen:
            _exit_now(signum)
        seen.append(signum)
        logger.info("received %s; finishing the batch, then a final checkpoint",
                    signal.Signals(signum).name)
        on_stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass(frozen=True)
class RunSummary:
    """Totals of one ``run()``."""

    events: int
    learned: int
    anomalous: int
    rejected: int
    checkpoints: int
    seconds: float

    def line(self) -> str:
        """The one-line summary logged at shutdown.

        Examples
        --------
        >>> RunSummary(10, 8, 1, 1, 2, 0.5).line()
        'streamem stopped: 10 events (8 learned, 1 anomalous, 1 rejected) in 0.5 s, 2 checkpoints'
        """
        return (f"streamem stopped: {self.events} events ({self.learned} learned, "
                f"{self.anomalous} anomalous, {self.rejected} rejected) in {self.seconds:.1f} s, "
                f"{self.checkpoints} checkpoints")


class StatusLog:
    """The periodic progress line (events/s, anomalies, rejected, lag) and the pace of the
    health reports (at most once a second).

    Parameters
    ----------
    interval
        Seconds between two progress lines (``logging.status_interval_seconds``).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = time.monotonic()
        self._last_events = 0
        self._last_health = 0.0

    def health_due(self) -> bool:
        """True at most once a second."""
        now = time.monotonic()
        if now - self._last_health >= 1.0:
            self._last_health = now
            return True
        return False

    def maybe_log(self, totals: dict[str, int], lag_of: Callable[[], dict[int, int]]) -> None:
        """Log the progress line if ``interval`` passed since the last one."""
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        lag = lag_of()
        rate = (totals["events"] - self._last_events) / (now - self._last)
        lag_total = sum(lag.values()) if lag else 0
        _daemon_log.info("status: %.0f events/s, %d events, %d anomalies, %d rejected, lag %d",
                    rate, totals["events"], totals["anomalous"], totals["rejected"], lag_total)
        self._last, self._last_events = now, totals["events"]
