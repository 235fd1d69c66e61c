"""The delivery machinery shared by the network sinks (webhook, Alertmanager).

:class:`QueuedHttpSink` never stalls the caller: :meth:`~QueuedHttpSink.emit` puts the
delivery on a bounded queue (or, when the queue is full, straight into the durable spool)
and returns. One worker thread then runs this state machine:

1. **Live** (spool empty): POST the next queued delivery; on a retryable failure wait with
   exponential backoff and full jitter (``Retry-After`` is a floor) and try again, up to
   ``max_retries`` times; if it still fails, append it to the spool.
2. **Spooled** (spool not empty): move queued deliveries behind it (order is kept, except
   that deliveries overflowing a full queue enter the spool ahead of those queued), and
   retry the head of the spool with growing backoff; a delivery leaves the spool only after
   a 2xx (or a permanent 4xx, which goes to ``rejected.jsonl``). On start the worker tries
   the spool at once, so what a previous process spooled drains after a restart. Runs of
   up to 64 spooled deliveries are acknowledged with one fsync; a crash inside a run
   repeats that run (receivers de-duplicate on ``X-Streamem-Id``), it never loses it.

A permanent failure (4xx other than 408/429, or a redirect) is never retried. Subclasses
turn records into :class:`~streamem.sinks.spool.Delivery` bodies and choose url and headers.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable

from streamem.config.rules import check_sink_value
from streamem.errors import SinkError
from streamem.sinks.base import Incident, SinkStats
from streamem.sinks.http import HttpTransport, redact_url
from streamem.sinks.retry import Outcome, RetryPolicy, classify_status
from streamem.sinks.spool import Delivery, Spool
from streamem.types import AnomalyRecord

__all__ = ["QueuedHttpSink"]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_BATCH = 1000
_SPOOL_RUN = 64  # spooled deliveries sent per acknowledgement (one fsync)...
_SPOOL_RUN_SECONDS = 0.5  # ...or fewer, so the acknowledged position never lags far


class QueuedHttpSink:
    """Base class of the network sinks: bounded queue, worker thread, retries, durable spool.

    Parameters
    ----------
    name
        Sink name (the ``sink`` label of the metrics).
    url
        Where to POST (subclasses may derive the final url from it).
    spool_dir
        Directory of this sink's spool (one per sink; it survives restarts).
    timeout_seconds
        Timeout of one request.
    max_retries
        Retries of a live delivery before it goes to the spool.
    backoff_base_seconds, backoff_max_seconds
        Backoff ceilings (doubling from base up to max; the wait is jittered below them).
    queue_size
        Deliveries held in memory; beyond it they go straight to the spool.
    transport
        HTTP transport to use (a new :class:`HttpTransport` by default; closed with the sink
        only when the sink created it).
    clock
        Monotonic clock (``time.monotonic``).

    Examples
    --------
    Subclasses supply the bodies; see :class:`streamem.sinks.webhook.WebhookSink` and
    :class:`streamem.sinks.alertmanager.AlertmanagerSink`:

    >>> from streamem.sinks.webhook import WebhookSink
    >>> issubclass(WebhookSink, QueuedHttpSink)
    True
    """

    def __init__(self, name: str, url: str, *, spool_dir: str | os.PathLike[str],
                 timeout_seconds: float = 5.0, max_retries: int = 5,
                 backoff_base_seconds: float = 0.5, backoff_max_seconds: float = 30.0,
                 queue_size: int = 10000, transport: HttpTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        for key, value in (("url", url), ("timeout_seconds", timeout_seconds),
                           ("queue_size", queue_size)):
            check_sink_value(key, value)  # the config's rule (streamem.config.rules)
        self.name = name
        self.url = url
        self.stats = SinkStats()
        self.timeout_seconds = float(timeout_seconds)
        self._policy = RetryPolicy(max_retries, backoff_base_seconds, backoff_max_seconds)
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=queue_size)
        self._spool = Spool(spool_dir)
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else HttpTransport(timeout_seconds)
        self._clock = clock
        self._rng = random.Random()
        self._cond = threading.Condition()
        self._pending = 0
        self._hurry = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._spool_due = 0.0
        self._spool_failures = 0
        self.stats.spool_size = self._spool.size()
        self._thread = threading.Thread(target=self._run, name=f"streamem-sink-{name}",
                                        daemon=True)
        self._thread.start()

    # -- subclass hooks -------------------------------------------------------------------

    def _anomaly_delivery(self, record: AnomalyRecord) -> Delivery | None:
        """The delivery for one anomaly, or ``None`` to skip it (count it as suppressed)."""
        raise NotImplementedError

    def _incident_delivery(self, incident: Incident) -> Delivery | None:
        """The delivery for one incident transition, or ``None`` to skip it."""
        raise NotImplementedError

    def _target(self, delivery: Delivery) -> str:
        """The url a delivery is POSTed to."""
        return self.url

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        """Extra headers of one request."""
        return {"X-Streamem-Id": delivery.id}

    def _periodic(self, now: float) -> list[Delivery]:
        """Deliveries the worker should send on its own (called about every 50 ms)."""
        return []

    # -- caller side ----------------------------------------------------------------------

    def emit(self, record: AnomalyRecord) -> None:
        """Queue one anomaly and return at once (spools it when the queue is full)."""
        self._check_open()
        delivery = self._anomaly_delivery(record)
        if delivery is not None:
            self._enqueue(delivery)

    def emit_incident(self, incident: Incident) -> None:
        """Queue one incident transition and return at once."""
        self._check_open()
        delivery = self._incident_delivery(incident)
        if delivery is not None:
            self._enqueue(delivery)

    def _check_open(self) -> None:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; emit before close()")

    def _count(self, field: str, n: int = 1) -> None:
        with self._cond:
            setattr(self.stats, field, getattr(self.stats, field) + n)

    def _enqueue(self, delivery: Delivery) -> None:
        with self._cond:
            self._pending += 1
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            self._to_spool([delivery])

    def _settle(self, n: int = 1) -> None:
        with self._cond:
            self._pending -= n
            self.stats.spool_size = self._spool.size()
            self._cond.notify_all()

    def _to_spool(self, deliveries: list[Delivery]) -> None:
        """Append in-memory deliveries to the spool and settle them (count drops on failure)."""
        try:
            self._spool.append(deliveries)
            self._count("spooled", len(deliveries))
        except SinkError as exc:
            self._count("dropped", len(deliveries))
            logger.error("sink %s: lost %d deliveries: %s", self.name, len(deliveries), exc)
        finally:
            self._settle(len(deliveries))

    def _drain_queue(self) -> list[Delivery]:
        batch: list[Delivery] = []
        while len(batch) < _BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the queue to drain; after half the timeout spool what is left.

        Parameters
        ----------
        timeout
            Seconds to wait in all.

        Returns
        -------
        bool
            True when nothing is left only in memory (everything is delivered or spooled).
        """
        deadline = self._clock() + timeout
        with self._cond:
            if self._cond.wait_for(lambda: self._pending == 0, timeout / 2):
                return True
        self._hurry.set()
        try:
            while batch := self._drain_queue():
                self._to_spool(batch)
            with self._cond:
                return self._cond.wait_for(lambda: self._pending == 0,
                                           max(0.0, deadline - self._clock()))
        finally:
            self._hurry.clear()

    def close(self) -> None:
        """Flush (spooling what cannot be delivered in time), stop the worker; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(self.timeout_seconds + 1.0)
        finally:
            self._stop.set()
            self._hurry.set()
            self._thread.join(self.timeout_seconds + 2.0)
            if self._thread.is_alive():
                logger.warning("sink %s: worker still busy at close; its in-flight delivery "
                               "may be repeated after a restart", self.name)
            else:
                self._spool.close()
            if self._owns_transport:
                self._transport.close()

    def __enter__(self) -> QueuedHttpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker side ----------------------------------------------------------------------

    def _run(self) -> None:
        last_tick = 0.0
        while not self._stop.is_set():
            try:
                now = self._clock()
                if now - last_tick >= _POLL_SECONDS:
                    last_tick = now
                    for delivery in self._periodic(now):
                        self._enqueue(delivery)
                if self._spool.size() > 0:
                    self._step_spooled()
                else:
                    self._step_live()
            except Exception:  # the worker must outlive any one bad delivery
                logger.exception("sink %s: delivery worker error; retrying in 1 s", self.name)
                self._stop.wait(1.0)
        if batch := self._drain_queue():
            self._to_spool(batch)

    def _step_live(self) -> None:
        try:
            delivery = self._queue.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            return
        try:
            self._deliver_live(delivery)
        finally:
            self._settle()

    def _deliver_live(self, delivery: Delivery) -> None:
        attempt = 0
        while True:
            outcome, retry_after = self._attempt(delivery)
            if outcome != "retry":
                return
            wait = self._policy.delay(attempt, self._rng, retry_after)
            if (attempt >= self._policy.max_retries or wait > self._policy.backoff_max_seconds
                    or self._hurry.is_set() or self._hurry.wait(wait)):
                self._spool_due = self._clock() + wait
                self._spool_failures = attempt + 1
                try:
                    self._spool.append([delivery])
                except SinkError as exc:
                    self._count("dropped")
                    logger.error("sink %s: lost %s: %s", self.name, delivery.id, exc)
                    return
                self._count("spooled")
                logger.warning("sink %s: spooled %s after %d attempts", self.name,
                               delivery.id, attempt + 1)
                return
            attempt += 1
            self._count("retried")

    def _step_spooled(self) -> None:
        if batch := self._drain_queue():
            self._to_spool(batch)
        if self._clock() < self._spool_due:
            self._stop.wait(_POLL_SECONDS)
            return
        started = self._clock()
        done = []
        for head in self._spool.peek(_SPOOL_RUN):
            if self._spool_failures > 0:
                self._count("retried")
            outcome, retry_after = self._attempt(head.delivery)
            if outcome == "retry":
                wait = self._policy.delay(self._spool_failures, self._rng, retry_after)
                self._spool_failures += 1
                self._spool_due = self._clock() + wait
                break
            self._spool_failures = 0
            done.append(head)
            if self._stop.is_set() or self._clock() - started > _SPOOL_RUN_SECONDS:
                break
        if done:
            self._spool.ack(done[-1], len(done))
            with self._cond:
                self.stats.spool_size = self._spool.size()
            if self._spool.size() == 0:
                logger.info("sink %s: spool drained", self.name)

    def _attempt(self, delivery: Delivery) -> tuple[Outcome, float | None]:
        """One POST; counts the outcome; permanent failures go to ``rejected.jsonl``."""
        try:
            response = self._transport.post_json(self._target(delivery), delivery.body,
                                                 self._headers(delivery),
                                                 self.timeout_seconds)
        except SinkError as exc:
            self._count("failed")
            logger.debug("sink %s: %s failed: %s", self.name, delivery.id, exc)
            return "retry", exc.retry_after
        outcome = classify_status(response.status)
        if outcome == "delivered":
            self._count("delivered")
        elif outcome == "reject":
            self._count("failed")
            self._count("rejected")
            reason = f"HTTP {response.status}: {response.text[:120]}"
            logger.error("sink %s: %s rejected for good (%s); kept in %s", self.name,
                         delivery.id, reason, self._spool.directory / "rejected.jsonl")
            self._spool.reject(delivery, reason)
        else:
            self._count("failed")
            logger.debug("sink %s: %s got HTTP %d", self.name, delivery.id, response.status)
        return outcome, response.retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={redact_url(self.url)!r})"
