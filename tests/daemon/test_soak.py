"""A small soak: the daemon's memory stays flat at a steady input rate (the 30-minute soak is
``python -m bench.soak``; this one runs in CI)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from testkit.daemon import write_config

RATE = 3000  # events per second
SECONDS = 45


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _writer(path: Path, stop: threading.Event) -> None:
    rng = np.random.default_rng(0)
    i = 0
    with path.open("a") as fh:
        while not stop.is_set():
            t0 = time.monotonic()
            for _ in range(RATE // 10):
                flow = rng.normal(50, 2)
                x = {"id": f"e{i}", "ts": 1.7e9 + i, "sensor": f"s{i % 50}", "flow": flow,
                     "temperature": 55 + 0.3 * flow + rng.normal(0, 0.8),
                     "pressure": 1.5 + 0.04 * flow + rng.normal(0, 0.05),
                     "vibration": {"rms": abs(rng.normal(1.3, 0.05))}}
                if i % 997 == 0:
                    x["pressure"] += 3  # a steady trickle of anomalies and incidents
                fh.write(json.dumps(x) + "\n")
                i += 1
            fh.flush()
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))


@pytest.mark.slow
def test_memory_is_flat_under_steady_load(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.touch()
    cfg = write_config(tmp_path, events, source={"follow": True, "poll_interval_ms": 20},
                       batch={"max_events": 256, "max_wait_ms": 50},
                       checkpoint={"every_seconds": 2, "every_events": 10**9},
                       metrics={"enabled": True, "port": 0})
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(events, stop), daemon=True)
    writer.start()
    proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < SECONDS:
            time.sleep(1.0)
            assert proc.poll() is None, "the daemon died"
            if time.monotonic() - t0 > 15:  # after warm-up, imports, first checkpoints
                samples.append((time.monotonic() - t0, _rss_mib(proc.pid)))
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    t, rss = np.array(samples).T
    slope_per_min = np.polyfit(t, rss, 1)[0] * 60
    assert rss.max() - rss.min() < 20, rss
    assert slope_per_min < 10, f"RSS grows {slope_per_min:.1f} MiB/min: {rss}"
