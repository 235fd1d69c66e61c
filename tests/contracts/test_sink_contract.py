"""The Sink contract, run against every Sink implementation (and the DeadLetterSink one).

Every sink: satisfies the protocol; derives from the shared context-manager base
(:class:`~streamem.sinks.base.ClosingSink`), so ``with sink:`` closes it; closes
idempotently; refuses to emit after close (SinkError); returns from ``emit`` quickly even
when its peer is slow; ``flush`` returns True once everything is handed over; and accounts
for every record it was given (``delivered + suppressed`` on the happy path).
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testkit.sinks import Receiver, make_incident, make_record

import streamem.sinks
from streamem.errors import SinkError
from streamem.sinks.alertmanager import AlertmanagerSink
from streamem.sinks.base import ClosingSink, DeadLetterSink, Sink, SinkStats
from streamem.sinks.deadletter import FileDeadLetterSink
from streamem.sinks.fanout import FanoutSink
from streamem.sinks.jsonl import FileSink, StdoutSink
from streamem.sinks.webhook import WebhookSink

FAST = {"backoff_base_seconds": 0.02, "backoff_max_seconds": 0.1, "timeout_seconds": 2.0}
Factory = Callable[[Path, str], Sink]


def _kafka(tmp: Path, url: str) -> Sink:
    """A KafkaSink on the real test broker (started by the script when needed), own topic."""
    from streamem.sinks.kafka import KafkaSink

    kafka_support = importlib.import_module("testkit.broker")
    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.create_topic(bootstrap, kafka_support.unique_name("sink-contract"))
    return KafkaSink([bootstrap], topic, name="kafka")

FACTORIES: dict[str, Factory] = {
    "stdout": lambda tmp, url: StdoutSink("stdout", io.StringIO()),
    "file": lambda tmp, url: FileSink("file", tmp / "out.jsonl"),
    "webhook": lambda tmp, url: WebhookSink("hook", url + "/hook", secret="s",
                                            spool_dir=tmp / "spool", cooldown_seconds=0,
                                            **FAST),  # type: ignore[arg-type]
    "alertmanager": lambda tmp, url: AlertmanagerSink("am", url, spool_dir=tmp / "spool",
                                                      **FAST),  # type: ignore[arg-type]
    "fanout": lambda tmp, url: FanoutSink([FileSink("f1", tmp / "a.jsonl"),
                                           StdoutSink("s1", io.StringIO())]),
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


FACTORIES["kafka"] = _kafka


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.kafka) if name == "kafka" else name
                        for name in sorted(FACTORIES)])
def make(request: pytest.FixtureRequest, tmp_path: Path,
         receiver: Receiver) -> Callable[[], Sink]:
    factory = FACTORIES[request.param]
    return lambda: factory(tmp_path, receiver.url)


def test_satisfies_the_protocol(make: Callable[[], Sink]) -> None:
    sink = make()
    try:
        assert isinstance(sink, Sink)
        assert isinstance(sink.name, str) and sink.name
        assert isinstance(sink.stats, SinkStats)
        assert sink.name in repr(sink)
    finally:
        sink.close()


def test_context_manager_closes_and_close_is_idempotent(make: Callable[[], Sink]) -> None:
    with make() as sink:
        assert isinstance(sink, ClosingSink)  # the one shared context-manager base
        sink.emit(make_record(1))
    with pytest.raises(SinkError):  # the with block closed it
        sink.emit(make_record(2))
    sink.close()
    sink.close()
    with pytest.raises(SinkError):
        sink.emit(make_record(2))


def test_flush_on_an_empty_sink(make: Callable[[], Sink]) -> None:
    with make() as sink:
        assert sink.flush(2.0) is True
        assert sink.flush(0.5) is True


def test_every_record_is_accounted_for(make: Callable[[], Sink]) -> None:
    with make() as sink:
        sink.emit_incident(make_incident(key="pump-1"))
        for i in range(10):
            sink.emit(make_record(i, key="pump-1" if i % 2 else None))
        sink.emit_incident(make_incident(key="pump-1", status="resolved", ended_at=1e9 + 9))
        assert sink.flush(5.0) is True
        stats = sink.stats
        assert stats.delivered + stats.suppressed == 12
        assert stats.delivered >= 2  # incidents are never suppressed
        assert (stats.failed, stats.dropped, stats.spooled, stats.spool_size) == (0, 0, 0, 0)


def test_emit_returns_quickly_when_the_peer_is_slow(make: Callable[[], Sink],
                                                     receiver: Receiver) -> None:
    receiver.set("slow", delay=0.5)
    with make() as sink:
        sink.emit_incident(make_incident())
        worst = 0.0
        for i in range(20):
            start = time.perf_counter()
            sink.emit(make_record(i))
            worst = max(worst, time.perf_counter() - start)
        # a sink that waited for the peer would take >= 0.5 s per emit; the margin below that
        # absorbs scheduler stalls on a loaded 2-core CI machine (0.1 s flaked once)
        assert worst < 0.4
        receiver.set("ok")


def test_anomalies_with_missing_values_and_no_key(make: Callable[[], Sink]) -> None:
    with make() as sink:
        sink.emit(make_record(1, key=None, severity=float("nan")))
        assert sink.flush(5.0)
        assert sink.stats.failed == 0


def test_dead_letter_contract(tmp_path: Path) -> None:
    with FileDeadLetterSink("dlq", tmp_path / "dlq.jsonl") as dlq:
        assert isinstance(dlq, DeadLetterSink)
        dlq.write(b"\xff", "parse_error", "f:0:0")
        dlq.flush()
    dlq.close()
    dlq.flush()  # a no-op once closed
    with pytest.raises(SinkError):
        dlq.write(b"x", "parse_error", "f:0:1")


def _kafka_dead_letter(tmp: Path) -> DeadLetterSink:
    from streamem.sinks.kafka import KafkaDeadLetterSink

    kafka_support = importlib.import_module("testkit.broker")
    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.create_topic(bootstrap, kafka_support.unique_name("dlq-contract"))
    return KafkaDeadLetterSink([bootstrap], topic)


DEAD_LETTER_FACTORIES: dict[str, Callable[[Path], DeadLetterSink]] = {
    "file": lambda tmp: FileDeadLetterSink("dlq", tmp / "dlq.jsonl"),
    "kafka": _kafka_dead_letter,
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.kafka) if n == "kafka"
                                  else n for n in sorted(DEAD_LETTER_FACTORIES)])
def test_dead_letter_with_block_closes(name: str, tmp_path: Path) -> None:
    with DEAD_LETTER_FACTORIES[name](tmp_path) as dlq:
        assert isinstance(dlq, ClosingSink) and isinstance(dlq, DeadLetterSink)
        dlq.write(b"{", "parse_error", "f:0:0")
        dlq.flush()
    with pytest.raises(SinkError):
        dlq.write(b"x", "parse_error", "f:0:1")
    dlq.close()


def _sink_classes() -> dict[str, type]:
    """Every public class in streamem.sinks that implements Sink or DeadLetterSink."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(streamem.sinks.__path__, "streamem.sinks."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or name.startswith("_") \
                    or getattr(cls, "_is_protocol", False):
                continue
            emits = all(callable(getattr(cls, m, None)) for m in ("emit", "emit_incident"))
            write = getattr(cls, "write", None)
            letters = callable(write) and "reason" in inspect.signature(write).parameters
            if emits or letters:
                found[name] = cls
    return found


def test_every_sink_implementation_runs_this_contract() -> None:
    # the classes the factories above build (QueuedHttpSink: the base of webhook/alertmanager)
    covered = {"StdoutSink", "FileSink", "WebhookSink", "AlertmanagerSink", "FanoutSink",
               "KafkaSink", "QueuedHttpSink", "FileDeadLetterSink", "KafkaDeadLetterSink"}
    found = _sink_classes()
    assert {"KafkaDeadLetterSink", "FanoutSink", "FileSink"} <= set(found)  # the finder works
    assert set(found) <= covered, f"not in the contract suite: {set(found) - covered}"
    assert [n for n, cls in found.items() if not issubclass(cls, ClosingSink)] == []
