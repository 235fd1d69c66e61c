"""End to end: a generated stream with injected anomalies through the real daemon, to a file
sink and a real local HTTP webhook, with metrics scraped over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

from testkit.daemon import make_stream, metrics_url, read_jsonl, scrape, write_config
from testkit.sinks import Receiver

from streamem.config import load_config
from streamem.runtime.daemon import Daemon


def test_anomalies_reach_file_and_webhook_and_metrics(tmp_path: Path,
                                                      receiver: Receiver) -> None:
    src = tmp_path / "events.jsonl"
    injected = make_stream(src, 6000, anomalies=(2500, 3300, 4100, 4900, 5500))
    with src.open("a") as fh:  # two bad events
        fh.write('{"temperature": "hot", "flow": 1}\n{"truncated": \n')
    cfg_path = write_config(
        tmp_path, src,
        source={"follow": True, "poll_interval_ms": 50},
        sinks=[{"type": "file", "path": str(tmp_path / "anomalies.jsonl")},
               {"type": "webhook", "name": "hook", "url": receiver.url + "/hook",
                "secret": "${HOOK_SECRET}", "cooldown_seconds": 0, "max_retries": 2,
                "backoff_base_seconds": 0.05}],
        metrics={"enabled": True, "port": 0, "host": "127.0.0.1"},
    )
    cfg = load_config(cfg_path, env={"HOOK_SECRET": "s3cret"})
    daemon = Daemon(cfg, install_signal_handlers=False)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if daemon.bound_address and (tmp_path / "anomalies.jsonl").exists():
                m = scrape(metrics_url(daemon))
                seen = sum(v for (n, lab), v in m.items() if n == "streamem_events_total")
                if seen >= 6002:
                    break
            time.sleep(0.2)
        metrics = scrape(metrics_url(daemon))
    finally:
        daemon.stop()
        thread.join(30)
    assert not thread.is_alive()

    file_records = [r for r in read_jsonl(tmp_path / "anomalies.jsonl")
                    if r["type"] == "anomaly"]
    flagged = {r["id"] for r in file_records}
    assert set(injected) <= flagged, f"missed {set(injected) - flagged}"
    assert len(flagged) <= len(injected) + 10  # a handful of false alarms at most
    for r in file_records:
        if r["id"] in injected:
            assert r["top_features"][0]["name"] == "pressure"
            assert r["severity"] >= 75

    assert receiver.wait_accepted(len(file_records))
    hook = [q for q in receiver.accepted if q.path == "/hook"]
    bodies = [json.loads(q.body) for q in hook]
    assert {b["id"] for b in bodies if b.get("type", "anomaly") == "anomaly"} >= set(injected)
    for q in hook:
        sig = q.headers.get("X-Streamem-Signature") or q.headers.get("x-streamem-signature")
        want = "sha256=" + hmac.new(b"s3cret", q.body, hashlib.sha256).hexdigest()
        assert sig is not None and hmac.compare_digest(sig, want)

    def val(name: str, **labels: str) -> float:
        return metrics[(name, tuple(sorted(labels.items())))]

    assert val("streamem_events_total", outcome="rejected") == 2
    assert val("streamem_events_total", outcome="anomalous") == len(file_records)
    assert val("streamem_anomalies_total") == len(file_records)
    assert val("streamem_rejected_events_total", reason="wrong_type") == 1
    assert val("streamem_rejected_events_total", reason="parse_error") == 1
    assert val("streamem_events_total", outcome="learned") >= 6000 - len(file_records) - 5
    assert val("streamem_ready") == 1.0
    assert val("streamem_model_components") == 2
    assert val("streamem_alert_rate_target") == 0.001
    assert val("streamem_log_likelihood_bucket", le="+Inf") == 5000  # warm-up: not scored
    # surprise units (docs/contracts.md), as Detector.health() reports it
    assert 0 < val("streamem_threshold") < 30
    # one meaning each: the checkpoint sequence, and the M-steps (one per learned chunk, > 0)
    (lane,) = daemon.lanes.values()
    assert val("streamem_model_generation") <= lane.sequence
    assert 0 < val("streamem_model_updates") <= lane.detector.health()["generation"]
    assert val("streamem_sink_deliveries_total", sink="hook") >= len(injected)
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert [d["reason"].split(":")[0] for d in dead] == ["wrong_type", "parse_error"]
