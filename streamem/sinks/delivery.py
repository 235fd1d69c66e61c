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
   a 2xx, or as a dead letter (below). On start the worker tries the spool at once, so what
   a previous process spooled drains after a restart. Runs of up to 64 spooled deliveries
   are acknowledged with one fsync; a crash inside a run repeats that run (receivers
   de-duplicate on ``X-Streamem-Id``), it never loses it.

**Dead letters.** A delivery that can never be made goes to the spool's dead-letter file
``rejected.jsonl`` with its reason (counted in ``stats.rejected``) and never blocks those
behind it: a permanent answer (4xx other than 408/429, or a redirect), a request that
cannot even be built, and a head of the spool that keeps failing (``_POISON_AFTER``
attempts) while the delivery behind it is accepted (the peer refuses that one record).

**Nothing is lost silently.** When the spool cannot be written (a full disk), deliveries stay
in memory and the worker retries the write; :meth:`~QueuedHttpSink.flush` reports False
meanwhile, so the daemon never checkpoints past them. Beyond ``queue_size`` of those, new
ones are dropped, and ``flush`` returns False for the rest of the process: its checkpoint
never moves again and a restart replays the records from the last one.

Subclasses turn records into :class:`~streamem.sinks.spool.Delivery` bodies and choose url
and headers (``X-Streamem-Id`` is :func:`~streamem.sinks.payload.header_id` of the id).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.config.rules import check_sink_value
from streamem.errors import SinkError
from streamem.sinks.base import ClosingSink, SinkStats
from streamem.sinks.http import HttpTransport, redact_url
from streamem.sinks.payload import header_id
from streamem.sinks.retry import Outcome, RetryPolicy, classify_status
from streamem.sinks.spool import Delivery, Spool, SpooledDelivery

__all__ = ["QueuedHttpSink"]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_BATCH = 1000
_SPOOL_RUN = 64  # spooled deliveries sent per acknowledgement (one fsync)...
_SPOOL_RUN_SECONDS = 0.5  # ...or fewer, so the acknowledged position never lags far
_POISON_AFTER = 10  # failures of one spool head before the delivery behind it is tried


class QueuedHttpSink(ClosingSink):
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
        self._last_failure = ""
        self._unspooled: list[Delivery] = []  # the spool write failed: retried by the worker
        self._unspooled_due = 0.0
        self._unspooled_failures = 0
        self._lost = 0  # dropped for good: flush() is False from then on
        self.last_error: str | None = None
        """Why deliveries wait in memory (the spool write failed), or ``None``."""
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
        return {"X-Streamem-Id": header_id(delivery.id)}

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
        """Append in-memory deliveries to the spool and settle them; if the spool cannot be
        written, keep them in memory (still pending) for the worker to retry."""
        try:
            self._spool.append(deliveries)
        except SinkError as exc:
            self._park(deliveries, exc)
            return
        self._count("spooled", len(deliveries))
        self._settle(len(deliveries))

    def _park(self, deliveries: list[Delivery], exc: SinkError) -> None:
        """Keep deliveries the spool refused in memory (bounded); they stay pending."""
        with self._cond:
            room = max(0, self._queue.maxsize - len(self._unspooled))
            kept, lost = deliveries[:room], deliveries[room:]
            first = not self._unspooled
            self._unspooled.extend(kept)
            if first:
                self._unspooled_due = self._clock()
            self._unspooled_failures = max(1, self._unspooled_failures)
            self.last_error = f"cannot spool: {exc}"
            self._cond.notify_all()
        if first:
            logger.error("sink %s: cannot spool %d deliveries (%s); keeping them in memory "
                         "and retrying, checkpoints wait meanwhile", self.name, len(kept), exc)
        if lost:
            with self._cond:
                self._lost += len(lost)
            self._count("dropped", len(lost))
            logger.error("sink %s: dropped %d deliveries (%d held in memory already): %s; "
                         "no checkpoint is taken any more, so a restart replays them",
                         self.name, len(lost), self._queue.maxsize, exc)
            self._settle(len(lost))

    def _retry_unspooled(self, force: bool = False) -> None:
        """Worker side: try again to spool what the spool refused (with backoff)."""
        with self._cond:
            if not self._unspooled or (not force and self._clock() < self._unspooled_due):
                return
            batch = list(self._unspooled)
        try:
            self._spool.append(batch)
        except SinkError as exc:
            with self._cond:
                self._unspooled_failures += 1
                self._unspooled_due = self._clock() + self._policy.delay(
                    self._unspooled_failures, self._rng)
                self.last_error = f"cannot spool: {exc}"
                self._cond.notify_all()
            return
        with self._cond:
            del self._unspooled[:len(batch)]
            self._unspooled_failures = 0
            self.last_error = None
        self._count("spooled", len(batch))
        logger.warning("sink %s: spooled %d deliveries held in memory; the spool works again",
                       self.name, len(batch))
        self._settle(len(batch))

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
            True when nothing is left only in memory (everything is delivered or spooled)
            and nothing was ever dropped by this sink.
        """
        deadline = self._clock() + timeout

        def settled() -> bool:  # all delivered or spooled, or the spool is failing now
            return self._pending == 0 or self._unspooled_failures > 0

        with self._cond:
            if self._cond.wait_for(settled, timeout / 2) and self._pending == 0:
                return self._lost == 0
        self._hurry.set()
        try:
            while batch := self._drain_queue():
                self._to_spool(batch)
            with self._cond:
                self._cond.wait_for(settled, max(0.0, deadline - self._clock()))
                return self._pending == 0 and self._lost == 0
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
            if self._unspooled:
                logger.error("sink %s: %d deliveries could not be spooled before close; they "
                             "are replayed from the last checkpoint", self.name,
                             len(self._unspooled))
            if self._owns_transport:
                self._transport.close()

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
                self._retry_unspooled()
                if self._spool.size() > 0:
                    self._step_spooled()
                else:
                    self._step_live()
            except Exception:  # the worker must outlive any one bad delivery
                logger.exception("sink %s: delivery worker error; retrying in 1 s", self.name)
                self._stop.wait(1.0)
        if batch := self._drain_queue():
            self._to_spool(batch)
        self._retry_unspooled(force=True)

    def _step_live(self) -> None:
        try:
            delivery = self._queue.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            return
        parked = False
        try:
            parked = self._deliver_live(delivery)
        finally:
            if not parked:
                self._settle()

    def _deliver_live(self, delivery: Delivery) -> bool:
        """Send one delivery with retries, else spool it; True if it was parked in memory
        (the spool refused it), so it is still pending."""
        attempt = 0
        while True:
            outcome, retry_after = self._attempt(delivery)
            if outcome != "retry":
                return False
            wait = self._policy.delay(attempt, self._rng, retry_after)
            if (attempt >= self._policy.max_retries or wait > self._policy.backoff_max_seconds
                    or self._hurry.is_set() or self._hurry.wait(wait)):
                self._spool_due = self._clock() + wait
                self._spool_failures = attempt + 1
                try:
                    self._spool.append([delivery])
                except SinkError as exc:
                    self._park([delivery], exc)
                    return True
                self._count("spooled")
                logger.warning("sink %s: spooled %r after %d attempts", self.name,
                               delivery.id, attempt + 1)
                return False
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
        heads = self._spool.peek(_SPOOL_RUN)
        for n, head in enumerate(heads):
            if self._spool_failures > 0:
                self._count("retried")
            outcome, retry_after = self._attempt(head.delivery)
            if outcome == "retry":
                if (n == 0 and len(heads) > 1 and self._spool_failures + 1 >= _POISON_AFTER
                        and self._poisoned(head, heads[1])):
                    done = heads[:2]
                    self._spool_failures = 0
                    break
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

    def _poisoned(self, head: SpooledDelivery, behind: SpooledDelivery) -> bool:
        """The head keeps failing: try the delivery behind it. If the peer takes that one,
        the head is refused for this record alone: dead-letter it (True: ack both)."""
        failure = self._last_failure
        outcome, _ = self._attempt(behind.delivery)
        if outcome == "retry":
            return False
        reason = (f"failed {self._spool_failures + 1} times while later records were "
                  f"accepted; last failure: {failure}")
        return self._dead_letter(head.delivery, reason)

    def _dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Record an undeliverable delivery in ``rejected.jsonl``; False if that failed."""
        try:
            self._spool.reject(delivery, reason)
        except SinkError as exc:
            logger.error("sink %s: cannot dead-letter %r (%s); it stays queued", self.name,
                         delivery.id, exc)
            return False
        self._count("rejected")
        logger.error("sink %s: %r cannot be delivered (%s); kept in %s", self.name,
                     delivery.id, reason, self._spool.directory / "rejected.jsonl")
        return True

    def _attempt(self, delivery: Delivery) -> tuple[Outcome, float | None]:
        """One POST; counts the outcome; permanent failures go to ``rejected.jsonl``."""
        try:
            response = self._transport.post_json(self._target(delivery), delivery.body,
                                                 self._headers(delivery),
                                                 self.timeout_seconds)
        except SinkError as exc:
            self._count("failed")
            self._last_failure = str(exc)
            logger.debug("sink %s: %r failed: %s", self.name, delivery.id, exc)
            return "retry", exc.retry_after
        except Exception as exc:  # the request cannot even be built: it never will be
            self._count("failed")
            reason = f"cannot send the request: {type(exc).__name__}: {exc}"
            return ("reject" if self._dead_letter(delivery, reason) else "retry"), None
        outcome = classify_status(response.status)
        if outcome == "delivered":
            self._count("delivered")
        elif outcome == "reject":
            self._count("failed")
            if not self._dead_letter(delivery, f"HTTP {response.status}: "
                                               f"{response.text[:120]}"):
                return "retry", None
        else:
            self._count("failed")
            self._last_failure = f"HTTP {response.status}: {response.text[:120]}"
            logger.debug("sink %s: %r got HTTP %d", self.name, delivery.id, response.status)
        return outcome, response.retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={redact_url(self.url)!r})"
