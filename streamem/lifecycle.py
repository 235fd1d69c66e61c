"""Process lifecycle: signal capture that restores the previous handlers.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["EXIT_FORCED", "capture_signals"]

logger = logging.getLogger(__name__)

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
