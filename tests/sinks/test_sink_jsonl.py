"""StdoutSink and FileSink: JSON lines, durability on flush, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from testkit.sinks import make_incident, make_record

from streamem.errors import SinkError
from streamem.sinks.jsonl import FileSink, StdoutSink


def test_file_sink_lines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "anomalies.jsonl"
    record = make_record(5)
    with FileSink("file", path) as sink:
        sink.emit(record)
        sink.emit_incident(make_incident(last=record, count=3))
        assert sink.flush()
        # visible to another reader after flush, before close
        lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [doc["type"] for doc in lines] == ["anomaly", "incident"]
    anomaly, incident = lines
    expected = record.to_dict()
    expected["type"] = "anomaly"
    expected["top_features"][1]["value"] = None  # NaN is written as null
    assert anomaly == expected
    assert math.isnan(record.top_features[1].value)
    assert incident["count"] == 3 and incident["last"]["id"] == record.id
    assert sink.stats.delivered == 2


def test_file_sink_appends_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    for i in range(3):
        with FileSink("file", path) as sink:
            sink.emit(make_record(i))
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert ids == ["events:0:0", "events:0:1", "events:0:2"]


def test_file_sink_errors_name_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    with pytest.raises(SinkError, match="file-not-dir"):
        FileSink("file", blocker / "x.jsonl")
    sink = FileSink("file", tmp_path / "ok.jsonl")
    sink.close()
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.emit(make_record(1))


def test_stdout_sink_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with StdoutSink() as sink:
        sink.emit(make_record(1))
        sink.emit_incident(make_incident(status="resolved", ended_at=1e9 + 1))
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["type"] for line in out] == ["anomaly", "incident"]
    assert json.loads(out[1])["status"] == "resolved"
    assert sink.name == "stdout"
