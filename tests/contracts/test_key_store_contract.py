"""The KeyStore contract, run against every key store (SQLite file, compacted Kafka topic).

A factory takes the pytest ``request`` and returns ``open_store()``, which opens a *new* store
instance on the *same* location each time, and ``corrupt(key)``, which plants a bad record for
``key`` behind the store's back. The Kafka store runs against the real test broker
(``testkit.broker.ensure_broker``: fails under CI=true, skips elsewhere) on a fresh topic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from testkit.keyed import FIELDS, run_keyed

from streamem.errors import StateError
from streamem.evaluation.fleet import fleet
from streamem.scoring.keyed import KeyedDetector
from streamem.state.keys import KeyStore, checkpoint, restore
from streamem.state.keys_sqlite import SqliteKeyStore

kafka_support = importlib.import_module("testkit.broker")

Opener = tuple[Callable[[], Any], Callable[[str], None]]


def _open_sqlite(request: pytest.FixtureRequest) -> Opener:
    path = request.getfixturevalue("tmp_path") / "keys.db"

    def corrupt(key: str) -> None:
        import sqlite3

        con = sqlite3.connect(path)
        con.execute("INSERT OR REPLACE INTO keys VALUES (?, 0.0, ?)", (key, b"garbage"))
        con.commit()
        con.close()

    return (lambda: SqliteKeyStore(path)), corrupt


def _open_kafka(request: pytest.FixtureRequest) -> Opener:
    from streamem.state.kafka_keys import KafkaKeyStore

    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("keys-contract")

    def corrupt(key: str) -> None:
        kafka_support.produce(bootstrap, topic, [b"\x00" * 8 + b"garbage"], key=key.encode())

    return (lambda: KafkaKeyStore(bootstrap, topic, timeout=30.0)), corrupt


STORES: list[Any] = [
    pytest.param(_open_sqlite, id="sqlite"),
    pytest.param(_open_kafka, id="kafka", marks=pytest.mark.kafka),
]


@pytest.fixture(params=STORES)
def opener(request: pytest.FixtureRequest) -> Opener:
    factory: Callable[[pytest.FixtureRequest], Opener] = request.param
    return factory(request)



def _blobs(det: KeyedDetector, keys: list[str]) -> dict[str, bytes]:
    from streamem.scoring.key_table import encode_blobs

    t = det.table_
    assert t is not None
    names, rec = t.dirty_records()
    return dict(zip(names, encode_blobs(rec, t.layout), strict=True))


def test_both_stores_satisfy_the_protocol(opener: Opener) -> None:
    with opener[0]() as store:
        assert isinstance(store, KeyStore)


def test_dirty_keys_and_positions_round_trip_and_survive_reopening(opener: Opener) -> None:
    open_store, _ = opener
    det = KeyedDetector(warmup=20, random_state=0)
    det.process(np.random.default_rng(0).normal(size=(60, 2)), np.arange(60) % 6)
    assert det.table_ is not None
    blobs = _blobs(det, [str(i) for i in range(6)])
    with open_store() as store:
        assert store.read_meta() == (None, None) and len(store) == 0
        with pytest.raises(StateError, match="no checkpoint yet"):
            restore(store)
        assert checkpoint(det, store, b"offset=60") == 6
        assert checkpoint(det, store, b"offset=61") == 0   # nothing dirty: positions only
        assert store.get_many(sorted(blobs)) == blobs
        assert store.read_meta()[1] == b"offset=61"
    with open_store() as again:   # a new instance on the same location
        assert len(again) == 6 and again.get_many(sorted(blobs)) == blobs
        meta, positions = again.read_meta()
        assert positions == b"offset=61" and meta is not None
        det2, pos = restore(again)
        assert pos == b"offset=61" and det2.n_events_ == 60


def test_get_many_leaves_out_missing_keys(opener: Opener) -> None:
    det = KeyedDetector(warmup=10)
    det.process(np.zeros((20, 2)) + np.arange(20)[:, None], ["a", "b"] * 10)
    with opener[0]() as store:
        assert store.get_many(["a", "zz"]) == {}
        checkpoint(det, store)
        assert sorted(store.get_many(["zz", "b", "a", "missing"])) == ["a", "b"]
        assert store.get_many([]) == {}


def test_a_checkpoint_forgets_keys_idle_past_the_ttl(opener: Opener) -> None:
    open_store, _ = opener
    rng = np.random.default_rng(0)
    with open_store() as store:
        det = KeyedDetector(warmup=50, key_idle_ttl=100.0, store=store)
        det.process(rng.normal(size=(30, 2)), ["a"] * 10 + ["b"] * 10 + ["c"] * 10,
                    now=np.arange(30.0))
        checkpoint(det, store)
        assert len(store) == 3
        det.process(rng.normal(size=(5, 2)), ["c"] * 5, now=np.full(5, 125.0))
        checkpoint(det, store)   # a (last seen 9) and b (19) are idle past 100 s at t=125
        assert sorted(store.get_many(["a", "b", "c"])) == ["c"]
    with open_store() as again:
        assert len(again) == 1 and sorted(again.get_many(["a", "b", "c"])) == ["c"]


def test_restore_continues_bit_for_bit(opener: Opener) -> None:
    open_store, _ = opener
    f = fleet(120, 30, 4, seed=7)
    ref = run_keyed(KeyedDetector(warmup=400, random_state=0), f.X, f.keys)
    half = 128 * 16
    store = open_store()
    det = KeyedDetector(warmup=400, max_keys_in_memory=100, store=store, random_state=0)
    first = run_keyed(det, f.X[:half], f.keys[:half], store=store)
    checkpoint(det, store, f"offset={half}".encode())
    assert det.counters()["keys_evicted"] > 0 and det.counters()["keys_loaded"] > 0
    store.close()
    store2 = open_store()   # as a new process would: the store alone
    try:
        det2, positions = restore(store2)
        assert positions == f"offset={half}".encode() and det2.n_keys_in_memory == 0
        second = run_keyed(det2, f.X[half:], f.keys[half:], store=store2, offset=half)
        for name in FIELDS:
            np.testing.assert_array_equal(np.concatenate([first[name], second[name]]),
                                          ref[name], err_msg=name)
        assert len(store2) == 120
    finally:
        store2.close()


def test_a_bad_key_record_raises_a_state_error_naming_the_key(opener: Opener) -> None:
    open_store, corrupt = opener
    with open_store() as store:
        det = KeyedDetector(warmup=10)
        det.process(np.zeros((20, 2)) + np.arange(20)[:, None], ["a", "pump-7"] * 10)
        checkpoint(det, store)
    corrupt("pump-7")
    with open_store() as store:
        assert len(store.get_many(["a"])) == 1
        with pytest.raises(StateError, match=r"'pump-7'.*not a streamem key record"):
            store.get_many(["a", "pump-7"])
        det2, _ = restore(store)
        with pytest.raises(StateError, match="'pump-7'"):
            det2.process(np.zeros((1, 2)), ["pump-7"])
