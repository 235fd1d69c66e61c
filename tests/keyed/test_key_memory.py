"""The key-table memory estimate that ``streamem check-config`` prints, against a real
:class:`~streamem.KeyedDetector` holding that many keys."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from streamem.scoring.key_table import key_memory
from streamem.scoring.keyed import KeyedDetector


def _fill(n_keys: int, key_chars: int, capacity: int) -> KeyedDetector:
    rng = np.random.default_rng(0)
    det = KeyedDetector(warmup=200, max_keys_in_memory=capacity, random_state=0)
    keys = np.array([f"host-{i:0{key_chars - 5}d}" for i in range(n_keys)])
    for i in range(0, n_keys, 2048):
        part = keys[i:i + 2048]
        det.process(rng.normal(size=(len(part), 4)), part)
    return det


@pytest.mark.parametrize(("n_keys", "capacity"), [(5000, 100_000), (6000, 4096)])
def test_the_estimate_matches_the_table_a_detector_really_holds(n_keys: int, capacity: int
                                                               ) -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        det = _fill(n_keys, 16, capacity)
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    t = det.table_
    assert t is not None and t.n_keys == min(n_keys, capacity)
    arrays = (t.rec.nbytes + t.dirty.nbytes + t.sorted_keys.nbytes + t.sorted_slots.nbytes
              + t.free.nbytes)
    est = key_memory(4, 2, n_keys, capacity=capacity, key_chars=16)
    assert arrays <= est <= 1.4 * arrays  # an upper bound: the table grows by at most doubling
    # everything the detector allocated (population model, spill of evicted keys, caches)
    # stays within a small multiple of the table estimate
    assert traced <= 3 * est + 4 * 2**20


def test_check_config_prints_the_estimate_for_a_keyed_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {type: stdin}\nfields: {features: [a, b, c, d], key: host}\n"
                   "model: {scope: key, max_keys_in_memory: 20000}\n")
    out = subprocess.run([sys.executable, "-m", "streamem", "check-config", str(cfg),
                          "--keys", "500000", "--key-chars", "40"],
                         capture_output=True, text=True, check=True).stdout
    want = key_memory(4, 2, 500_000, capacity=20_000, key_chars=40)
    assert f"about {want / 2**20:.1f} MiB for 20,000 keys in memory" in out
    assert "max_keys_in_memory=20,000 wait in the key store" in out
    bad = subprocess.run([sys.executable, "-m", "streamem", "check-config", str(cfg),
                          "--keys", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--keys" in bad.stderr
