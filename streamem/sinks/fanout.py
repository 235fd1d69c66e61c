"""One sink that hands every record to several, isolating their failures.

A sink that raises never stops the others or the daemon loop: the exception is logged
(with its traceback the first time, then every 100th time, so a broken sink cannot flood the
log) and counted, per sink, in :attr:`FanoutSink.errors` and in that sink's
``stats.failed``.

:meth:`FanoutSink.flush` is what the daemon's checkpoint waits on: it returns False when any
sink could not make everything durable (its flush raised or returned False), and
:attr:`FanoutSink.failure` then says which sink and why, for the log and ``/readyz``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.errors import SinkError
from streamem.sinks.base import ClosingSink, Sink, SinkStats

__all__ = ["FanoutSink"]

logger = logging.getLogger(__name__)


class FanoutSink(ClosingSink):
    """Emit to every sink in turn; one failing sink never affects the others.

    Parameters
    ----------
    sinks
        The sinks (their names should be distinct: errors are counted by name).
    name
        Name of the fan-out itself.

    Examples
    --------
    >>> import io
    >>> from streamem.sinks.jsonl import StdoutSink
    >>> class Broken(StdoutSink):
    ...     def emit(self, record): raise OSError("disk on fire")
    >>> out = io.StringIO()
    >>> r = AnomalyRecord(id="f:0:1", key="k", timestamp=None, score=9.0,
    ...                   tail_probability=1e-9, severity=90.0, threshold=6.0)
    >>> with FanoutSink([Broken("broken", io.StringIO()), StdoutSink("ok", out)]) as fan:
    ...     fan.emit(r)
    >>> fan.errors, out.getvalue().count("\\n"), fan.stats.failed
    ({'broken': 1, 'ok': 0}, 1, 1)
    >>> class Full(StdoutSink):
    ...     def flush(self, timeout=10.0): raise SinkError("cannot write: disk full")
    >>> fan = FanoutSink([Full("full", io.StringIO()), StdoutSink("ok", io.StringIO())])
    >>> fan.flush(1.0), fan.failure
    (False, 'sink full: cannot write: disk full')
    """

    def __init__(self, sinks: Iterable[Sink], name: str = "fanout") -> None:
        self.name = name
        self.sinks: tuple[Sink, ...] = tuple(sinks)
        self.stats = SinkStats()
        self.errors: dict[str, int] = {sink.name: 0 for sink in self.sinks}
        self.failure: str | None = None
        """Why the last :meth:`flush` returned False (``None`` after a clean one)."""
        self._closed = False

    def _each(self, action: str, call: Callable[[Sink], object],
              failures: list[str] | None = None) -> bool:
        ok = True
        for sink in self.sinks:
            try:
                call(sink)
            except Exception as exc:
                ok = False
                if failures is not None:
                    failures.append(f"sink {sink.name}: {exc}")
                count = self.errors.get(sink.name, 0) + 1
                self.errors[sink.name] = count
                sink.stats.failed += 1
                if count == 1 or count % 100 == 0:
                    logger.exception("sink %s: %s failed (%d failures so far); other sinks "
                                     "continue", sink.name, action, count)
        return ok

    def _check_open(self) -> None:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; emit before close()")

    def emit(self, record: AnomalyRecord) -> None:
        """Hand one anomaly to every sink; count it delivered if all took it."""
        self._check_open()
        if self._each("emit", lambda sink: sink.emit(record)):
            self.stats.delivered += 1
        else:
            self.stats.failed += 1

    def emit_incident(self, incident: Incident) -> None:
        """Hand one incident transition to every sink."""
        self._check_open()
        if self._each("emit_incident", lambda sink: sink.emit_incident(incident)):
            self.stats.delivered += 1
        else:
            self.stats.failed += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Flush every sink within one shared deadline; True if all are clean.

        False when a sink raised or returned False: what it was given is not all delivered
        or durably kept. :attr:`failure` names the sink and the reason.
        """
        deadline = time.monotonic() + timeout
        failures: list[str] = []

        def flush_one(sink: Sink) -> None:
            if not sink.flush(max(0.0, deadline - time.monotonic())):
                why = getattr(sink, "last_error", None) or (
                    f"not everything delivered or durably kept within {timeout:g} s")
                failures.append(f"sink {sink.name}: {why}")

        self._each("flush", flush_one, failures)
        self.failure = "; ".join(failures) or None
        return self.failure is None

    def close(self) -> None:
        """Close every sink (each even if another fails); safe to call twice."""
        if not self._closed:
            self._closed = True
            self._each("close", lambda sink: sink.close())

    def __repr__(self) -> str:
        return f"FanoutSink(name={self.name!r}, sinks={[s.name for s in self.sinks]!r})"
