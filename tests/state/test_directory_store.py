"""DirectoryCheckpointStore specifics: file layout, atomicity leftovers, pruning, inspect."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamem.errors import StateError
from streamem.state.base import Snapshot
from streamem.state.codec import UnknownSchemaVersionError, encode_snapshot
from streamem.state.directory import DirectoryCheckpointStore, inspect_latest


def snap(seq: int, key: str = "global", **detector: object) -> Snapshot:
    det = detector or {"means": np.full((2, 3), float(seq)), "n": seq}
    return Snapshot(key, seq, 1000.0 + seq, dict(det), {0: 10 * seq, 1: seq}, {"events": seq})


def files(root: Path, key: str = "global") -> list[str]:
    return sorted(os.listdir(root / key))


def test_layout_is_one_file_per_snapshot(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path, keep=10) as store:
        store.save(snap(1))
        store.save(snap(2, key="p3"))
        store.save(snap(3))
    assert files(tmp_path) == ["000000000001.snap", "000000000003.snap"]
    assert files(tmp_path, "p3") == ["000000000002.snap"]
    assert (tmp_path / "global" / "000000000003.snap").read_bytes() == encode_snapshot(snap(3))


def test_keep_prunes_to_the_newest_n(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path, keep=3) as store:
        for seq in range(1, 11):
            store.save(snap(seq))
            assert len(files(tmp_path)) == min(seq, 3)
        assert files(tmp_path) == [f"{s:012d}.snap" for s in (8, 9, 10)]
        latest = store.load_latest()
    assert latest is not None and latest.sequence == 10


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_tmp_leftover_is_ignored_then_removed_on_open(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(1))
    leftover = tmp_path / "global" / f".000000000002.snap.{_dead_pid()}.abcd1234.tmp"
    leftover.write_bytes(encode_snapshot(snap(2))[:100])  # a write cut off by a crash
    assert inspect_latest(tmp_path)["sequence"] == 1  # read-only: ignores, keeps it
    assert leftover.exists()
    with DirectoryCheckpointStore(tmp_path) as store:
        assert not leftover.exists()
        latest = store.load_latest()
    assert latest is not None and latest.sequence == 1


def test_tmp_file_of_a_live_writer_is_left_alone_unless_old(tmp_path: Path) -> None:
    """Opening a second store (say, a CLI) must not break a running writer's save."""
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(1))
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        in_flight = tmp_path / "global" / f".000000000002.snap.{writer.pid}.0badc0de.tmp"
        in_flight.write_bytes(b"{")
        with DirectoryCheckpointStore(tmp_path) as store:
            assert in_flight.exists()
            store.save(snap(2))  # pruning leaves it alone too
            assert in_flight.exists()
        hour_ago = time.time() - 3600
        os.utime(in_flight, (hour_ago, hour_ago))  # a pid reused since: the age rule
        with DirectoryCheckpointStore(tmp_path):
            assert not in_flight.exists()
    finally:
        writer.kill()
        writer.wait()


def test_no_tmp_file_remains_after_save(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        for seq in range(3):
            store.save(snap(seq))
    assert all(name.endswith(".snap") for name in files(tmp_path))


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"",  # empty
        lambda b: b.replace(b'"sequence":3', b'"sequence":4'),  # bit rot / edited
        lambda b: b"\x00" * len(b),  # zero-filled block after a power cut
    ],
    ids=["truncated", "empty", "tampered", "zeros"],
)
def test_damaged_newest_falls_back_to_previous_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(2))
        store.save(snap(3))
        newest = tmp_path / "global" / "000000000003.snap"
        newest.write_bytes(damage(newest.read_bytes()))  # type: ignore[operator]
        with caplog.at_level(logging.WARNING, logger="streamem.state.directory"):
            latest = store.load_latest()
    assert latest is not None and latest.sequence == 2
    assert np.array_equal(latest.detector["means"], np.full((2, 3), 2.0))
    assert str(newest) in caplog.text and "000000000002.snap" in caplog.text


def test_all_damaged_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(1))
        store.save(snap(2))
        for name in files(tmp_path):
            (tmp_path / "global" / name).write_bytes(b"{}")
        with pytest.raises(StateError, match="none of the 2 checkpoints") as err:
            store.load_latest()
    assert "move the directory aside" in str(err.value)


def test_newer_schema_is_not_silently_rolled_back(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(1))
        blob = encode_snapshot(snap(2)).replace(b'"schema_version":1', b'"schema_version":2')
        (tmp_path / "global" / "000000000002.snap").write_bytes(blob)
        with pytest.raises(UnknownSchemaVersionError, match="upgrade"):
            store.load_latest()


def test_misplaced_snapshot_is_skipped(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(1))
        store.save(snap(5, key="p1"))
        os.link(tmp_path / "p1" / "000000000005.snap", tmp_path / "global" / "000000000005.snap")
        latest = store.load_latest("global")
    assert latest is not None and latest.sequence == 1


def test_saving_an_older_sequence_discards_the_abandoned_newer_ones(tmp_path: Path) -> None:
    with DirectoryCheckpointStore(tmp_path) as store:
        for seq in (1, 2, 3, 4):
            store.save(snap(seq))
        store.save(snap(2))  # e.g. restored 2 because 3 and 4 were damaged, then moved on
        assert files(tmp_path) == ["000000000001.snap", "000000000002.snap"]
        latest = store.load_latest()
    assert latest is not None and latest.sequence == 2


@pytest.mark.parametrize("key", ["", "../escape", ".hidden", "a/b", "x" * 200])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    with DirectoryCheckpointStore(tmp_path) as store, pytest.raises(StateError, match="key"):
        store.save(snap(1, key=key))
    assert list(tmp_path.iterdir()) == []


def test_bad_keep_and_closed_store(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="keep=0"):
        DirectoryCheckpointStore(tmp_path, keep=0)
    store = DirectoryCheckpointStore(tmp_path)
    store.close()
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.save(snap(1))


def test_unwritable_directory_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match=r"checkpoint\.dir"):
        DirectoryCheckpointStore(blocker / "state")


def test_inspect_latest_is_json_ready(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    detector = {
        "weights": np.array([0.25, 0.75]),
        "threshold": {"value": float("nan"), "peaks": np.array([1.0, np.inf])},
        "rng": rng.bit_generator.state,
        "by_partition": {3: (1, 2)},
        "z": np.array([1 + 2j]),
    }
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(Snapshot("global", 6, 1.0, detector, {2: 50, 0: 7}, {"events_learned": 9}))
        store.save(snap(1, key="p0"))
    info = inspect_latest(tmp_path)
    text = json.dumps(info, allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    assert json.loads(text) == info
    assert info["sequence"] == 6 and info["positions"] == {"0": 7, "2": 50}
    assert info["counters"] == {"events_learned": 9} and info["keys"] == ["global", "p0"]
    assert info["sequences"] == [6] and info["file"].endswith("000000000006.snap")
    det = info["detector"]
    assert det["weights"] == [0.25, 0.75]
    assert det["threshold"] == {"value": None, "peaks": [1.0, None]}
    assert det["by_partition"] == {"3": [1, 2]} and det["z"] == [[1.0, 2.0]]
    assert det["rng"]["state"]["state"] == rng.bit_generator.state["state"]["state"]


def test_inspect_latest_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        inspect_latest(tmp_path / "missing")
    with DirectoryCheckpointStore(tmp_path) as store:
        store.save(snap(1, key="p0"))
    with pytest.raises(StateError, match=r"no checkpoint for key 'global'.*\['p0'\]"):
        inspect_latest(tmp_path)
