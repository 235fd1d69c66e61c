"""The CheckpointStore contract, run against every store implementation.

To add an implementation, add an ``_open_<name>`` factory and a ``pytest.param`` to
``STORES``. A factory takes the pytest ``request`` and returns ``open_store()``: a callable that
opens a *new* store instance on the *same* location each time it is called (so the suite can
check that what one instance saved, the next one loads).

The Kafka store runs against the real test broker (``scripts/kafka-broker``): its factory calls
``testkit.broker.ensure_broker()``, which fails under CI=true and skips elsewhere when the broker
cannot run, and uses a fresh topic per test (the store creates it compacted).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from streamem.errors import StateError
from streamem.state.base import CheckpointStore, Snapshot
from streamem.state.directory import DirectoryCheckpointStore

kafka_support = importlib.import_module("testkit.broker")

OpenStore = Callable[[], Any]


def _open_directory(request: pytest.FixtureRequest) -> OpenStore:
    path = request.getfixturevalue("tmp_path") / "state"
    return lambda: DirectoryCheckpointStore(path, keep=5)


def _open_kafka(request: pytest.FixtureRequest) -> OpenStore:
    from streamem.state.kafka_store import KafkaCheckpointStore

    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("state-contract")
    return lambda: KafkaCheckpointStore(bootstrap, topic, timeout=30.0)


STORES: list[Any] = [
    pytest.param(_open_directory, id="directory"),
    pytest.param(_open_kafka, id="kafka", marks=pytest.mark.kafka),
]


@pytest.fixture(params=STORES)
def open_store(request: pytest.FixtureRequest) -> OpenStore:
    factory: Callable[[pytest.FixtureRequest], OpenStore] = request.param
    return factory(request)


def _detector(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rng.normal(size=seed)
    return {
        "weights": rng.dirichlet(np.ones(3)),
        "means": rng.normal(size=(3, 4)),
        "covariances": np.stack([np.eye(4) * (k + 1) for k in range(3)]),
        "rng": rng.bit_generator.state,  # holds 128-bit ints
        "threshold": {"z": 4.25, "peaks": np.array([1.0, np.nan, np.inf]), "n": 7},
        "scaler": {"center": np.zeros(4, dtype=np.float32), "fitted": True, "names": ("a", "b")},
        "per_partition": {0: 5, 12: -1},
    }


def _assert_same(a: Snapshot, b: Snapshot) -> None:
    assert (a.key, a.sequence, a.created_at, a.schema_version) == (
        b.key,
        b.sequence,
        b.created_at,
        b.schema_version,
    )
    assert a.positions == b.positions and all(isinstance(p, int) for p in b.positions)
    assert a.counters == b.counters
    _same_tree(a.detector, b.detector)


def _same_tree(x: Any, y: Any) -> None:
    assert type(x) is type(y)
    if isinstance(x, np.ndarray):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()
    elif isinstance(x, dict):
        assert list(x) == list(y)
        for k in x:
            _same_tree(x[k], y[k])
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            _same_tree(u, v)
    else:
        assert x == y


def _snap(seq: int, key: str = "global") -> Snapshot:
    return Snapshot(key, seq, 1_700_000_000.0 + seq, _detector(seq), {0: 100 * seq, 7: seq})


def test_implements_the_protocol_and_starts_empty(open_store: OpenStore) -> None:
    with open_store() as store:
        assert isinstance(store, CheckpointStore)
        assert store.load_latest("global") is None
        assert store.keys() == []


def test_round_trip_is_exact_across_instances(open_store: OpenStore) -> None:
    saved = Snapshot("global", 1, 123.5, _detector(1), {0: 10, 3: 2**40}, {"events": 9})
    with open_store() as store:
        store.save(saved)
        _assert_same(saved, store.load_latest("global"))
    with open_store() as again:
        loaded = again.load_latest("global")
    assert loaded is not None
    _assert_same(saved, loaded)
    rng = np.random.default_rng()
    rng.bit_generator.state = loaded.detector["rng"]
    expected = np.random.default_rng(1)  # replay what _detector(1) drew before saving
    expected.normal(size=1), expected.dirichlet(np.ones(3)), expected.normal(size=(3, 4))
    assert rng.random() == expected.random()


def test_latest_is_the_newest_save(open_store: OpenStore) -> None:
    with open_store() as store:
        for seq in range(1, 8):
            store.save(_snap(seq))
            latest = store.load_latest()
            assert latest is not None and latest.sequence == seq
    with open_store() as again:
        latest = again.load_latest()
    assert latest is not None
    _assert_same(_snap(7), latest)


def test_keys_are_independent(open_store: OpenStore) -> None:
    with open_store() as store:
        store.save(_snap(3, key="p0"))
        store.save(_snap(1, key="p1"))
        store.save(_snap(4, key="p0"))
        assert sorted(store.keys()) == ["p0", "p1"]
        p0, p1 = store.load_latest("p0"), store.load_latest("p1")
        assert store.load_latest("global") is None
    assert p0 is not None and p1 is not None
    _assert_same(_snap(4, key="p0"), p0)
    _assert_same(_snap(1, key="p1"), p1)


def test_the_last_save_wins_even_with_a_lower_sequence(open_store: OpenStore) -> None:
    """After a rollback (restore 2, continue from 3) the new timeline is what loads."""
    with open_store() as store:
        for seq in (1, 2, 3, 4):
            store.save(_snap(seq))
        store.save(_snap(3))
    with open_store() as again:
        latest = again.load_latest()
    assert latest is not None
    _assert_same(_snap(3), latest)


def test_close_is_idempotent_and_final(open_store: OpenStore) -> None:
    store = open_store()
    store.save(_snap(1))
    store.close()
    store.close()
    with pytest.raises(StateError):
        store.save(_snap(2))
    with open_store() as again:
        latest = again.load_latest()
    assert latest is not None and latest.sequence == 1
