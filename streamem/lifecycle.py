"""Process lifecycle: signal capture that restores the previous handlers."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["capture_signals"]

logger = logging.getLogger(__name__)


@contextmanager
def capture_signals(on_stop: Callable[[], None], enabled: bool = True) -> Iterator[None]:
    """Route SIGTERM and SIGINT to ``on_stop`` (graceful); a second SIGINT forces exit.

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
        if signum == signal.SIGINT and seen:
            raise KeyboardInterrupt
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
