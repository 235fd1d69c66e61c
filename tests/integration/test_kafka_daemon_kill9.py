"""kill -9 of ``streamem run`` on Kafka, several times, then a restart to the end of the log:
every partition's final state equals that of an uninterrupted run (``model.scope: partition``,
the same batch settings), and every event was learned exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kafka_support import create_topic, unique_name
from test_kafka_daemon_kit import (
    assert_same_state,
    end_offsets,
    events,
    inspect,
    kafka_config,
    produce_events,
    run_daemon,
    stop,
    wait_committed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N = 40_000
BATCH = {"max_events": 256, "max_wait_ms": 100}


def _progress(state: Path) -> int:
    """Sum over the partitions of the newest snapshot's sequence number."""
    total = 0
    for d in state.glob("p*"):
        seqs = [int(f.stem) for f in d.glob("*.snap")]
        total += max(seqs, default=0)
    return total


def _kill_after_progress(proc: subprocess.Popen[bytes], state: Path, rng: random.Random,
                         ) -> bool:
    """SIGKILL ``proc`` a random moment after 1-4 more checkpoints; False if none came."""
    start, want = _progress(state), rng.randint(1, 4)
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline:
        if _progress(state) >= start + want:
            time.sleep(rng.uniform(0.0, 0.05))  # anywhere: mid-chunk, mid-save, mid-commit
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    return False


def test_kill9_several_times_resumes_to_the_uninterrupted_state(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("kill9"), partitions=4)
    counts = produce_events(kafka_bootstrap, topic, events(N, anomalies=(9000, 21000, 33000)))
    ends = end_offsets(kafka_bootstrap, topic)
    assert ends == counts and len(counts) == 4

    # the reference: one uninterrupted run to the end of the log
    ref_group = unique_name("kill9-ref")
    ref_cfg = kafka_config(tmp_path / "ref", kafka_bootstrap, topic, ref_group, batch=BATCH)
    ref = run_daemon(ref_cfg, tmp_path / "ref.log")
    try:
        got = wait_committed(kafka_bootstrap, ref_group, topic, ends, 120,
                             alive=lambda: ref.poll() is None)
        assert got == ends, (got, (tmp_path / "ref.log").read_text()[-3000:])
    finally:
        assert stop(ref) == 0, (tmp_path / "ref.log").read_text()[-3000:]

    # the same log, killed with SIGKILL 1-4 checkpoints into each of several runs
    group = unique_name("kill9-crash")
    cfg = kafka_config(tmp_path / "crash", kafka_bootstrap, topic, group, batch=BATCH,
                       checkpoint={"every_events": 1500, "every_seconds": 0.5})
    log = tmp_path / "crash.log"
    rng = random.Random(11)
    kills = 0
    while kills < 3:
        proc = run_daemon(cfg, log)
        if not _kill_after_progress(proc, tmp_path / "crash" / "state", rng):
            assert stop(proc) == 0, log.read_text()[-3000:]
            break
        kills += 1
    assert kills >= 2, f"only {kills} kills landed mid-stream; make the log longer"
    final = run_daemon(cfg, log)
    try:
        got = wait_committed(kafka_bootstrap, group, topic, ends, 120,
                             alive=lambda: final.poll() is None)
        assert got == ends, (got, log.read_text()[-3000:])
    finally:
        assert stop(final) == 0, log.read_text()[-3000:]
    assert log.read_text().count("starting: source kafka") == kills + 1

    for p, n in sorted(counts.items()):
        want = inspect(str(tmp_path / "ref" / "state"), "--key", f"p{p}")
        have = inspect(str(tmp_path / "crash" / "state"), "--key", f"p{p}")
        # no event learned twice or skipped
        assert have["counters"]["events_seen"] == n, (p, have["counters"])
        assert want["counters"]["events_seen"] == n
        assert have["position"] == {str(p): n}
        assert have["counters"] == want["counters"]
        assert have["events_total"] == want["events_total"] == n
        assert_same_state(want, have, f"p{p}")
