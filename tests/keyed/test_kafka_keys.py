"""The Kafka key store under kill -9: a writer killed in the middle of a checkpoint (inside
its transaction) or at a random moment of a checkpoint loop; the restored positions never
run ahead of the key states, so a restored detector continues bit for bit."""

from __future__ import annotations

import importlib
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import streamem
from streamem.evaluation.fleet import fleet
from streamem.scoring.keyed import KeyedDetector
from streamem.state.kafka_keys import META_KEY, KafkaKeyStore
from streamem.state.keys import checkpoint, restore

kafka_support = importlib.import_module("testkit.broker")
pytestmark = pytest.mark.kafka

B = 128
FIELDS = ("scores", "surprise", "threshold", "severity", "is_anomaly", "learned", "warming_up")
PARAMS = {"warmup": 400, "max_keys_in_memory": 100, "random_state": 0}

WRITER = textwrap.dedent("""
    import sys, time
    from streamem.evaluation.fleet import fleet
    from streamem.scoring.keyed import KeyedDetector
    from streamem.state.kafka_keys import KafkaKeyStore
    from streamem.state.keys import checkpoint
    bootstrap, topic, mode = sys.argv[1:4]
    f = fleet(120, 30, 4, seed=7)
    store = KafkaKeyStore(bootstrap, topic)
    det = KeyedDetector(warmup=400, max_keys_in_memory=100, random_state=0, store=store)
    B = 128
    for j, i in enumerate(range(0, len(f.X), B)):
        det.process(f.X[i:i + B], f.keys[i:i + B])
        if mode == "mid" and j == 11:
            send, sent = store._producer.send, []
            def stalling_send(*args, **kwargs):
                sent.append(send(*args, **kwargs))
                if len(sent) == 30:   # inside the transaction, meta record not yet sent
                    store._producer.flush()
                    print("mid", flush=True)
                    time.sleep(120)
                return sent[-1]
            store._producer.send = stalling_send
        if mode == "loop" or j % 4 == 3:
            checkpoint(det, store, f"offset={min(i + B, len(f.X))}".encode())
            print(f"checkpoint {i + B}", flush=True)
    print("done", flush=True)
    time.sleep(120)
""")


def _reference() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    f = fleet(120, 30, 4, seed=7)
    det = KeyedDetector(**PARAMS)
    out: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(f.X), B):
        r = det.process(f.X[i:i + B], f.keys[i:i + B])
        for name in FIELDS:
            out.setdefault(name, []).append(getattr(r, name))
    return f.X, f.keys, {k: np.concatenate(v) for k, v in out.items()}


def _kill_writer(bootstrap: str, topic: str, mode: str, after: str, delay: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(streamem.__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, bootstrap, topic, mode],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline().strip()
            assert line and line != "done", f"writer ended before {after!r}"
            if line == after:
                break
        if delay:
            import time

            time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _continue_and_compare(bootstrap: str, topic: str) -> int:
    X, keys, ref = _reference()
    with KafkaKeyStore(bootstrap, topic) as store:
        det, positions = restore(store)
        assert positions is not None
        start = int(positions.decode().removeprefix("offset="))
        assert det.n_events_ == start   # the meta matches its positions
        assert start % B == 0 or start == len(X)
        out: dict[str, list[np.ndarray]] = {name: [ref[name][:0]] for name in FIELDS}
        for i in range(start, len(X), B):
            r = det.process(X[i:i + B], keys[i:i + B])
            for name in FIELDS:
                out.setdefault(name, []).append(getattr(r, name))
        for name in FIELDS:
            np.testing.assert_array_equal(np.concatenate(out[name]), ref[name][start:],
                                          err_msg=name)
        # the restorer writes the next checkpoint (fencing the dead writer) and it is read back
        checkpoint(det, store, f"offset={len(X)}".encode())
    with KafkaKeyStore(bootstrap, topic) as again:
        assert again.read_meta()[1] == f"offset={len(X)}".encode()
        assert len(again) == 120
    return start


def _log_after_last_meta(bootstrap: str, topic: str) -> int:
    """Key records in the raw log (read_uncommitted) after the last meta record."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        after = 0
        while consumer.position(tp) < end:
            for batch in consumer.poll(timeout_ms=500).values():
                for rec in batch:
                    after = 0 if rec.key == META_KEY else after + 1
    finally:
        consumer.close()
    return after


def test_kill_9_inside_a_checkpoint_transaction_restores_the_previous_checkpoint() -> None:
    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("keys-kill-mid")
    _kill_writer(bootstrap, topic, "mid", "mid", 0.0)
    assert _log_after_last_meta(bootstrap, topic) >= 30   # the unfinished checkpoint is there
    assert _continue_and_compare(bootstrap, topic) == 8 * B   # the one before: j == 7


def test_kill_9_at_a_random_moment_of_a_checkpoint_loop_resumes_bit_for_bit() -> None:
    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("keys-kill-loop")
    rng = random.Random(os.getpid())
    _kill_writer(bootstrap, topic, "loop", "checkpoint 512", rng.uniform(0.0, 0.2))
    assert _continue_and_compare(bootstrap, topic) >= 512


def test_the_store_speaks_sasl_and_its_errors_name_the_topic_and_the_fix() -> None:
    from streamem.errors import StateError
    from streamem.kafka.settings import KafkaSecurity

    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("keys-sasl")
    plain = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "streamem", "streamem-secret")
    det = KeyedDetector(warmup=10)
    det.process(np.zeros((20, 2)) + np.arange(20)[:, None], ["a", "b"] * 10)
    with KafkaKeyStore(kafka_support.SASL_BOOTSTRAP, topic, security=plain) as store:
        assert checkpoint(det, store, b"p") == 2
    with KafkaKeyStore(bootstrap, topic) as store:   # the same topic over PLAINTEXT
        assert store.read_meta()[1] == b"p" and sorted(store.get_many(["a", "b"])) == ["a", "b"]
    # a meta record that is not one (another application's topic) is refused
    kafka_support.produce(bootstrap, topic, [b"{not ours}"], key=META_KEY)
    with KafkaKeyStore(bootstrap, topic) as store, pytest.raises(
            StateError, match=rf"meta record at offset \d+ of topic '{topic}'.*new checkpoint"):
        store.read_meta()
    store = KafkaKeyStore(bootstrap, topic)
    store.close()
    with pytest.raises(StateError, match="is closed; open a new store"):
        store.get_many(["a"])
    with KafkaKeyStore("127.0.0.1:9", topic, timeout=2.0) as down, pytest.raises(
            StateError, match=f"key-state topic '{topic}'.*brokers are up"):
        down.read_meta()
    det.process(np.zeros((2, 2)), ["a", "b"])   # two dirty keys
    with pytest.raises(StateError, match="would hold 2 keys, over max_keys=1"), KafkaKeyStore(
            bootstrap, kafka_support.unique_name("keys-max"), max_keys=1) as small:
        checkpoint(det, small)


def test_records_of_an_aborted_checkpoint_are_not_read_back() -> None:
    bootstrap = kafka_support.ensure_broker()
    topic = kafka_support.unique_name("keys-abort")
    det = KeyedDetector(warmup=10)
    det.process(np.zeros((20, 2)) + np.arange(20)[:, None], ["a", "b"] * 10)
    with KafkaKeyStore(bootstrap, topic) as store:
        checkpoint(det, store, b"first")
        kept = store.get_many(["a", "b"])
        producer = store._writer()
        producer.begin_transaction()
        producer.send(topic, key=b"a", value=b"\x00" * 8 + b"aborted")
        producer.send(topic, key=META_KEY, value=b"aborted")
        producer.flush()
        producer.abort_transaction()
    assert _log_after_last_meta(bootstrap, topic) == 0   # the aborted meta is in the log
    with KafkaKeyStore(bootstrap, topic) as again:
        assert again.get_many(["a", "b"]) == kept and again.read_meta()[1] == b"first"
