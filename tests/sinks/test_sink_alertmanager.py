"""AlertmanagerSink payloads against a real local HTTP receiver.

The payload is checked against Alertmanager's v2 ``postableAlerts`` schema
(api/v2/openapi.yaml): an array of objects with ``labels`` (required; a labelSet, i.e. a
map of strings to strings), and optional ``annotations`` (labelSet), ``startsAt`` and
``endsAt`` (date-time) and ``generatorURL`` (uri); nothing else.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from testkit.sinks import Receiver, make_incident, make_record

from streamem.errors import ConfigError
from streamem.sinks.alertmanager import AlertmanagerSink

FAST = {"backoff_base_seconds": 0.02, "backoff_max_seconds": 0.1, "timeout_seconds": 1.0}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_time(text: str) -> float:
    assert _RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def check_postable_alerts(body: bytes) -> list[dict[str, Any]]:
    """Validate a request body against the postableAlerts schema; return the alerts."""
    alerts = json.loads(body)
    assert isinstance(alerts, list) and alerts
    for alert in alerts:
        assert set(alert) <= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        assert isinstance(alert["labels"], dict) and alert["labels"]
        for label_set in (alert["labels"], alert.get("annotations", {})):
            assert all(isinstance(k, str) and isinstance(v, str)
                       for k, v in label_set.items())
        assert all(_LABEL.match(name) for name in alert["labels"])
        if "startsAt" in alert and "endsAt" in alert:
            assert parse_time(alert["startsAt"]) <= parse_time(alert["endsAt"])
        if "generatorURL" in alert:
            parts = urlsplit(alert["generatorURL"])
            assert parts.scheme in ("http", "https") and parts.netloc
    return alerts


def am(receiver: Receiver, spool: Path, **kwargs: Any) -> AlertmanagerSink:
    return AlertmanagerSink("am", receiver.url, spool_dir=spool, **{**FAST, **kwargs})


def test_firing_then_resolved(receiver: Receiver, tmp_path: Path) -> None:
    record = make_record(3, severity=93.0)
    started = time.time() - 60
    firing = make_incident(started_at=started, max_severity=80.0, last=record)
    resolved = make_incident(status="resolved", started_at=started, ended_at=started + 30,
                             max_severity=93.0, last=record, count=4)
    with am(receiver, tmp_path, labels={"team": "plant-ops"},
            generator_url="http://grafana.example/d/streamem") as sink:
        before = time.time()
        sink.emit_incident(firing)
        sink.emit_incident(resolved)
        assert sink.flush(5.0)
    assert [r.path for r in receiver.accepted] == ["/api/v2/alerts"] * 2
    [fire], [done] = (check_postable_alerts(r.body) for r in receiver.accepted)
    assert fire["labels"] == {"alertname": "StreamemAnomaly", "key": "pump-1",
                              "severity": "warning", "team": "plant-ops"}
    assert fire["generatorURL"] == "http://grafana.example/d/streamem"
    assert abs(parse_time(fire["startsAt"]) - started) < 0.01
    assert parse_time(fire["endsAt"]) >= before + 3600 - 1  # generous while firing
    notes = fire["annotations"]
    assert "pump-1" in notes["summary"] and notes["incident_id"] == firing.id
    assert "temperature=91.5" in notes["description"] and "z=7.20" in notes["description"]
    assert float(notes["score"]) == pytest.approx(record.score)
    assert float(notes["tail_probability"]) == pytest.approx(record.tail_probability)
    assert done["labels"] == fire["labels"]  # the same alert, now resolved
    assert abs(parse_time(done["endsAt"]) - (started + 30)) < 0.01
    assert sink.stats.delivered == 2


def test_anomalies_update_the_firing_alert_and_escalate(receiver: Receiver,
                                                        tmp_path: Path) -> None:
    with am(receiver, tmp_path, update_seconds=60.0) as sink:
        sink.emit(make_record(0, key="other", severity=99.0))  # no incident: not sent
        sink.emit_incident(make_incident(max_severity=80.0))
        sink.emit(make_record(1, severity=85.0))  # within update_seconds: not sent
        sink.emit(make_record(2, severity=97.0))  # crosses critical: sent at once
        assert sink.flush(5.0)
    assert sink.stats.suppressed == 2
    assert len(receiver.accepted) == 2
    escalation = check_postable_alerts(receiver.accepted[1].body)
    old, new = escalation
    assert old["labels"]["severity"] == "warning" and new["labels"]["severity"] == "critical"
    assert parse_time(old["endsAt"]) <= time.time() + 1  # the warning alert ends now
    assert parse_time(new["endsAt"]) > time.time() + 3000
    assert new["annotations"]["anomaly_id"] == "events:0:2"
    assert new["annotations"]["max_severity"] == "97.0"


def test_firing_alert_is_refreshed_until_resolved(receiver: Receiver, tmp_path: Path) -> None:
    with am(receiver, tmp_path, refresh_seconds=0.2, alert_ttl_seconds=10.0) as sink:
        sink.emit_incident(make_incident())
        time.sleep(0.75)
        refreshes = len(receiver.accepted) - 1
        sink.emit_incident(make_incident(status="resolved", ended_at=time.time()))
        assert sink.flush(5.0)
        time.sleep(0.45)
    assert 2 <= refreshes <= 5
    assert len(receiver.accepted) == refreshes + 2  # no refresh after the resolution
    ends = [parse_time(check_postable_alerts(r.body)[-1]["endsAt"]) for r in receiver.accepted]
    assert ends[1:-1] == sorted(ends[1:-1])  # each refresh pushes endsAt further
    assert ends[-1] < ends[-2]


def test_alerts_wait_in_the_spool_during_an_outage(receiver: Receiver, tmp_path: Path) -> None:
    receiver.stop()
    with am(receiver, tmp_path, max_retries=0) as sink:
        sink.emit_incident(make_incident())
        sink.emit_incident(make_incident(status="resolved", ended_at=1e9 + 5))
        assert sink.flush(3.0)
        assert sink.stats.spool_size == 2
        receiver.start()
        assert receiver.wait_accepted(2, 10.0)
    statuses = [json.loads(r.body)[0]["endsAt"] for r in receiver.accepted]
    assert parse_time(statuses[1]) == pytest.approx(1e9 + 5)  # resolution arrives last


@pytest.mark.parametrize(("labels", "path"), [
    ({"bad-name": "x"}, "labels.bad-name"),
    ({"severity": "page"}, "labels.severity"),
    ({"team": 3}, "labels.team"),
])
def test_bad_labels_are_config_errors(labels: dict[str, Any], path: str,
                                      tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        AlertmanagerSink("am", "http://127.0.0.1:9", labels=labels, spool_dir=tmp_path)
    assert info.value.path == path
