"""The Drain3 template miner: ids, accuracy on Loghub, and its plain-JSON state."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from testkit.logs import read_log

from streamem.errors import StateError
from streamem.parsing import PRESETS
from streamem.parsing.templates import TemplateMiner
from streamem.state.codec import dumps, loads


def _messages(loghub: Path, system: str) -> list[str]:
    recs = PRESETS["syslog"].parse(read_log(loghub, system))
    return [r["message"] for r in recs if isinstance(r, dict)]


@pytest.mark.parametrize(("system", "max_clusters"), [("OpenSSH", 10_000), ("Mac", 25)])
def test_a_restored_miner_assigns_the_ids_of_an_uninterrupted_one(
        loghub: Path, system: str, max_clusters: int) -> None:
    msgs = _messages(loghub, system)
    whole = TemplateMiner("message", max_clusters=max_clusters)
    first = TemplateMiner("message", max_clusters=max_clusters)
    cut = len(msgs) // 2
    expected = [whole.mine(m) for m in msgs]
    for m in msgs[:cut]:
        first.mine(m)
    blob = dumps(first.to_state())  # the snapshot codec: plain JSON, no pickle
    resumed = TemplateMiner.from_state(loads(blob))
    assert [resumed.mine(m) for m in msgs[cut:]] == expected[cut:]
    assert resumed.to_state() == whole.to_state()
    if max_clusters < 100:  # the LRU bound was exercised, and held
        assert whole.n_templates == max_clusters


def test_state_is_plain_versioned_json() -> None:
    m = TemplateMiner("msg")
    for line in ["user alice logged in from 10.0.0.1", "user bob logged in from 10.0.0.2",
                 "disk /dev/sda1 is 91% full", "$weird {token} \"quoted\""]:
        m.mine(line)
    state = m.to_state()
    text = json.dumps(state)  # only JSON types
    assert json.loads(text) == state
    assert state["version"] == 1 and state["field"] == "msg"
    assert state["clusters"][0] == [1, 2, ["user", "<*>", "logged", "in", "from", "<IP>"]]
    assert '"py/' not in text  # nothing of jsonpickle's format


def test_bad_states_are_rejected_with_the_reason() -> None:
    state = TemplateMiner("msg").to_state()
    with pytest.raises(StateError, match="version 2 is not 1"):
        TemplateMiner.from_state({**state, "version": 2})
    with pytest.raises(StateError, match="malformed template miner state"):
        TemplateMiner.from_state({**state, "clusters": [[1, 2]]})


def test_annotate_adds_id_and_text_and_skips_records_without_a_text_field() -> None:
    m = TemplateMiner("message", max_chars=30)
    recs: list[Any] = [{"message": "Failed password for root from 1.2.3.4 port 22 ssh2"},
                       {"message": "Failed password for admin from 5.6.7.8 port 2222 ssh2"},
                       {"message": 5}, {"other": "x"}, ("parse_error", "x"),
                       {"message": "x" * 40 + " tail"}]
    m.annotate(recs)
    assert recs[0]["template"] == recs[1]["template"] == 1
    assert recs[1]["template_text"] == "Failed password for <*> from"  # first 30 characters
    assert "template" not in recs[2] and "template" not in recs[3]
    assert recs[5]["template_text"] == "x" * 30


def test_grouping_accuracy_on_loghub(loghub: Path) -> None:
    bench_logs = importlib.import_module("bench.logs")
    rows = {r[0]: float(r[6]) for r in bench_logs.accuracy(loghub)}
    assert len(rows) == 14
    assert rows["Apache"] == 1.0 and rows["HDFS"] > 0.99
    assert rows["OpenSSH"] > 0.7 and rows["Zookeeper"] > 0.9
    assert sum(rows.values()) / 14 > 0.7


def test_grouping_accuracy_definition() -> None:
    ga = importlib.import_module("bench.logs").grouping_accuracy
    assert ga(["a", "a", "b"], [1, 1, 2]) == 1.0
    assert ga(["a", "a", "b"], [1, 1, 1]) == 0.0  # one mined group mixes two true ones
    assert ga(["a", "a", "b"], [1, 2, 3]) == pytest.approx(1 / 3)  # "a" split in two


def test_decoder_restores_the_miner_but_keeps_the_configured_field() -> None:
    from streamem.parsing import LineDecoder

    old = TemplateMiner("msg")
    old.mine("user alice logged in")
    dec = LineDecoder(PRESETS["logfmt"], templates=TemplateMiner("message"))
    dec.restore({"templates": old.to_state()})
    (rec,) = dec([b'message="user bob logged in"'])
    assert rec == {"message": "user bob logged in", "template": 1,
                   "template_text": "user <*> logged in"}
    assert dec.to_state()["templates"]["field"] == "message"
    dec.restore({})  # a snapshot without parsing state (JSON input before): nothing changes
    assert dec.templates is not None and dec.templates.n_templates == 1


def test_the_snapshot_carries_the_miner_state_and_old_snapshots_still_load() -> None:
    from streamem.state.base import Snapshot
    from streamem.state.codec import decode_snapshot, encode_snapshot

    m = TemplateMiner("message")
    for line in ["Accepted password for root from 10.0.0.1 port 22 ssh2", "Bye", "$x {y}"]:
        m.mine(line)
    snap = Snapshot("global", 3, 0.0, {}, {0: 10}, parsing={"templates": m.to_state()})
    back = decode_snapshot(encode_snapshot(snap))
    assert back == snap
    assert TemplateMiner.from_state(back.parsing["templates"]).to_state() == m.to_state()
    plain = Snapshot("global", 3, 0.0, {}, {0: 10})
    assert b'"parsing"' not in encode_snapshot(plain)  # JSON/CSV snapshots are unchanged
    assert decode_snapshot(encode_snapshot(plain)).parsing == {}
