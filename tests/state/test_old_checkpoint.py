"""A checkpoint written by an older streamem still loads, and the daemon resumes from it to the
state that the older version itself reaches from it.

The fixtures come from tests/state/fixtures/generate.py run on commit 42bdf57 (the main before
the runtime rebuild of issue 12): its ``streamem run`` stopped after 2,000 of the 3,000 events
of the seeded test stream, and the same version resuming from that snapshot over all 3,000
gave the final counters and model. A change to the snapshot format, to how positions are read
back or to how the detector continues breaks this test; a deliberate format change bumps the
schema version, migrates, and adds the new version's fixtures beside these.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from testkit.daemon import cli, inspect, make_stream, write_config

FIXTURES = Path(__file__).resolve().parent / "fixtures"
N = 3000
CHECKPOINT = {"every_events": 1000, "keep": 3}


@pytest.mark.parametrize("commit", ["42bdf57"])
def test_daemon_resumes_from_an_old_checkpoint_as_the_old_version_does(
        tmp_path: Path, commit: str) -> None:
    events = tmp_path / "events.jsonl"
    make_stream(events, N)
    key_dir = tmp_path / "state" / "global"
    key_dir.mkdir(parents=True)
    os.chmod(tmp_path / "state", 0o700)
    os.chmod(key_dir, 0o700)
    snap = key_dir / "000000000002.snap"
    shutil.copyfile(FIXTURES / f"checkpoint_{commit}.snap", snap)
    os.chmod(snap, 0o600)
    shown = inspect(tmp_path / "state")
    assert shown["counters"]["events_seen"] == 2000  # the old snapshot is read as it was

    out = cli("run", "-c", str(write_config(tmp_path, events, checkpoint=CHECKPOINT)),
              timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    want = json.loads((FIXTURES / f"checkpoint_{commit}_final.json").read_text())
    got = inspect(tmp_path / "state")
    assert got["counters"] == want["counters"]  # resumed at event 2,000: nothing twice
    assert json.loads(json.dumps(got["model"])) == want["model"]
