"""Liveness and readiness: the state behind ``/healthz``, ``/readyz`` and ``streamem_up``.

:class:`Probes` is held by :class:`~streamem.metrics.recorder.Metrics`: the daemon loop
reports through it that it runs (:meth:`Probes.heartbeat`, :meth:`Probes.set_up`), that
warm-up is done (:meth:`Probes.set_ready`) and that a sink failure holds the checkpoint back
(:meth:`Probes.set_sinks_blocked`); :class:`~streamem.metrics.server.MetricsServer` answers
the probes from it (:meth:`Probes.liveness`, :meth:`Probes.readiness`). Pure: the owner
publishes ``streamem_up`` and ``streamem_ready`` through the ``show_up`` and ``show_ready``
callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Probes"]


def _ignore(_: bool) -> None:
    """Default callback: publish nothing."""


class Probes:
    """Liveness (heartbeats, running or stopped) and readiness (warm-up done) of the loop.

    Parameters
    ----------
    show_up, show_ready
        Called with the new state on :meth:`set_up` and :meth:`set_ready` (the owner sets
        the ``streamem_up`` and ``streamem_ready`` gauges there).

    Examples
    --------
    >>> p = Probes(); p.set_ready(True)
    >>> p.liveness(timeout=60.0), p.readiness()
    ((True, 'ok'), (True, 'ready'))
    """

    def __init__(self, show_up: Callable[[bool], None] = _ignore,
                 show_ready: Callable[[bool], None] = _ignore) -> None:
        self._show_up = show_up
        self._show_ready = show_ready
        self._last_beat = time.monotonic()
        self._stopped = False
        self._up = False
        self._ready = False
        self._blocked: str | None = None
        self._blocked_since: float | None = None

    def heartbeat(self) -> None:
        """Tell ``/healthz`` that the daemon loop is alive (call once per loop turn).

        Examples
        --------
        >>> shown = []
        >>> p = Probes(show_up=shown.append); p.heartbeat(); p.heartbeat()
        >>> p.liveness(timeout=10.0), shown
        ((True, 'ok'), [True])
        """
        self._last_beat = time.monotonic()
        if not self._up:
            self.set_up(True)

    def set_up(self, up: bool) -> None:
        """Mark the daemon loop running (True) or stopped (False: ``/healthz`` turns 503).

        Parameters
        ----------
        up
            Whether the loop runs.

        Examples
        --------
        >>> shown = []
        >>> p = Probes(show_up=shown.append); p.set_up(False)
        >>> p.liveness(timeout=10.0)[0], shown
        (False, [False])
        """
        self._stopped = not up
        self._up = bool(up)
        if up:
            self._last_beat = time.monotonic()
        self._show_up(up)

    def set_ready(self, ready: bool) -> None:
        """Mark warm-up done (``/readyz`` 200, ``streamem_ready`` 1) or not.

        Parameters
        ----------
        ready
            Whether the model scores.

        Examples
        --------
        >>> shown = []
        >>> p = Probes(show_ready=shown.append); p.set_ready(True)
        >>> p.readiness(), shown
        ((True, 'ready'), [True])
        """
        self._ready = bool(ready)
        self._show_ready(ready)

    def set_sinks_blocked(self, reason: str | None) -> None:
        """Mark the checkpoint held back because a sink cannot write (``/readyz`` 503 with
        ``reason``), or released (``None``).

        Parameters
        ----------
        reason
            Which sink fails and why, or ``None`` once every sink is durable again.

        Examples
        --------
        >>> p = Probes(); p.set_ready(True); p.set_sinks_blocked("sink file: disk full")
        >>> p.readiness()
        (False, 'not ready: checkpoint held back, sink failing: sink file: disk full')
        >>> p.sinks_blocked_seconds() > 0
        True
        >>> p.set_sinks_blocked(None); p.readiness(), p.sinks_blocked_seconds()
        ((True, 'ready'), 0.0)
        """
        if reason is None:
            self._blocked, self._blocked_since = None, None
            return
        if self._blocked_since is None:
            self._blocked_since = time.monotonic()
        self._blocked = reason

    def sinks_blocked_seconds(self) -> float:
        """Seconds since a sink failure began to hold the checkpoint back (0.0 if none).

        Examples
        --------
        >>> Probes().sinks_blocked_seconds()
        0.0
        """
        since = self._blocked_since
        return 0.0 if since is None else max(1e-9, time.monotonic() - since)

    def liveness(self, timeout: float) -> tuple[bool, str]:
        """Whether the loop is alive: a heartbeat came within ``timeout`` seconds.

        Parameters
        ----------
        timeout
            Longest allowed silence; the first one counts from construction.

        Returns
        -------
        tuple of (bool, str)
            ``(alive, text for /healthz)``.

        Examples
        --------
        >>> Probes().liveness(timeout=60.0)
        (True, 'ok')
        """
        if self._stopped:
            return False, "stopped: the daemon loop is not running"
        silent = time.monotonic() - self._last_beat
        if silent > timeout:
            return False, f"stale: no heartbeat for {silent:.1f} s (limit {timeout:g} s)"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        """Whether warm-up is done.

        Returns
        -------
        tuple of (bool, str)
            ``(ready, text for /readyz)``: not ready while warming up, and while a sink
            failure holds the checkpoint back (the text names the sink and the reason).

        Examples
        --------
        >>> Probes().readiness()
        (False, 'not ready: warming up')
        """
        blocked = self._blocked
        if blocked is not None:
            return False, f"not ready: checkpoint held back, sink failing: {blocked}"
        return (True, "ready") if self._ready else (False, "not ready: warming up")
