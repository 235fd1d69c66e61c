"""Hostile files where snapshots should be: every one is skipped with a warning that names it,
the previous valid snapshot is used, and no file makes the loader crash, hang or allocate
what the file merely claims."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from testkit.state import BodyEdit, reseal

from streamem.errors import StateError
from streamem.state.base import Snapshot
from streamem.state.codec import UnknownSchemaVersionError, decode_snapshot, encode_snapshot
from streamem.state.directory import DirectoryCheckpointStore, inspect_latest

LOGGER = "streamem.state.directory"


def snap(seq: int, key: str = "global") -> Snapshot:
    return Snapshot(key, seq, 1000.0 + seq, {"means": np.full((2, 3), float(seq)), "n": seq},
                    {0: 10 * seq}, {"events_learned": seq})


def resealed(body_edit: BodyEdit, seq: int = 3) -> bytes:
    """Snapshot ``seq`` with its body edited and its checksum recomputed."""
    return reseal(encode_snapshot(snap(seq)), body_edit)


def _set(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update(fields)


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(name)


def _make_fifo(p: Path) -> None:
    os.mkfifo(p)


def _make_dir(p: Path) -> None:
    p.mkdir()


def _make_socket(p: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(p))
    sock.close()


def _make_symlink_to_valid(p: Path) -> None:
    elsewhere = p.parent.parent / "elsewhere.snap"
    elsewhere.write_bytes(encode_snapshot(snap(3)))
    p.symlink_to(elsewhere)


def _make_dangling_symlink(p: Path) -> None:
    p.symlink_to(p.parent / "nowhere")


def _make_symlink_to_fifo(p: Path) -> None:
    fifo = p.parent.parent / "fifo"
    os.mkfifo(fifo)
    p.symlink_to(fifo)


BODY_EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "deep-body": _set(detector={"x": json.loads("[" * 900 + "]" * 900)}),
    "nan-literal": _set(created_at=float("nan")),
    "huge-array-claim": _set(detector={"$nd": {"dtype": "<f8", "shape": [2**40, 2**40],
                                              "data": ""}}),
    "overflowing-array-claim": _set(detector={"$nd": {"dtype": "<f8", "shape": [2**32, 2**32],
                                                     "data": ""}}),
    "negative-shape": _set(detector={"$nd": {"dtype": "<f8", "shape": [-2, -4],
                                            "data": "AAAAAAAAAAA="}}),
    "too-many-dimensions": _set(detector={"$nd": {"dtype": "<f8", "shape": [1] * 70,
                                                 "data": "AAAAAAAAAAA="}}),
    "object-dtype": _set(detector={"$nd": {"dtype": "|O", "shape": [1], "data": ""}}),
    "huge-int-tag": _set(detector={"$int": "0x" + "f" * 9000}),
    "missing-key": _drop("key"),
    "missing-positions": _drop("positions"),
    "missing-detector": _drop("detector"),
    "sequence-is-a-string": _set(sequence="3"),
    "sequence-is-a-bool": _set(sequence=True),
    "key-is-a-number": _set(key=7),
    "created-at-is-a-string": _set(created_at="now"),
    "positions-is-a-list": _set(positions=[1, 2]),
    "position-is-a-string": _set(positions={"0": "x"}),
    "position-is-a-float": _set(positions={"0": 1.5}),
    "position-is-negative": _set(positions={"0": -5}),
    "partition-is-not-a-number": _set(positions={"p": 1}),
    "counter-is-a-list": _set(counters={"n": [1]}),
    "detector-is-a-list": _set(detector=[1, 2]),
    "body-is-foreign": lambda b: (b.clear(), b.update({"x": 1})),
}


def _resealed_file(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(resealed(edit))


def _release(tmp_path: Path) -> None:
    """Unblock a loader stuck opening a FIFO (so a failing test does not leave it hanging)."""
    for fifo in [*tmp_path.rglob("*")]:
        if fifo.is_fifo():
            with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass


HOSTILE: dict[str, Callable[[Path], None]] = {
    "deep-nesting": lambda p: p.write_bytes(b"[" * 200_000),
    "deep-nesting-closed": lambda p: p.write_bytes(b"[" * 5000 + b"]" * 5000),
    "fifo": _make_fifo,
    "directory": _make_dir,
    "socket": _make_socket,
    "symlink-to-valid": _make_symlink_to_valid,
    "dangling-symlink": _make_dangling_symlink,
    "symlink-to-fifo": _make_symlink_to_fifo,
    "zero-length": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(encode_snapshot(snap(3))[:-40]),
    "infinity-literal": lambda p: p.write_bytes(
        encode_snapshot(snap(3)).replace(b'"created_at":1003.0', b'"created_at":Infinity')),
    "not-json": lambda p: p.write_bytes(b"\x00\x01 not json at all"),
    "json-of-another-program": lambda p: p.write_bytes(b'{"hello": "world"}'),
    **{name: _resealed_file(edit) for name, edit in BODY_EDITS.items()},
}


@pytest.mark.parametrize("make", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_newest_falls_back_to_the_previous_snapshot(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, make: Callable[[Path], None]) -> None:
    root = tmp_path / "state"
    with DirectoryCheckpointStore(root) as store:
        store.save(snap(2))
    newest = root / "global" / "000000000003.snap"
    make(newest)
    found: list[Snapshot | None] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            with DirectoryCheckpointStore(root) as store:
                found.append(store.load_latest())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        worker.join(120)  # a deadline for a hang (a FIFO), not a speed requirement
        hung = worker.is_alive()
        if hung:
            _release(tmp_path)
        assert not hung, "loading the checkpoints hangs"
    assert not errors, errors
    assert found and found[0] is not None and found[0].sequence == 2
    assert np.array_equal(found[0].detector["means"], np.full((2, 3), 2.0))
    assert str(newest) in caplog.text, caplog.text
    assert "000000000002.snap" in caplog.text


@pytest.mark.parametrize("name", ["deep-nesting", "fifo", "missing-key", "directory",
                                  "symlink-to-valid", "huge-array-claim"])
def test_hostile_only_snapshot_is_a_state_error_naming_the_file(tmp_path: Path,
                                                                name: str) -> None:
    root = tmp_path / "state"
    (root / "global").mkdir(parents=True)
    only = root / "global" / "000000000003.snap"
    HOSTILE[name](only)
    with DirectoryCheckpointStore(root) as store, pytest.raises(StateError) as err:
        store.load_latest()
    assert "000000000003.snap" in str(err.value)
    assert "none of the 1 checkpoints" in str(err.value)
    with pytest.raises(StateError):
        inspect_latest(root)


def test_non_regular_files_are_named_for_what_they_are(tmp_path: Path) -> None:
    root = tmp_path / "state"
    (root / "global").mkdir(parents=True)
    os.mkfifo(root / "global" / "000000000003.snap")
    (root / "global" / "000000000002.snap").mkdir()
    (root / "global" / "000000000001.snap").symlink_to(tmp_path / "nowhere")
    with DirectoryCheckpointStore(root) as store, pytest.raises(StateError) as err:
        store.load_latest()
    text = str(err.value)
    assert "FIFO" in text and "directory" in text and "symbolic link" in text


def test_deep_nesting_is_a_state_error_from_the_codec() -> None:
    for blob in (b"[" * 200_000, b"{" * 200_000, b'{"a":' * 100_000):
        with pytest.raises(StateError):
            decode_snapshot(blob)


def test_resealing_alone_is_harmless() -> None:
    back = decode_snapshot(resealed(lambda body: None))
    assert (back.key, back.sequence, back.positions) == ("global", 3, {0: 30})
    assert np.array_equal(back.detector["means"], snap(3).detector["means"])


@pytest.mark.parametrize("edit", list(BODY_EDITS.values()), ids=list(BODY_EDITS))
def test_wrong_content_with_a_valid_checksum_is_refused_by_the_codec(
        edit: Callable[[dict[str, Any]], None]) -> None:
    with pytest.raises(StateError, match=r"corrupt|malformed|invalid|not a streamem"):
        decode_snapshot(resealed(edit))


def test_newer_schema_is_refused_with_the_file_and_the_fix(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with DirectoryCheckpointStore(root) as store:
        store.save(snap(2))
        newest = root / "global" / "000000000003.snap"
        newest.write_bytes(encode_snapshot(snap(3)).replace(b'"schema_version":1',
                                                            b'"schema_version":9'))
        with pytest.raises(UnknownSchemaVersionError) as err:
            store.load_latest()
    text = str(err.value)
    assert str(newest) in text and "newer streamem" in text and "upgrade" in text
    assert "move" in text  # the other way out: set the newer file aside


def test_caller_check_failure_falls_back_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A snapshot that decodes but that the caller cannot use (say, its detector state misses
    a key) is skipped like a corrupt one."""
    root = tmp_path / "state"
    with DirectoryCheckpointStore(root) as store:
        store.save(snap(2))
        store.save(snap(3))

        def check(s: Snapshot) -> None:
            if s.sequence == 3:
                raise StateError("Detector state misses key 'model'")

        with caplog.at_level(logging.WARNING, logger=LOGGER):
            latest = store.load_latest("global", check=check)
        assert latest is not None and latest.sequence == 2
        assert "000000000003.snap" in caplog.text and "misses key 'model'" in caplog.text
        with pytest.raises(StateError, match="none of the 2 checkpoints"):
            store.load_latest("global", check=lambda s: (_ for _ in ()).throw(
                StateError("unusable")))


def test_a_key_directory_that_is_a_file_is_a_state_error(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "global").write_text("not a directory")
    with DirectoryCheckpointStore(root) as store:
        with pytest.raises(StateError, match="not a directory"):
            store.load_latest()
        assert store.keys() == []


def test_leftover_temp_names_that_are_not_files_do_not_break_opening(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with DirectoryCheckpointStore(root) as store:
        store.save(snap(1))
    (root / "global" / ".000000000002.snap.1.abcd.tmp").mkdir()
    os.mkfifo(root / "global" / ".000000000003.snap.1.abcd.tmp")
    with DirectoryCheckpointStore(root) as store:
        latest = store.load_latest()
        store.save(snap(2))
    assert latest is not None and latest.sequence == 1
