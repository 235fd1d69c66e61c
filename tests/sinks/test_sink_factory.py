"""build_sink: every documented sink type, and config errors that name the path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from streamem.errors import ConfigError
from streamem.sinks.alertmanager import AlertmanagerSink
from streamem.sinks.factory import build_sink
from streamem.sinks.jsonl import FileSink, StdoutSink
from streamem.sinks.webhook import WebhookSink

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_sinks_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    for index, spec in enumerate(config["sinks"]):
        with build_sink(spec, tmp_path / "state", index=index) as sink:
            assert sink.name == spec.get("name", spec["type"])


def test_documented_commented_out_sinks_build(tmp_path: Path) -> None:
    # the commented examples of config.example.yaml, with ${...} already substituted
    specs: list[dict[str, Any]] = [
        {"type": "stdout"},
        {"type": "webhook", "name": "ops-webhook", "url": "https://hooks.example.com/streamem",
         "secret": "s3cret", "timeout_seconds": 5, "max_retries": 5, "cooldown_seconds": 60,
         "queue_size": 10000},
        {"type": "alertmanager", "url": "http://127.0.0.1:9093",
         "labels": {"team": "plant-ops"}},
    ]
    kinds = [StdoutSink, WebhookSink, AlertmanagerSink]
    for index, (spec, kind) in enumerate(zip(specs, kinds, strict=True)):
        sink = build_sink(spec, tmp_path, index=index)
        try:
            assert isinstance(sink, kind)
        finally:
            sink.close()
    assert (tmp_path / "spool" / "ops-webhook").is_dir()
    assert (tmp_path / "spool" / "alertmanager").is_dir()


def test_file_sink_from_spec(tmp_path: Path) -> None:
    with build_sink({"type": "file", "name": "f", "path": str(tmp_path / "x.jsonl")},
                    tmp_path) as sink:
        assert isinstance(sink, FileSink) and sink.path == tmp_path / "x.jsonl"


@pytest.mark.parametrize(("spec", "path", "words"), [
    ({"type": "carrier-pigeon"}, "sinks[3].type", "use one of 'stdout', 'file', 'webhook'"),
    ({"type": "kafka", "topic": "a"}, "sinks[3].type", "daemon"),
    ({"type": "file"}, "sinks[3].path", "needs path"),
    ({"type": "webhook"}, "sinks[3].url", "needs url"),
    ({"type": "webhook", "url": "hooks.example.com"}, "sinks[3].url", "http://"),
    ({"type": "webhook", "url": "http://h", "timeout_seconds": "fast"},
     "sinks[3].timeout_seconds", "number"),
    ({"type": "webhook", "url": "http://h", "timeout_seconds": 0},
     "sinks[3].timeout_seconds", "positive"),
    ({"type": "webhook", "url": "http://h", "max_retries": -1}, "sinks[3].max_retries",
     "negative"),
    ({"type": "webhook", "url": "http://h", "max_retries": True}, "sinks[3].max_retries",
     "integer"),
    ({"type": "webhook", "url": "http://h", "queue_size": 0}, "sinks[3].queue_size",
     "at least 1"),
    ({"type": "webhook", "url": "http://h", "retries": 3}, "sinks[3].retries",
     "unknown key"),
    ({"type": "webhook", "url": "http://h", "name": "a/b"}, "sinks[3].name", "valid"),
    ({"type": "alertmanager", "url": "http://h", "labels": {"team": [5]}},
     "sinks[3].labels.team", "string"),
    ({"type": "alertmanager", "url": "http://h", "labels": {"severity": "x"}},
     "sinks[3].labels.severity", "set by streamem"),
    ({"type": "alertmanager", "url": "http://h", "labels": ["team"]}, "sinks[3].labels",
     "mapping"),
    ({"type": "alertmanager", "url": "http://h", "generator_url": "grafana/d/1"},
     "sinks[3].generator_url", "URI"),
    ({"type": "alertmanager", "url": "http://h", "refresh_seconds": 4000},
     "sinks[3].refresh_seconds", "unknown key"),  # a constructor argument, not a config key
    ({"type": "webhook", "url": "http://h", "backoff_max_seconds": 0.1},
     "sinks[3].backoff_max_seconds", "at least backoff_base_seconds=0.5"),
    ({"type": "webhook", "url": "http://h", "secret": ["s3cret"]}, "sinks[3].secret",
     "must be a string"),
])
def test_bad_specs_name_the_path(spec: dict[str, Any], path: str, words: str,
                                 tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_sink(spec, tmp_path, index=3)
    assert info.value.path == path
    assert words in info.value.message
