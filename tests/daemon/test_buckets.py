"""``streamem run`` with ``aggregate:`` over an nginx access log: bucket records, late events,
kill -9 mid-bucket.

The config is the shipped ``examples/nginx.yaml`` (the README's "Logs" section), its paths
moved under the test's folder by ``STREAMEM_...`` environment overrides.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from testkit.daemon import cli, inspect, read_jsonl

from bench.logs_buckets import access_log

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nginx.yaml"
T0 = 1_767_348_000.0  # 2026-01-02 10:00 UTC, the first line of access_log()
BURST = (T0 + 20 * 60, T0 + 22 * 60)
SILENCE = (T0 + 30 * 60, T0 + 32 * 60)
LATE = (b'10.9.9.9 - - [02/Jan/2026:10:05:00 +0000] "GET /late HTTP/1.1" 200 10 "-" '
        b'"curl/8.5.0" 0.010')


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"STREAMEM_SOURCE__PATH": str(tmp / "access.log"),
            "STREAMEM_SINKS__0__PATH": str(tmp / "anomalies.jsonl"),
            "STREAMEM_DEAD_LETTER__PATH": str(tmp / "dead-letter.jsonl"),
            "STREAMEM_CHECKPOINT__DIR": str(tmp / "state"), **extra}


def _log(tmp: Path) -> list[bytes]:
    lines = access_log()
    lines.insert(len(lines) // 3, LATE)  # ~13 minutes in: 8 minutes behind the watermark
    (tmp / "access.log").write_bytes(b"\n".join(lines) + b"\n")
    return lines


def _anomalies(tmp: Path) -> dict[str, dict[str, Any]]:
    """The bucket anomaly records by id (a record emitted again after a restart once)."""
    return {r["id"]: r for r in read_jsonl(tmp / "anomalies.jsonl")
            if r.get("type") == "anomaly"}


def test_an_nginx_log_alarms_the_burst_and_the_silence_with_bucket_records(
        tmp_path: Path) -> None:
    lines = _log(tmp_path)
    out = cli("run", "-c", str(EXAMPLE), env=_env(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr
    found = _anomalies(tmp_path)
    starts = sorted(r["extra"]["bucket_start"] for r in found.values())
    in_burst = [s for s in starts if BURST[0] <= s < BURST[1]]
    in_silence = [s for s in starts if SILENCE[0] <= s < SILENCE[1]]
    # the README's claim: the 12 buckets of the burst, the 12 of the silence, nothing else
    assert (len(in_burst), len(in_silence), len(starts)) == (12, 12, 24), starts
    raw = {ln.decode() for ln in lines}
    for r in found.values():
        e = r["extra"]
        assert e["bucket_end"] - e["bucket_start"] == 10.0
        assert r["timestamp"] == e["bucket_start"] and e["key"] == {}
        assert r["id"] == f"global::{e['bucket_start']:.0f}"
        assert len(e["samples"]) == min(3, e["events"]) and set(e["samples"]) <= raw
        assert all(f["expected"] == f["expected"] for f in r["top_features"])  # not NaN
    burst = found[f"global::{BURST[0]:.0f}"]
    top = burst["top_features"][0]
    assert top["name"] == "errors_5xx" and top["value"] > 10 * top["expected"]
    assert burst["extra"]["samples"][0].startswith("10.0.0.181 - - [02/Jan/2026:10:20:00")
    quiet = found[f"global::{SILENCE[0]:.0f}"]
    assert quiet["extra"]["events"] == 0 and quiet["extra"]["samples"] == []
    dead = read_jsonl(tmp_path / "dead-letter.jsonl")
    assert [d["reason"].split(":")[0] for d in dead] == ["late"]
    assert "/late" in dead[0]["payload"]


def test_an_aggregate_config_with_other_features_fails_with_its_path(tmp_path: Path) -> None:
    out = cli("check-config", str(EXAMPLE), env={**_env(tmp_path),
                                                 "STREAMEM_FIELDS__FEATURES": "[status]"})
    assert out.returncode == 2
    assert "fields.features" in out.stderr and "bucket columns" in out.stderr


def _run(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(EXAMPLE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **env})


def _newest(state: Path) -> int:
    files = sorted((state / "global").glob("*.snap")) if (state / "global").exists() else []
    return int(files[-1].stem) if files else 0


@pytest.mark.timeout(600)
def test_kill9_mid_bucket_emits_the_buckets_of_an_uninterrupted_run(tmp_path: Path) -> None:
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    small = {"STREAMEM_BATCH__MAX_EVENTS": "200", "STREAMEM_CHECKPOINT__EVERY_EVENTS": "1000",
             "STREAMEM_CHECKPOINT__KEEP": "2"}
    for d in (ref, crash):
        d.mkdir()
        _log(d)
    done = _run(_env(ref, **small))
    assert done.wait(300) == 0, done.stderr.read().decode() if done.stderr else ""
    rng, kills = random.Random(3), 0
    for _ in range(30):
        proc = _run(_env(crash, **small))
        start, want = _newest(crash / "state"), rng.randint(1, 8)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and kills < 5:
            if _newest(crash / "state") >= start + want:
                time.sleep(rng.uniform(0.0, 0.03))  # anywhere: mid-batch, mid-bucket, mid-save
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    kills += 1
                break
            time.sleep(0.002)
        if proc.returncode == -signal.SIGKILL:
            continue
        assert proc.wait(300) == 0, proc.stderr.read().decode() if proc.stderr else ""
        break
    assert kills >= 3, f"only {kills} kills landed"
    want_records, got_records = _anomalies(ref), _anomalies(crash)
    assert sorted(got_records) == sorted(want_records)
    for rid, r in want_records.items():
        g = got_records[rid]
        assert g["extra"]["samples"] == r["extra"]["samples"], rid
        assert g["extra"]["events"] == r["extra"]["events"], rid
        assert [f["name"] for f in g["top_features"]] == \
            [f["name"] for f in r["top_features"]], rid
        assert [f["value"] for f in g["top_features"]] == \
            pytest.approx([f["value"] for f in r["top_features"]], rel=1e-9), rid
        assert g["score"] == pytest.approx(r["score"], rel=1e-9), rid
    a, b = inspect(ref / "state"), inspect(crash / "state")
    for k in ("positions", "counters"):
        assert a.get(k) == b.get(k), k
