"""kill -9 at random moments, then restart: the final state equals an uninterrupted run's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from testkit.daemon import inspect, make_stream, run_with_kills, write_config


def _run(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _newest(state: Path) -> int:
    files = sorted((state / "global").glob("*.snap")) if (state / "global").exists() else []
    return int(files[-1].stem) if files else 0


def _kill_after_progress(proc: subprocess.Popen[bytes], state: Path, rng: random.Random) -> bool:
    """SIGKILL ``proc`` a random moment after 1-4 more checkpoints; False if it finished."""
    start, want = _newest(state), rng.randint(1, 4)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if _newest(state) >= start + want:
            time.sleep(rng.uniform(0.0, 0.05))  # land anywhere: mid-batch, mid-save, ...
            if proc.poll() is not None:
                return False
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    return False


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k != "created_at":
                _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-9, atol=1e-12, err_msg=path)
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(a)), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_kill9_resumes_to_the_same_state(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, 60_000, anomalies=(5000, 20000, 41000))
    common = {"batch": {"max_events": 128}, "checkpoint": {"every_events": 1500, "keep": 2}}
    ref_dir, crash_dir = tmp_path / "ref", tmp_path / "crash"
    ref_dir.mkdir()
    crash_dir.mkdir()
    ref = _run(write_config(ref_dir, events, **common))
    assert ref.wait(300) == 0, ref.stderr.read().decode() if ref.stderr else ""
    expected = inspect(ref_dir / "state")

    cfg = write_config(crash_dir, events, **common)
    rng = random.Random(7)
    state = crash_dir / "state"
    kills = run_with_kills(lambda: _run(cfg), lambda p: _kill_after_progress(p, state, rng),
                           max_kills=5, attempts=40)
    assert kills >= 2, "the stream was too short to be killed mid-way; make it longer"
    got = inspect(crash_dir / "state")
    assert got["counters"]["events_seen"] == 60_000
    # every event learned exactly once: counters and model equal the uninterrupted run's
    assert got["counters"] == expected["counters"]
    assert got["position"] == expected["position"]
    _assert_same({k: v for k, v in expected.items() if k != "sequence"},
                 {k: v for k, v in got.items() if k != "sequence"})

