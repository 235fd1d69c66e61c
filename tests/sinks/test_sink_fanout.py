"""FanoutSink: one failing sink never stops the others; flush and close reach every sink."""

from __future__ import annotations

import io
import json
from pathlib import Path

from testkit.sinks import make_incident, make_record

from streamem.alerting.records import AnomalyRecord, Incident
from streamem.sinks.base import SinkStats
from streamem.sinks.fanout import FanoutSink
from streamem.sinks.jsonl import FileSink, StdoutSink


class Exploding:
    """A sink whose every call raises (a bug, a full disk, a dead peer)."""

    def __init__(self, name: str = "exploding") -> None:
        self.name = name
        self.stats = SinkStats()
        self.closed = 0

    def emit(self, record: AnomalyRecord) -> None:
        raise RuntimeError("emit exploded")

    def emit_incident(self, incident: Incident) -> None:
        raise ValueError("emit_incident exploded")

    def flush(self, timeout: float = 10.0) -> bool:
        raise OSError("flush exploded")

    def close(self) -> None:
        self.closed += 1
        raise OSError("close exploded")

    def __enter__(self) -> Exploding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_failures_are_isolated_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    bad = Exploding()
    out = io.StringIO()
    with FanoutSink([bad, FileSink("file", path), StdoutSink("out", out)]) as fan:
        for i in range(5):
            fan.emit(make_record(i))
        fan.emit_incident(make_incident())
        assert fan.flush(1.0) is False  # one sink failed to flush
    assert fan.errors == {"exploding": 8, "file": 0, "out": 0}  # 5 + 1 + flush + close
    assert bad.stats.failed == 8 and bad.closed == 1
    assert len(path.read_text().splitlines()) == 6  # the good sinks got everything
    assert len(out.getvalue().splitlines()) == 6
    assert fan.stats.failed == 6 and fan.stats.delivered == 0
    fan.close()  # idempotent: the failing close is not repeated
    assert bad.closed == 1


def test_all_good_sinks_count_delivered(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with FanoutSink([FileSink("a", paths[0]), FileSink("b", paths[1])]) as fan:
        fan.emit(make_record(1))
        assert fan.flush(1.0) is True
    assert fan.stats.delivered == 1
    assert [json.loads(p.read_text())["id"] for p in paths] == ["events:0:1"] * 2
