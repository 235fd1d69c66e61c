"""kill -9 of ``streamem run`` on Kafka, several times, then a restart to the end of the log:
every partition's final state equals that of an uninterrupted run (``model.scope: partition``,
the same batch settings), every event was learned exactly once, and the group's committed
offsets reach the end of the log.

Robust under load: every wait is on a condition (checkpoint files, committed offsets, the
process) with a deadline far beyond what a loaded machine needs, never a fixed sleep. The
kill lands a random 0-50 ms after a checkpoint file appeared, which under load is often
between a snapshot's save and its offset commit; the restart must then commit the restored
positions itself (the CI failure: a partition restored at its end was never committed).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit.broker import create_topic, unique_name
from testkit.kafka_daemon import (
    assert_same_state,
    committed,
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
DEADLINE = 600.0
"""Seconds any one wait may take: a limit for a hang, never a speed requirement."""


def _progress(state: Path) -> int:
    """Sum over the partitions of the newest snapshot's sequence number."""
    total = 0
    for d in state.glob("p*"):
        seqs = [int(f.stem) for f in d.glob("*.snap")]
        total += max(seqs, default=0)
    return total


def _kill_after_progress(proc: subprocess.Popen[bytes], state: Path, rng: random.Random,
                         done: Callable[[], bool]) -> bool:
    """SIGKILL ``proc`` a random moment after 1-4 more checkpoints; False when the log was
    consumed (``done``) before they came. Fails when the daemon dies or stalls."""
    start, want = _progress(state), rng.randint(1, 4)
    deadline = time.monotonic() + DEADLINE
    next_done_check = 0.0
    while _progress(state) < start + want:
        assert proc.poll() is None, f"the daemon exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"no checkpoint progress in {DEADLINE:.0f} s"
        if time.monotonic() >= next_done_check:  # asks the broker: not on every iteration
            if done():
                return False
            next_done_check = time.monotonic() + 1.0
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.05))  # anywhere: mid-chunk, mid-save, mid-commit
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


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
        got = wait_committed(kafka_bootstrap, ref_group, topic, ends, DEADLINE,
                             alive=lambda: ref.poll() is None)
        assert got == ends, (got, (tmp_path / "ref.log").read_text()[-3000:])
    finally:
        assert stop(ref, timeout=DEADLINE) == 0, (tmp_path / "ref.log").read_text()[-3000:]

    # the same log, killed with SIGKILL 1-4 checkpoints into each of several runs
    group = unique_name("kill9-crash")
    cfg = kafka_config(tmp_path / "crash", kafka_bootstrap, topic, group, batch=BATCH,
                       checkpoint={"every_events": 1500, "every_seconds": 0.5})
    log = tmp_path / "crash.log"
    rng = random.Random(11)
    kills = 0
    def consumed() -> bool:
        return committed(kafka_bootstrap, group, topic) == ends

    while kills < 3:
        proc = run_daemon(cfg, log)
        try:
            landed = _kill_after_progress(proc, tmp_path / "crash" / "state", rng, consumed)
        except AssertionError as exc:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
        if not landed:
            assert stop(proc, timeout=DEADLINE) == 0, log.read_text()[-3000:]
            break
        kills += 1
    assert kills >= 2, f"only {kills} kills landed mid-stream; make the log longer"
    final = run_daemon(cfg, log)
    try:
        got = wait_committed(kafka_bootstrap, group, topic, ends, DEADLINE,
                             alive=lambda: final.poll() is None)
        assert got == ends, (got, log.read_text()[-3000:])
    finally:
        assert stop(final, timeout=DEADLINE) == 0, log.read_text()[-3000:]
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
