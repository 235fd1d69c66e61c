"""kill -9 at random moments while a process saves snapshots in a loop: the store always loads
a valid snapshot afterwards, at least as new as the last save the writer reported done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import streamem
from streamem.state.codec import decode_snapshot
from streamem.state.directory import DirectoryCheckpointStore

WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from streamem.state.base import Snapshot
    from streamem.state.directory import DirectoryCheckpointStore

    store = DirectoryCheckpointStore(sys.argv[1], keep=3)
    last = store.load_latest()
    seq = 0 if last is None else last.sequence
    while True:
        seq += 1
        state = {"fill": np.full(150_000, float(seq)), "seq": seq, "rng": {"n": 2**100 + seq}}
        store.save(Snapshot("global", seq, time.time(), state, {0: seq * 10}, {"n": seq}))
        print(seq, flush=True)
    """
)


def _check_consistent(root: Path) -> int:
    with DirectoryCheckpointStore(root, keep=3) as store:
        latest = store.load_latest()
    assert latest is not None
    seq = latest.sequence
    assert latest.positions == {0: seq * 10} and latest.counters == {"n": seq}
    assert latest.detector["seq"] == seq and latest.detector["rng"] == {"n": 2**100 + seq}
    assert np.all(latest.detector["fill"] == float(seq))
    for name in os.listdir(root / "global"):  # every final file is complete
        if name.endswith(".snap"):
            assert decode_snapshot((root / "global" / name).read_bytes()).key == "global"
    return seq


def _wait_for_tmp_file(key_dir: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if key_dir.is_dir() and any(n.endswith(".tmp") for n in os.listdir(key_dir)):
            return
    raise AssertionError("the writer never had a temporary file open")


@pytest.mark.slow
def test_kill9_during_save_never_loses_a_durable_snapshot(tmp_path: Path) -> None:
    """Even rounds kill at a random moment; odd rounds kill while a temp file is being written."""
    env = dict(os.environ, PYTHONPATH=str(Path(streamem.__file__).resolve().parents[1]))
    rng = np.random.default_rng(2024)
    previous, torn_writes = 0, 0
    for round_ in range(16):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # one save completed: the writer is in its loop
        assert first.strip(), proc.stderr.read() if proc.stderr else ""
        if round_ % 2:
            _wait_for_tmp_file(tmp_path / "global")
        else:
            time.sleep(float(rng.uniform(0.0, 0.25)))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        torn_writes += any(n.endswith(".tmp") for n in os.listdir(tmp_path / "global"))
        reported = [int(x) for x in (first + out).split()]
        seq = _check_consistent(tmp_path)  # opening the store also clears the leftovers
        assert seq >= reported[-1], "a save that returned was lost"
        assert seq >= previous
        previous = seq
    assert torn_writes >= 3, "the kills never interrupted a write; the test lost its teeth"
    assert not any(n.endswith(".tmp") for n in os.listdir(tmp_path / "global"))
