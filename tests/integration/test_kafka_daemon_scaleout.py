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
from kafka_support import create_topic, unique_name
from test_kafka_daemon_kit import (
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

N = 60_000
BATCH = {"max_events": 256, "max_wait_ms": 100}
_ASSIGNED = re.compile(r"streamem\.adapters: partitions \[([0-9, ]*)\] assigned")


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
    counts = produce_events(kafka_bootstrap, topic, events(N, anomalies=(12_000, 41_000)))
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
    a = run_daemon(cfg_a, log_a)
    b = run_daemon(cfg_b, log_b)
    try:
        # wait for the split, then for b to checkpoint and commit a chunk of its own
        deadline = time.monotonic() + 90
        mine: list[int] = []
        while time.monotonic() < deadline:
            pa, pb = _assigned(log_a), _assigned(log_b)
            if pa and pb and sorted(pa + pb) == [0, 1, 2, 3]:
                mine = pb
                break
            time.sleep(0.1)
        assert mine, (log_a.read_text()[-2000:], log_b.read_text()[-2000:])
        split_at = committed(kafka_bootstrap, group, topic)
        while time.monotonic() < deadline:
            now = committed(kafka_bootstrap, group, topic)
            if all(now.get(p, 0) >= split_at.get(p, 0) + BATCH["max_events"] for p in mine):
                break
            time.sleep(0.05)
        at_kill = committed(kafka_bootstrap, group, topic)
        assert all(at_kill.get(p, 0) < ends[p] for p in mine), "b finished before the kill"
        os.kill(b.pid, signal.SIGKILL)
        b.wait()
        t_kill = time.monotonic()
        got = wait_committed(kafka_bootstrap, group, topic, ends, 150,
                             alive=lambda: a.poll() is None)
        assert got == ends, (got, log_a.read_text()[-3000:])
        print(f"\nb held {mine}; a finished them {time.monotonic() - t_kill:.1f} s after the kill")
    finally:
        if b.poll() is None:
            b.kill()
            b.wait()
        code = stop(a)
    text_a = log_a.read_text()
    assert code == 0, text_a[-3000:]
    assert _assigned(log_a) == [0, 1, 2, 3], text_a[-3000:]
    # a restored b's partitions from the state topic (b's checkpoints, not a fresh model)
    for p in mine:
        assert re.search(rf"state p{p}: restored checkpoint \d+ \((\d+) events learned\)",
                         text_a), text_a[-3000:]

    for p, n in sorted(counts.items()):
        want = inspect("--config", str(ref_cfg), "--key", f"p{p}")
        have = inspect("--config", str(cfg_a), "--key", f"p{p}")
        assert have["counters"]["events_seen"] == n, (p, have["counters"])
        assert have["position"] == want["position"] == {str(p): n}
        assert have["counters"] == want["counters"]
        assert_same_state(want, have, f"p{p}")
