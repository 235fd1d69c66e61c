"""The operator API over real HTTP: every route, and the refusals (tokens, bodies, ids)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from streamem.alerting.records import AnomalyRecord, FeatureContribution, Incident
from streamem.metrics import Metrics, MetricsServer
from streamem.scoring.result import DetectionResult
from streamem.ui.app import CSP, UiApp
from streamem.ui.history import History
from streamem.ui.status import status
from streamem.ui.store import load_history, save_history

TOKEN = "w-token-123"
HOSTILE = '<img src=x onerror="alert(1)">\r\nX-Injected: 1'


def record(i: int, key: str = "pump-1", severity: float = 90.0) -> AnomalyRecord:
    return AnomalyRecord(
        id=f"ev-{i}", key=key, timestamp=1000.0 + i, score=40.0, tail_probability=1e-8,
        severity=severity, threshold=1e-3,
        top_features=(FeatureContribution("pressure", 1, 5.0, 3.8, 23.9),))


def result(n: int, flagged: int) -> DetectionResult:
    tail = np.full(n, 0.5)
    tail[:flagged] = 1e-9
    return DetectionResult(
        scores=-np.log(tail), tail_probability=tail, surprise=-np.log10(tail),
        threshold=np.full(n, 1e-3), severity=np.where(tail < 1e-3, 95.0, 10.0),
        is_anomaly=tail < 1e-3, learned=tail >= 1e-3, warming_up=np.zeros(n, bool))


@pytest.fixture
def served() -> Iterator[tuple[str, History, Metrics]]:
    metrics = Metrics(CollectorRegistry())
    history = History(max_anomalies=50, max_keys=3)
    for i in range(5):
        history.anomaly(record(i, key=f"pump-{i % 2}", severity=80.0 + i))
    history.anomaly(record(99, key=HOSTILE))
    history.incident(Incident("pump-1:1", "pump-1", "firing", 1000.0, None, 84.0, None, 3))
    history.observe_batch("global", result(64, 2))
    history.observe_model("global", {"weights": np.array([0.7, 0.3]), "n_components": 2.0,
                                     "drift_cusum": 0.1, "regime_changes": 0.0})
    ui = UiApp(history, lambda: status(metrics, history, alert_rate=1e-3), token=TOKEN,
               count_feedback=metrics.count_feedback, max_body_bytes=1024)
    with MetricsServer(metrics, "127.0.0.1", 0, ui=ui) as srv:
        yield srv.url, history, metrics


def call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def post(base: str, doc: Any, token: str | None = TOKEN, raw: bytes | None = None,
         ctype: str = "application/json") -> tuple[int, Any]:
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = raw if raw is not None else json.dumps(doc).encode()
    code, _, out = call(f"{base}/api/v1/feedback", body, headers, "POST")
    return code, out


def test_read_routes_serve_the_history(served: tuple[str, History, Metrics]) -> None:
    base, _, _ = served
    code, headers, st = call(f"{base}/api/v1/status")
    assert code == 200 and st["alert_rate_target"] == 1e-3 and st["anomaly_rate"] == 2 / 64
    assert headers["Content-Security-Policy"] == CSP
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    _, _, an = call(f"{base}/api/v1/anomalies?limit=3")
    assert [a["id"] for a in an["anomalies"]] == ["ev-99", "ev-4", "ev-3"]
    _, _, an = call(f"{base}/api/v1/anomalies?key=pump-0&since=1001.5")
    assert [a["id"] for a in an["anomalies"]] == ["ev-4", "ev-2"]
    _, _, one = call(f"{base}/api/v1/anomalies/ev-2")
    assert one["top_features"][0]["name"] == "pressure" and one["key"] == "pump-0"
    _, _, inc = call(f"{base}/api/v1/incidents")
    assert inc["incidents"][0]["status"] == "firing"
    _, _, keys = call(f"{base}/api/v1/keys?top=5")
    assert [k["key"] for k in keys["keys"]][:2] == ["pump-0", "pump-1"]
    assert keys["keys"][0]["anomalies"] == 3 and len(keys["keys"]) == 3
    _, _, scores = call(f"{base}/api/v1/scores")
    point = scores["points"][0]
    assert point["anomalies"] == 2 and point["threshold_surprise"] == 3.0
    _, _, model = call(f"{base}/api/v1/model")
    assert model["snapshots"][0]["weights"] == [0.7, 0.3]


@pytest.mark.parametrize(("path", "code"), [
    ("/api/v1/anomalies?limit=0", 400), ("/api/v1/anomalies?limit=abc", 400),
    ("/api/v1/anomalies?since=nan", 400), ("/api/v1/anomalies/nope", 404),
    ("/api/v1/nothing", 404), ("/api/v2/status", 404),
])
def test_bad_read_requests_are_refused_with_a_reason(
        served: tuple[str, History, Metrics], path: str, code: int) -> None:
    got, _, body = call(served[0] + path)
    assert got == code and body["error"]


def test_feedback_needs_the_token_and_is_counted(served: tuple[str, History, Metrics]) -> None:
    base, history, metrics = served
    assert post(base, {"id": "ev-1", "verdict": "false_positive"}, token=None)[0] == 401
    assert post(base, {"id": "ev-1", "verdict": "false_positive"}, token="wrong")[0] == 401
    assert metrics.value("streamem_feedback_total", verdict="false_positive") == 0.0
    code, out = post(base, {"id": "ev-1", "verdict": "false_positive", "note": "maintenance"})
    assert code == 200 and out["stored"]["key"] == "pump-1"
    assert metrics.value("streamem_feedback_total", verdict="false_positive") == 1.0
    assert history.anomaly_by_id("ev-1")["verdict"] == "false_positive"  # type: ignore[index]
    assert history.verdicts() == {"false_positive": 1, "true_positive": 0}


@pytest.mark.parametrize(("doc", "raw", "ctype", "code"), [
    ({"verdict": "false_positive"}, None, "application/json", 400),          # missing id
    ({"id": "ev-1", "verdict": "maybe"}, None, "application/json", 400),     # bad verdict
    ({"id": "ev-404", "verdict": "true_positive"}, None, "application/json", 404),
    (None, b"[" * 5000, "application/json", 413),                           # oversize
    (None, b"{not json", "application/json", 400),
    (None, b"[" * 900, "application/json", 400),                            # deep, small
    ({"id": "ev-1", "verdict": "true_positive"}, None, "text/plain", 415),
    ({"id": "ev-1", "verdict": "true_positive", "note": "x" * 3000}, None, "application/json",
     413),
])
def test_bad_feedback_is_refused(served: tuple[str, History, Metrics], doc: Any,
                                 raw: bytes | None, ctype: str, code: int) -> None:
    base, history, _ = served
    assert post(base, doc, raw=raw, ctype=ctype)[0] == code
    assert history.verdicts() == {"false_positive": 0, "true_positive": 0}


def test_feedback_is_refused_when_no_token_is_configured() -> None:
    metrics, history = Metrics(CollectorRegistry()), History()
    history.anomaly(record(1))
    ui = UiApp(history, lambda: {}, token=None)
    with MetricsServer(metrics, "127.0.0.1", 0, ui=ui) as srv:
        code, out = post(srv.url, {"id": "ev-1", "verdict": "false_positive"}, token="")
    assert code == 403 and "ui.token" in out["error"]


def test_read_token_closes_the_read_routes_but_not_the_page() -> None:
    metrics, history = Metrics(CollectorRegistry()), History()
    ui = UiApp(history, lambda: {"ok": 1}, token="w", read_token="r")
    with MetricsServer(metrics, "127.0.0.1", 0, ui=ui) as srv:
        assert call(f"{srv.url}/api/v1/status")[0] == 401
        assert call(f"{srv.url}/api/v1/status", headers={"Authorization": "Bearer r"})[0] == 200
        assert call(f"{srv.url}/api/v1/status", headers={"Authorization": "Bearer w"})[0] == 200
        with urllib.request.urlopen(f"{srv.url}/", timeout=10) as resp:
            page = resp.read().decode()
        assert resp.status == 200 and '<script src="/ui/app.js"' in page
        assert "<script>" not in page and "style=" not in page   # nothing inline: the CSP holds


def test_history_bounds_and_state_round_trip(tmp_path: Any) -> None:
    h = History(max_anomalies=10, max_keys=5, max_points=7)
    for i in range(1000):
        h.anomaly(record(i, key=f"k{i}"))
        h.observe_batch("global", result(8, 1))
    assert len(h.anomalies(limit=1000)) == 10 and len(h.keys(top=100)) == 5
    assert len(h.points()) == 7 and h.evicted_keys == 995
    path = save_history(tmp_path / "state", h)
    assert path.stat().st_mode & 0o777 == 0o600
    back = load_history(tmp_path / "state", max_anomalies=10, max_keys=5, max_points=7)
    assert back.to_state() == h.to_state()
    path.write_text("[" * 200_000)            # corrupt: an empty history, not a crash
    assert load_history(tmp_path / "state").anomalies() == []
