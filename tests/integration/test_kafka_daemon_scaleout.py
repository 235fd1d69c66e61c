"""Scale-out on Kafka's consumer groups: two daemons in one group split the partitions, keep
their per-partition states on a compacted state topic, one is killed with SIGKILL, and the
survivor takes its partitions over from that topic. Every partition ends in the state of a
single-instance run (``streamem inspect --config CFG --key pN --json``)."""

from __future__ import annotations

import os
import re
import signal
import time
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

N = 100_000
# a long max_wait keeps timing-dependent partial chunks out of the middle of the stream (a
# partial flush mid-stream in one run but not the other made the states differ, once in CI)
BATCH = {"max_events": 256, "max_wait_ms": 1500}
_ASSIGNED = re.compile(r"streamem\.runtime\.rebalance: partitions \[([0-9, ]*)\] assigned")


def _assigned(log: Path) -> list[int] | None:
    """The partitions of the newest assignment in ``log`` (None before the first)."""
    found = _ASSIGNED.findall(log.read_text()) if log.exists() else []
    if not found:
        return None
    return [int(p) for p in found[-1].split(",") if p.strip()]


def _config(tmp: Path, bootstrap: str, topic: str, group: str, state_topic: str) -> Path:
    return kafka_config(tmp, bootstrap, topic, group, batch=BATCH,
                        checkpoint={"store": "kafka", "topic": state_topic,
                                    "every_events": 2000, "every_seconds": 0.5})


def test_two_daemons_split_then_one_takes_over_from_the_state_topic(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("scale-in"), partitions=4)
    counts = produce_events(kafka_bootstrap, topic, events(N, anomalies=(12_000, 41_000, 77_000)))
    ends = end_offsets(kafka_bootstrap, topic)
    assert ends == counts and len(counts) == 4

    # reference: a single instance, its states on its own state topic
    ref_group = unique_name("scale-ref")
    ref_cfg = _config(tmp_path / "ref", kafka_bootstrap, topic, ref_group,
                      unique_name("scale-ref-state"))
    ref = run_daemon(ref_cfg, tmp_path / "ref.log")
    try:
        got = wait_committed(kafka_bootstrap, ref_group, topic, ends, 120,
                             alive=lambda: ref.poll() is None)
        assert got == ends, (got, (tmp_path / "ref.log").read_text()[-3000:])
    finally:
        assert stop(ref) == 0, (tmp_path / "ref.log").read_text()[-3000:]

    # two instances, one group, one state topic; nothing is kept locally that matters
    group = unique_name("scale")
    state_topic = unique_name("scale-state")
    cfg_a = _config(tmp_path / "a", kafka_bootstrap, topic, group, state_topic)
    cfg_b = _config(tmp_path / "b", kafka_bootstrap, topic, group, state_topic)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    procs = {"a": run_daemon(cfg_a, log_a), "b": run_daemon(cfg_b, log_b)}
    logs = {"a": log_a, "b": log_b}
    survivor = ""
    code = None
    try:
        # wait for the split (whoever joined first had everything for a moment)
        deadline = time.monotonic() + 90
        held: dict[str, list[int]] = {}
        while time.monotonic() < deadline:
            held = {k: _assigned(log) or [] for k, log in logs.items()}
            if sorted(held["a"] + held["b"]) == [0, 1, 2, 3] and held["a"] and held["b"]:
                break
            time.sleep(0.1)
        assert held["a"] and held["b"], (log_a.read_text()[-2000:], log_b.read_text()[-2000:])
        # the victim: the member with more left to do; kill it once it checkpointed progress
        split_at = committed(kafka_bootstrap, group, topic)

        def left(k: str) -> int:
            return sum(ends[p] - split_at.get(p, 0) for p in held[k])

        victim = max(held, key=left)
        survivor = "a" if victim == "b" else "b"
        mine = held[victim]
        while time.monotonic() < deadline:
            now = committed(kafka_bootstrap, group, topic)
            if any(now.get(p, 0) > split_at.get(p, 0) for p in mine):
                break
            time.sleep(0.02)
        os.kill(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait()
        at_kill = committed(kafka_bootstrap, group, topic)
        unfinished = [p for p in mine if at_kill.get(p, 0) < ends[p]]
        assert unfinished, f"{victim} finished {mine} before the kill; make the log longer"
        t_kill = time.monotonic()
        proc = procs[survivor]
        got = wait_committed(kafka_bootstrap, group, topic, ends, 150,
                             alive=lambda: proc.poll() is None)
        assert got == ends, (got, logs[survivor].read_text()[-3000:])
        print(f"\n{victim} held {mine} ({unfinished} unfinished at the kill); {survivor} "
              f"finished them {time.monotonic() - t_kill:.1f} s after the kill")
    finally:
        for k, proc in procs.items():
            if k == survivor:
                code = stop(proc)
            elif proc.poll() is None:
                proc.kill()
                proc.wait()
    surv_log = logs[survivor]
    surv_cfg = cfg_a if survivor == "a" else cfg_b
    text = surv_log.read_text()
    assert code == 0, text[-3000:]
    assert _assigned(surv_log) == [0, 1, 2, 3], text[-3000:]
    # the survivor restored the victim's checkpointed partitions from the state topic (a
    # committed offset means a snapshot was saved first; the others start over, correctly)
    restored = [p for p in unfinished if at_kill.get(p, 0) > 0]
    assert restored, (mine, at_kill)
    for p in restored:
        assert re.search(rf"state p{p}: restored checkpoint \d+ \((\d+) events learned\)",
                         text), text[-3000:]

    for p, n in sorted(counts.items()):
        want = inspect("--config", str(ref_cfg), "--key", f"p{p}")
        have = inspect("--config", str(surv_cfg), "--key", f"p{p}")
        assert have["counters"]["events_seen"] == n, (p, have["counters"])
        assert have["position"] == want["position"] == {str(p): n}
        assert have["counters"] == want["counters"]
        assert_same_state(want, have, f"p{p}")
