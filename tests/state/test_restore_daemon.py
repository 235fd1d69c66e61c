"""``streamem run`` and ``streamem inspect`` (real subprocesses, real files) over a newest
snapshot that is hostile: they fall back to the previous snapshot with a warning naming the
file, resume to the state of an uninterrupted run, and exit 3 with a clear message when no
snapshot is usable. Checkpoints are private (0600 files, 0700 directories) whatever the umask.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testkit.daemon import cli, inspect, make_stream, write_config
from testkit.state import reseal

N = 6000
CHECKPOINT = {"every_events": 1000, "keep": 3}


def _drop_detector_key(body: dict[str, Any]) -> None:
    body["detector"].pop("model")


def _detector_params_not_a_mapping(body: dict[str, Any]) -> None:
    body["detector"]["params"] = [1, 2, 3]


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _directory(p: Path) -> None:
    p.unlink()
    p.mkdir()
    (p / "inside").write_text("x")


HOSTILE: dict[str, Callable[[Path], None]] = {
    "deep-nesting": lambda p: p.write_bytes(b"[" * 200_000),
    "fifo": _fifo,
    "directory": _directory,
    "detector-misses-a-key": lambda p: p.write_bytes(reseal(p.read_bytes(), _drop_detector_key)),
    "detector-wrong-type": lambda p: p.write_bytes(
        reseal(p.read_bytes(), _detector_params_not_a_mapping)),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The events and ``inspect`` of an uninterrupted run over them."""
    tmp = tmp_path_factory.mktemp("reference")
    events = tmp / "events.jsonl"
    make_stream(events, N)
    out = cli("run", "-c", str(write_config(tmp, events, checkpoint=CHECKPOINT)))
    assert out.returncode == 0, out.stderr
    return events, inspect(tmp / "state")


def _run_once(tmp: Path, events: Path) -> list[Path]:
    """Run to the end of ``events``; the snapshot files, oldest first."""
    out = cli("run", "-c", str(write_config(tmp, events, checkpoint=CHECKPOINT)))
    assert out.returncode == 0, out.stderr
    snaps = sorted((tmp / "state" / "global").glob("*.snap"))
    assert len(snaps) == 3
    return snaps


@pytest.mark.parametrize("make", list(HOSTILE.values()), ids=list(HOSTILE))
def test_run_falls_back_past_a_hostile_newest_snapshot(
        tmp_path: Path, reference: tuple[Path, dict[str, Any]],
        make: Callable[[Path], None]) -> None:
    events, ref = reference
    snaps = _run_once(tmp_path, events)
    newest, previous = snaps[-1], snaps[-2]
    make(newest)
    shown = cli("inspect", str(tmp_path / "state"), "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert str(newest) in shown.stderr and previous.name in shown.stderr
    out = cli("run", "-c", str(write_config(tmp_path, events, checkpoint=CHECKPOINT)),
              timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert f"skipping unusable checkpoint {newest}" in out.stderr, out.stderr
    assert f"restored the older checkpoint {previous}" in out.stderr, out.stderr
    got = inspect(tmp_path / "state")
    # resumed from the previous snapshot: every event learned exactly once, the same model
    assert got["counters"] == ref["counters"] and got["counters"]["events_seen"] == N
    assert got["model"] == ref["model"]


@pytest.mark.parametrize("name", ["deep-nesting", "fifo", "detector-misses-a-key"])
def test_run_without_a_usable_snapshot_exits_3_naming_each_file(
        tmp_path: Path, reference: tuple[Path, dict[str, Any]], name: str) -> None:
    events, _ = reference
    for path in _run_once(tmp_path, events):
        HOSTILE[name](path)
    out = cli("run", "-c", str(write_config(tmp_path, events, checkpoint=CHECKPOINT)),
              timeout=300)
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr
    assert "state error: none of the 3 checkpoints" in out.stderr, out.stderr
    assert all(p.name in out.stderr for p in (tmp_path / "state" / "global").glob("*.snap"))
    assert "move the directory aside" in out.stderr
    shown = cli("inspect", str(tmp_path / "state"), timeout=120)
    assert shown.returncode == 3 and "none of the 3 checkpoints" in shown.stderr, shown.stderr


def test_newer_schema_exits_3_and_says_so(tmp_path: Path,
                                          reference: tuple[Path, dict[str, Any]]) -> None:
    events, _ = reference
    newest = _run_once(tmp_path, events)[-1]
    newest.write_bytes(newest.read_bytes().replace(b'"schema_version":1', b'"schema_version":2'))
    out = cli("run", "-c", str(write_config(tmp_path, events, checkpoint=CHECKPOINT)))
    assert out.returncode == 3, out.stderr
    assert str(newest) in out.stderr and "written by a newer streamem" in out.stderr
    assert "upgrade streamem" in out.stderr and f"move {newest.name} aside" in out.stderr


def test_a_fifo_newest_snapshot_neither_hangs_start_up_nor_blocks_sigterm(
        tmp_path: Path, reference: tuple[Path, dict[str, Any]]) -> None:
    events, _ = reference
    newest = _run_once(tmp_path, events)[-1]
    _fifo(newest)
    cfg = write_config(tmp_path, events, checkpoint=CHECKPOINT,
                       source={"type": "file", "path": str(events), "follow": True})
    log = tmp_path / "follow.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=fh)
    try:
        deadline = time.monotonic() + 120  # a deadline for start-up, not a speed check
        while "restored the older checkpoint" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"start-up hangs:\n{log.read_text()}"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            with newest.open("wb"):  # unblock an open() stuck on the FIFO, then end it
                pass
            proc.kill()
            proc.wait()


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.lstat().st_mode)
            for p in [root, *root.rglob("*")]}


def test_checkpoints_are_private_whatever_the_umask(
        tmp_path: Path, reference: tuple[Path, dict[str, Any]]) -> None:
    events, _ = reference
    cfg = write_config(tmp_path, events, checkpoint={**CHECKPOINT,
                                                     "dir": str(tmp_path / "new" / "state")})
    out = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                         capture_output=True, text=True, timeout=300, umask=0)
    assert out.returncode == 0, out.stderr
    modes = _modes(tmp_path / "new")
    files = {p: m for p, m in modes.items() if p.endswith(".snap")}
    dirs = {p: m for p, m in modes.items() if not p.endswith(".snap")}
    assert len(files) == 3 and set(files.values()) == {0o600}, modes
    assert set(dirs) == {"new", "new/state", "new/state/global"}, modes
    assert set(dirs.values()) == {0o700}, modes


def test_existing_directories_keep_their_mode_and_files_are_still_private(
        tmp_path: Path, reference: tuple[Path, dict[str, Any]]) -> None:
    events, _ = reference
    (tmp_path / "state").mkdir(mode=0o750)
    os.chmod(tmp_path / "state", 0o750)  # the operator's choice (say, a group for backups)
    cfg = write_config(tmp_path, events, checkpoint=CHECKPOINT)
    out = subprocess.run([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                         capture_output=True, text=True, timeout=300, umask=0)
    assert out.returncode == 0, out.stderr
    modes = _modes(tmp_path / "state")
    assert modes.pop("state") == 0o750 and modes.pop("state/global") == 0o700
    assert modes and set(modes.values()) == {0o600}, modes
    shutil.rmtree(tmp_path / "state")
