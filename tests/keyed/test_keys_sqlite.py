"""The SQLite key store: checkpoints that resume bit for bit, cost by dirty keys, private
files, refusal of corrupt and newer databases, and a kill -9 during the transaction."""

from __future__ import annotations

import ast
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from testkit.keyed import FIELDS, run_keyed

import streamem
from streamem.errors import StateError
from streamem.evaluation.fleet import fleet
from streamem.scoring.key_table import Layout, encode_blobs
from streamem.scoring.keyed import KeyedDetector
from streamem.state.keys_sqlite import SqliteKeyStore, checkpoint, restore


def test_bounded_detector_with_store_and_restore_match_an_uninterrupted_one(tmp_path: Path
                                                                            ) -> None:
    f = fleet(200, 30, 4, seed=7)
    ref = run_keyed(KeyedDetector(warmup=500, random_state=0), f.X, f.keys)
    store = SqliteKeyStore(tmp_path / "keys.db")
    det = KeyedDetector(warmup=500, max_keys_in_memory=150, store=store, random_state=0)
    half = 128 * 24  # on a batch boundary of the reference run
    first = run_keyed(det, f.X[:half], f.keys[:half], store=store, every=3)
    checkpoint(det, store, b"offset=3072")
    assert det.counters()["keys_evicted"] > 0 and det.counters()["keys_loaded"] > 0
    store.close()
    # a new process: restore from the store alone and continue
    store2 = SqliteKeyStore(tmp_path / "keys.db")
    det2, positions = restore(store2)
    assert positions == b"offset=3072" and det2.n_keys_in_memory == 0
    second = run_keyed(det2, f.X[half:], f.keys[half:], store=store2, every=3)
    for name in FIELDS:
        np.testing.assert_array_equal(np.concatenate([first[name], second[name]]), ref[name],
                                      err_msg=name)
    assert len(store2) == 200


def test_a_checkpoint_writes_only_the_dirty_keys(tmp_path: Path) -> None:
    with SqliteKeyStore(tmp_path / "k.db") as store:
        det = KeyedDetector(warmup=50)
        rng = np.random.default_rng(0)
        det.process(rng.normal(size=(500, 2)), np.arange(500) % 100)
        assert checkpoint(det, store) == 100
        assert checkpoint(det, store) == 0
        det.process(rng.normal(size=(10, 2)), np.arange(10))
        assert checkpoint(det, store) == 10
        assert len(store) == 100


def test_idle_keys_are_deleted_from_the_store(tmp_path: Path) -> None:
    with SqliteKeyStore(tmp_path / "k.db") as store:
        det = KeyedDetector(warmup=50, key_idle_ttl=100.0)
        rng = np.random.default_rng(0)
        det.process(rng.normal(size=(30, 2)), ["a"] * 10 + ["b"] * 10 + ["c"] * 10,
                    now=np.arange(30.0))
        checkpoint(det, store)
        assert len(store) == 3
        det.process(rng.normal(size=(1, 2)), ["c"], now=125.0)   # a: 9, b: 19 < 25
        checkpoint(det, store)
        assert sorted(store.get_many(["a", "b", "c"])) == ["c"]


def test_store_files_are_private(tmp_path: Path) -> None:
    os.umask(0o022)
    with SqliteKeyStore(tmp_path / "sub" / "k.db") as store:
        store.write([("a", 1.0, b"x")], b"{}", b"")
        files = list((tmp_path / "sub").iterdir())
        assert {p.name for p in files} >= {"k.db", "k.db-wal"}
        for p in files:
            assert p.stat().st_mode & 0o777 == 0o600, p.name


def test_a_corrupt_database_and_a_newer_schema_give_a_clear_state_error(tmp_path: Path
                                                                         ) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StateError, match=r"cannot be open.*move the file aside"):
        SqliteKeyStore(bad)
    newer = tmp_path / "newer.db"
    SqliteKeyStore(newer).close()
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET v = '99' WHERE k = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StateError, match="schema_version 99, written by a newer streamem"):
        SqliteKeyStore(newer)
    # a corrupt key record is refused when the key comes back
    with SqliteKeyStore(tmp_path / "k.db") as store:
        det = KeyedDetector(warmup=10)
        det.process(np.zeros((20, 2)) + np.arange(20)[:, None], ["a", "b"] * 10)
        checkpoint(det, store)
        store.write([("a", 1.0, b"garbage")], store.read_meta()[0] or b"", b"")
        det2, _ = restore(store)
        with pytest.raises(StateError, match="not a streamem key record"):
            det2.process(np.zeros((1, 2)), ["a"])
    with SqliteKeyStore(tmp_path / "empty.db") as store, pytest.raises(
            StateError, match="no checkpoint yet"):
        restore(store)


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from streamem.scoring.key_table import Layout, encode_blobs
    from streamem.state.keys_sqlite import SqliteKeyStore
    A1, B1, NEW, A2 = encode_blobs(np.arange(4.0)[:, None] * np.ones((4, 12)), Layout(1, 1))
    store = SqliteKeyStore(sys.argv[1])
    store.write([("a", 1.0, A1), ("b", 1.0, B1)], b"meta-1", b"pos-1")
    def rows():
        for i in range(100_000):
            if i == 500:
                print("mid", flush=True)
                time.sleep(60)
            yield (f"k{i}", 2.0, NEW)
        yield ("a", 2.0, A2)
    store.write(rows(), b"meta-2", b"pos-2")
""")


def test_kill_9_during_the_transaction_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    env = {**os.environ, "PYTHONPATH": str(Path(streamem.__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "mid"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with SqliteKeyStore(db) as store:
        assert store.read_meta() == (b"meta-1", b"pos-1")
        assert len(store) == 2
        a1, b1 = encode_blobs(np.arange(2.0)[:, None] * np.ones((2, 12)), Layout(1, 1))
        assert store.get_many(["a", "b", "k1"]) == {"a": a1, "b": b1}


def test_only_the_key_store_imports_sqlite3() -> None:
    pkg = Path(streamem.__file__).parent
    users = []
    for path in pkg.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "sqlite3" for n in names):
                users.append(path.relative_to(pkg).as_posix())
    assert sorted(set(users)) == ["state/keys_sqlite.py"]


def test_a_checkpoint_during_the_population_warm_up_resumes_bit_for_bit(tmp_path: Path
                                                                          ) -> None:
    f = fleet(50, 40, 3, seed=11)
    ref = run_keyed(KeyedDetector(warmup=1200, random_state=0), f.X, f.keys)
    with SqliteKeyStore(tmp_path / "k.db") as store:
        det = KeyedDetector(warmup=1200, store=store, random_state=0)
        first = run_keyed(det, f.X[:640], f.keys[:640])
        assert det.population_ is None   # still warming up: the buffer is in the meta
        checkpoint(det, store, b"640")
    with SqliteKeyStore(tmp_path / "k.db") as store:
        det2, pos = restore(store)
        second = run_keyed(det2, f.X[640:], f.keys[640:])
        assert pos == b"640" and det2.population_ is not None
    for name in FIELDS:
        np.testing.assert_array_equal(np.concatenate([first[name], second[name]]), ref[name],
                                      err_msg=name)
