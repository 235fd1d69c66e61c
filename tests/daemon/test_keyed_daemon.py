"""``model.scope: key`` in the daemon: one model per key, key states in ``keys.db``, bad keys
dead-lettered, and kill -9 at random moments resuming every key byte-identically."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from testkit.daemon import FEATURES, read_jsonl, run_with_kills, write_config

from streamem.state.codec import dumps, loads

N_KEYS = 240


def make_fleet(path: Path, n: int, seed: int = 0) -> None:
    """``n`` events over :data:`N_KEYS` pumps, each with its own level; pump-7 leaves its own
    level at event 30000 for one that is normal for the fleet (pump-8's)."""
    rng = np.random.default_rng(seed)
    levels = rng.normal(0.0, 8.0, size=(N_KEYS, len(FEATURES)))
    keys = rng.integers(0, N_KEYS, size=n)
    X = levels[keys] + rng.normal(0.0, 1.0, size=(n, len(FEATURES)))
    with path.open("w") as fh:
        for i in range(n):
            k = int(keys[i])
            x = X[i]
            if k == 7 and i >= 30_000:
                x = levels[8] + rng.normal(0.0, 1.0, size=len(FEATURES))
            fh.write(json.dumps({
                "id": f"ev-{i}", "ts": 1_700_000_000 + i, "sensor": f"pump-{k}",
                "temperature": round(float(x[0]), 5), "pressure": round(float(x[1]), 5),
                "flow": round(float(x[2]), 5), "vibration": {"rms": round(float(x[3]), 5)},
            }) + "\n")
        # hostile keys: empty, control character, over 1 KiB, missing
        for i, key in enumerate(["", "pump\n7", "p" * 1100, None]):
            ev: dict[str, Any] = {"id": f"bad-{i}", "ts": 1_700_000_000 + n, "temperature": 1,
                                  "pressure": 1, "flow": 1, "vibration": {"rms": 1}}
            if key is not None:
                ev["sensor"] = key
            fh.write(json.dumps(ev) + "\n")


def _config(tmp: Path, events: Path, **extra: Any) -> Path:
    return write_config(tmp, events, model={"scope": "key", "warmup": 500, "random_state": 0,
                                            "half_life": 20_000, "max_keys_in_memory": 128},
                        batch={"max_events": 128}, **extra)


def _run(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _store(state: Path) -> dict[str, Any]:
    """Every key's stored bytes, the detector meta and the positions blob of ``keys.db``."""
    db = sqlite3.connect(state / "keys.db")
    try:
        keys = dict(db.execute("SELECT key, state FROM keys").fetchall())
        meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
    finally:
        db.close()
    return {"keys": keys, "detector": meta["detector"], "positions": meta["positions"]}


def test_keyed_daemon_scores_per_key_and_dead_letters_bad_keys(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_fleet(events, 40_000)
    proc = _run(_config(tmp_path, events))
    assert proc.wait(300) == 0, proc.stderr.read().decode() if proc.stderr else ""
    dead = read_jsonl(tmp_path / "dead.jsonl")
    reasons = [d["reason"].split(":")[0] for d in dead]
    assert reasons == ["invalid_key"] * 4, dead
    stored = _store(tmp_path / "state")
    assert len(stored["keys"]) == N_KEYS  # evicted (max 128 in memory) and checkpointed
    saved = loads(stored["positions"])
    assert saved["counters"]["events_seen"] == 40_004
    assert saved["counters"]["events_rejected"] == 4
    anomalies = [a for a in read_jsonl(tmp_path / "anomalies.jsonl") if a["type"] == "anomaly"]
    late7 = [a for a in anomalies if a["key"] == "pump-7" and int(a["id"][3:]) >= 30_000]
    others = [a for a in anomalies if int(a["id"][3:]) >= 5_000 and a["key"] != "pump-7"]
    assert len(late7) >= 10, len(late7)  # ~40 events off its own normal: flagged
    assert len(others) < 0.005 * 35_000, len(others)  # normal for their own key: quiet


def _kill_after_checkpoints(proc: subprocess.Popen[bytes], state: Path,
                            rng: random.Random) -> bool:
    """SIGKILL ``proc`` a random moment after 1-3 more key checkpoints; False if it ended."""
    import os
    import signal
    import time

    def seq() -> int:
        try:
            db = sqlite3.connect(state / "keys.db", timeout=0.05)
            try:
                row = db.execute("SELECT v FROM meta WHERE k='positions'").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return -1
        return int(loads(row[0])["sequence"]) if row else 0

    start, want = max(seq(), 0), rng.randint(1, 3)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if seq() >= start + want:
            time.sleep(rng.uniform(0.0, 0.05))
            if proc.poll() is not None:
                return False
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    return False


def test_kill9_resumes_every_key_byte_identically(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    make_fleet(events, 40_000, seed=1)
    common = {"checkpoint": {"every_events": 1500, "keep": 2}}
    ref_dir, crash_dir = tmp_path / "ref", tmp_path / "crash"
    ref_dir.mkdir()
    crash_dir.mkdir()
    ref = _run(_config(ref_dir, events, **common))
    assert ref.wait(300) == 0, ref.stderr.read().decode() if ref.stderr else ""
    expected = _store(ref_dir / "state")

    cfg = _config(crash_dir, events, **common)
    rng = random.Random(11)
    state = crash_dir / "state"
    kills = run_with_kills(lambda: _run(cfg), lambda p: _kill_after_checkpoints(p, state, rng),
                           max_kills=4, attempts=30)
    assert kills >= 2, "the stream was too short to be killed mid-way; make it longer"
    got = _store(crash_dir / "state")
    assert set(got["keys"]) == set(expected["keys"])
    assert got["keys"] == expected["keys"]  # every key's state, byte for byte
    # the meta too, but for the eviction and load counts: a restart begins with no key in
    # memory and loads the keys back on demand, so it evicts and loads more often
    exp_meta, got_meta = loads(expected["detector"]), loads(got["detector"])
    assert got_meta["table_counts"][0] == exp_meta["table_counts"][0] == N_KEYS
    for meta in (exp_meta, got_meta):
        meta["table_counts"] = meta["table_counts"][:1]
    assert dumps(got_meta) == dumps(exp_meta)
    exp_pos, got_pos = loads(expected["positions"]), loads(got["positions"])
    assert got_pos["positions"] == exp_pos["positions"]
    assert got_pos["counters"] == exp_pos["counters"]


def test_key_gauges_and_the_keys_api(tmp_path: Path) -> None:
    import threading
    import time
    import urllib.request

    from testkit.daemon import metrics_url

    from streamem.config import load_config
    from streamem.runtime.daemon import Daemon

    events = tmp_path / "events.jsonl"
    make_fleet(events, 36_000)
    cfg = load_config(_config(tmp_path, events, source={"follow": True, "poll_interval_ms": 50},
                              metrics={"enabled": True, "port": 0, "host": "127.0.0.1"}))
    daemon = Daemon(cfg, install_signal_handlers=False)
    thread = threading.Thread(target=daemon.run)
    thread.start()

    def get(path: str) -> str:
        return urllib.request.urlopen(metrics_url(daemon) + path, timeout=5).read().decode()

    try:
        deadline = time.monotonic() + 120
        gauges: dict[str, float] = {}
        keys: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if daemon.bound_address:
                text = get("/metrics")
                gauges = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                          if line.startswith("streamem_keys_")}
                keys = json.loads(get("/api/v1/keys?top=3"))["keys"]
                if gauges.get("streamem_keys_active") == N_KEYS and keys and \
                        keys[0]["key"] == "pump-7" and keys[0].get("events", 0) > 140:
                    break
            time.sleep(0.3)
    finally:
        daemon.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert gauges["streamem_keys_active"] == N_KEYS
    assert gauges["streamem_keys_in_memory"] == 128  # max_keys_in_memory: LRU evicted
    assert 0 <= gauges["streamem_keys_warming"] < 10
    assert gauges["streamem_keys_evicted_total"] > 1000
    assert gauges["streamem_keys_loaded_total"] > 1000
    top = keys[0]  # pump-7 left its own normal at event 30000: the most anomalous key
    assert top["key"] == "pump-7" and top["state"] == "own" and top["own_anomalies"] >= 10
    assert top["last_anomaly_at"] >= 1_700_030_000
