"""TEMPORARY stand-in for ``streamem run --config FILE`` until the daemon exists.

Built only from real streamem parts (config loader, Detector, Metrics, MetricsServer): it
tails a JSON-lines file (source.type file, follow), scores micro-batches and serves the
contract metrics, so that the live Prometheus/Alertmanager tests can run end to end. The live
tests switch to the real daemon as soon as ``streamem.cli`` exists (see ``DAEMON_ARGV`` in
test_live_stack.py); then this file is deleted.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamem import Detector
from streamem.config import load_config
from streamem.metrics import Metrics, MetricsServer
from streamem.sinks.base import SinkStats


class _CountingSink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = SinkStats()


def _feature(event: dict[str, Any], path: str) -> float:
    value: Any = event
    for part in path.split("."):
        value = value[part]
    return float(value)


def main(argv: list[str]) -> int:
    cfg = load_config(argv[argv.index("--config") + 1])
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    metrics = Metrics()
    sinks = [_CountingSink(s.name or s.type) for s in cfg.sinks]
    metrics.attach_sinks(sinks)
    det = Detector(
        alert_rate=cfg.detector.alert_rate,
        warmup=cfg.model.warmup,
        regime_patience=cfg.detector.regime_patience,
        random_state=cfg.model.random_state,
    )
    metrics.update_health({"alert_rate_target": cfg.detector.alert_rate})
    assert cfg.source.path is not None
    path = Path(cfg.source.path)
    lag = {0: 0}
    metrics.set_lag_provider(lambda: dict(lag))
    last_ckpt = time.monotonic()
    drift_alarms = 0.0
    state_dir = Path(cfg.checkpoint.dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with MetricsServer(metrics, cfg.metrics.host, cfg.metrics.port), path.open("rb") as f:
        metrics.set_up(True)
        buf = b""
        while not stop:
            metrics.heartbeat()
            chunk = f.read(1 << 20)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            lag[0] = max(0, path.stat().st_size - f.tell()) // 100
            rows = []
            for line in lines:
                try:
                    ev = json.loads(line)
                    rows.append([_feature(ev, p) for p in cfg.fields.features])
                except (ValueError, KeyError, TypeError):
                    metrics.count_rejected("parse_error")
            for i in range(0, len(rows), cfg.batch.max_events):
                t0 = time.perf_counter()
                res = det.process(np.asarray(rows[i : i + cfg.batch.max_events], dtype=float))
                scored = ~res.warming_up
                n_anom = int(res.is_anomaly.sum())
                metrics.observe_batch(
                    res.log_likelihood[scored], int((res.learned & ~res.is_anomaly).sum()),
                    n_anom, int((scored & ~res.learned & ~res.is_anomaly).sum()),
                    time.perf_counter() - t0,
                )  # fmt: skip
                for s in sinks:
                    s.stats.delivered += n_anom
                h = det.health()
                metrics.update_health({
                    "threshold": h["threshold_surprise"], "tail_shape": h["tail_shape"],
                    "tail_scale": h["tail_scale"], "tail_peaks": h["tail_peaks"],
                    "drift_cusum": h["drift_cusum"], "drift_divergence": h["drift_divergence"],
                    "drift_detected": h["drift_detected"], "model_generation": h["generation"],
                    **({"component_weight": h["weights"], "component_mean_shift": h["mean_shift"],
                        "model_components": h["n_components"]} if det.ready_ else {}),
                })  # fmt: skip
                if h["drift_alarms"] > drift_alarms:
                    metrics.count_drift_events(int(h["drift_alarms"] - drift_alarms))
                    drift_alarms = h["drift_alarms"]
                metrics.set_ready(bool(det.ready_))
            if time.monotonic() - last_ckpt >= cfg.checkpoint.every_seconds:
                t0 = time.perf_counter()
                (state_dir / "standin.json").write_text(json.dumps(det.health(), default=str))
                metrics.observe_checkpoint(time.perf_counter() - t0)
                last_ckpt = time.monotonic()
            if not chunk:
                time.sleep(cfg.source.poll_interval_ms / 1000)
        metrics.set_up(False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
