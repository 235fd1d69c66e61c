"""After a restore the daemon commits the restored positions at once, new events or not.

A kill between a checkpoint's save and its offset commit leaves the group's committed offsets
behind the durable state. The daemon that restores that checkpoint must bring them up to it
straight away: with no new events it would otherwise never commit, and the group would show
lag (and a new member without the checkpoint would re-read) for as long as the topic is quiet.
The crash window is reproduced exactly by rewinding the group's commits while no member runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit.broker import create_topic, unique_name
from testkit.kafka_daemon import (
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

BEHIND = 76


def _rewind_commits(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``offsets`` for ``group`` as a manually assigned consumer (the group is empty)."""
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        tps = {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        consumer.assign(list(tps))
        consumer.commit(tps)
    finally:
        consumer.close(autocommit=False)


@pytest.mark.parametrize("scope", ["partition", "global"])
def test_restored_positions_are_committed_without_new_events(
        tmp_path: Path, kafka_bootstrap: str, scope: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_name("restore-commit"), partitions=3)
    counts = produce_events(kafka_bootstrap, topic, events(3000))
    ends = end_offsets(kafka_bootstrap, topic)
    assert ends == counts and len(ends) == 3
    group = unique_name("restore-commit")
    cfg = kafka_config(tmp_path, kafka_bootstrap, topic, group,
                       model={"scope": scope, "warmup": 500})
    log = tmp_path / "daemon.log"

    first = run_daemon(cfg, log)
    try:
        got = wait_committed(kafka_bootstrap, group, topic, ends, 600,
                             alive=lambda: first.poll() is None)
        assert got == ends, (got, log.read_text()[-3000:])
    finally:
        assert stop(first) == 0, log.read_text()[-3000:]

    # the state on disk holds the end of every partition; the commits fall behind it, as
    # when a kill -9 lands between a checkpoint's save and its commit
    keys = [f"p{p}" for p in sorted(ends)] if scope == "partition" else ["global"]
    durable: dict[int, int] = {}
    for key in keys:
        durable.update({int(p): o for p, o in inspect(str(tmp_path / "state"), "--key",
                                                      key)["position"].items()})
    assert durable == ends
    behind = {p: o - BEHIND for p, o in ends.items()}
    _rewind_commits(kafka_bootstrap, group, topic, behind)
    assert committed(kafka_bootstrap, group, topic) == behind

    again = run_daemon(cfg, log)  # no new event will arrive
    try:
        # generous: joining the group and restoring take a few seconds, more under load
        got = wait_committed(kafka_bootstrap, group, topic, ends, 240,
                             alive=lambda: again.poll() is None)
        assert got == ends, (got, log.read_text()[-3000:])
    finally:
        assert stop(again) == 0, log.read_text()[-3000:]
    for key in keys:  # nothing was learned twice
        assert inspect(str(tmp_path / "state"), "--key", key)["counters"]["events_seen"] == (
            ends[int(key[1:])] if scope == "partition" else sum(ends.values()))
