"""Per-key models (issue 14): throughput, memory per key, flat memory under eviction,
checkpoint cost, and quality on a fleet where a global model is blind.

Questions: how many events/s does ``KeyedDetector`` score and learn when every batch spans
thousands of keys; what does an in-memory key cost; does memory stay flat when 10x more keys
than ``max_keys_in_memory`` cycle through; how long does a checkpoint of 10^4 dirty keys
take; and does the keyed model find key-specific anomalies that are normal for the fleet?

Run: ``python -m bench.keys [--quick]`` (also ``python -m bench --only keys``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import DEFAULT_SKAB, Section, fmt_rate, machine_lines, md_table, one_core
from streamem.evaluation.fleet import fleet
from streamem.evaluation.metrics import roc_auc
from streamem.scoring.keyed import KeyedDetector
from streamem.state.keys_sqlite import SqliteKeyStore, checkpoint

BATCH = 4096
D = 4
K = 2


def _rss() -> int:
    """Resident set size of this process, bytes (from /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _feed(det: KeyedDetector, X: np.ndarray, keys: np.ndarray, store: SqliteKeyStore | None
          = None, every: int = 0) -> None:
    for j, i in enumerate(range(0, len(X), BATCH)):
        det.process(X[i:i + BATCH], keys[i:i + BATCH])
        if store is not None and every and j % every == every - 1:
            checkpoint(det, store)


def throughput(n_keys: int, passes: int, repeats: int) -> dict[str, float]:
    """Events/s (wall and CPU) once every key exists; bytes per key (arrays, RSS)."""
    f = fleet(n_keys, 1 + passes * repeats, D, anomaly_rate=0.0, seed=0)
    # pass 0: every key is created (one event each, in random order)
    first = np.sort(np.unique(f.keys, return_index=True)[1])
    rest = np.setdiff1d(np.arange(len(f.keys)), first)
    det = KeyedDetector(n_components=K, warmup=1000, random_state=0)
    rss0 = _rss()
    t = time.perf_counter()
    _feed(det, f.X[first], f.keys[first])
    create = len(first) / (time.perf_counter() - t)
    rss1 = _rss()
    table = det.table_
    assert table is not None
    arrays = (table.rec.nbytes + table.dirty.nbytes + table.sorted_keys.nbytes
              + table.sorted_slots.nbytes + table.free.nbytes)
    walls, cpus = [], []
    chunk = len(rest) // repeats
    for r in range(repeats):
        idx = rest[r * chunk:(r + 1) * chunk]
        w, c = time.perf_counter(), time.process_time()
        _feed(det, f.X[idx], f.keys[idx])
        walls.append(len(idx) / (time.perf_counter() - w))
        cpus.append(len(idx) / (time.process_time() - c))
    return {"create": create, "wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "array_bytes": arrays / det.n_keys_in_memory,
            "rss_bytes": (rss1 - rss0) / det.n_keys_in_memory, "keys": det.n_keys_in_memory}


def flat_memory(n_keys: int, in_memory: int, passes: int, tmp: Path) -> dict[str, Any]:
    """RSS after each pass of ``n_keys`` keys through ``in_memory`` slots, with a checkpoint
    every 4 batches; and the cost of one checkpoint of ``in_memory`` dirty keys."""
    f = fleet(n_keys, passes, D, anomaly_rate=0.0, seed=1)
    rank = np.empty(len(f.keys), dtype=np.int64)   # each row's place in its key's events
    rank[np.argsort(f.keys, kind="stable")] = np.tile(np.arange(passes), n_keys)
    order = np.argsort(rank, kind="stable")
    X, keys = f.X[order], f.keys[order]   # pass p holds every key's p-th event
    store = SqliteKeyStore(tmp / "keys.db")
    det = KeyedDetector(n_components=K, warmup=1000, max_keys_in_memory=in_memory, store=store,
                        random_state=0)
    rss = []
    t = time.perf_counter()
    for p in range(passes):
        sl = slice(p * n_keys, (p + 1) * n_keys)
        _feed(det, X[sl], keys[sl], store, every=4)
        rss.append(_rss())
    rate = len(X) / (time.perf_counter() - t)
    checkpoint(det, store)
    # a checkpoint of in_memory dirty keys: touch each in-memory key once
    mem = det.table_.keys() if det.table_ is not None else np.zeros(0)
    rng = np.random.default_rng(2)
    times, cpu = [], []
    for _ in range(3):
        for i in range(0, len(mem), BATCH):
            part = mem[i:i + BATCH]
            det.process(rng.normal(size=(len(part), D)), part)
        t0, c0 = time.perf_counter(), time.process_time()
        written = checkpoint(det, store)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    counts = det.counters()
    store.close()
    return {"rss": rss, "rate": rate, "written": written, "checkpoint_s": statistics.median(times),
            "checkpoint_cpu_s": statistics.median(cpu),
            "evicted": counts["keys_evicted"], "loaded": counts["keys_loaded"],
            "db_bytes": (tmp / "keys.db").stat().st_size}


def quality(n_keys: int, events: int) -> dict[str, float]:
    """ROC-AUC of the keyed and a global detector on a fleet, and the keyed flag rates."""
    import streamem

    f = fleet(n_keys, events, D, seed=3)
    det = KeyedDetector(n_components=K, warmup=1000, random_state=0)
    glob = streamem.Detector(warmup=2000, random_state=0)
    ks, gs, fl = [], [], []
    for i in range(0, len(f.X), BATCH):
        r = det.process(f.X[i:i + BATCH], f.keys[i:i + BATCH])
        ks.append(r.surprise)
        fl.append(r.is_anomaly)
        gs.append(glob.process(f.X[i:i + BATCH]).surprise)
    live = np.arange(len(f.X)) >= len(f.X) // 5
    y = f.labels[live]
    k = np.concatenate(ks)[live]
    g = np.nan_to_num(np.concatenate(gs)[live])
    flagged = np.concatenate(fl)[live]
    return {"keyed": roc_auc(y, k), "global": roc_auc(y, g), "recall": float(flagged[y].mean()),
            "far": float(flagged[~y].mean()), "anomalies": int(y.sum()), "events": len(y)}


def skab_interleaved(path: Path, prior: float, per_key: int = 8
                     ) -> dict[str, tuple[float, float]]:
    """F1 and false-alarm rate (test rows, pooled) on SKAB: each file alone in its own
    ``KeyedDetector``, and the files interleaved as keys of one (``per_key`` rows of every
    file per batch in both)."""
    from streamem.evaluation.metrics import Confusion, confusion
    from streamem.evaluation.skab import TRAIN_SIZE, load_skab

    files = load_skab(path)
    params = {"warmup": 400, "key_prior_events": prior, "random_state": 0}
    flags_alone, flags_mixed = [], [np.zeros(len(f.X), bool) for f in files]
    for f in files:
        det = KeyedDetector(**params)  # type: ignore[arg-type]
        flags_alone.append(np.concatenate([
            det.process(f.X[i:i + per_key], np.zeros(len(f.X[i:i + per_key]), int)).is_anomaly
            for i in range(0, len(f.X), per_key)]))
    det = KeyedDetector(**params)  # type: ignore[arg-type]
    for t in range(0, max(len(f.X) for f in files), per_key):
        part = [(k, t, min(t + per_key, len(f.X))) for k, f in enumerate(files) if t < len(f.X)]
        X = np.concatenate([files[k].X[a:b] for k, a, b in part])
        keys = np.concatenate([np.full(b - a, k) for k, a, b in part])
        res, o = det.process(X, keys).is_anomaly, 0
        for k, a, b in part:
            flags_mixed[k][a:b] = res[o:o + b - a]
            o += b - a
    out = {}
    for name, flags in (("alone", flags_alone), ("interleaved", flags_mixed)):
        c = Confusion(0, 0, 0, 0)
        for f, fl in zip(files, flags, strict=True):
            c = c + confusion(f.anomaly[TRAIN_SIZE:], fl[TRAIN_SIZE:])
        out[name] = (c.f1, c.false_alarm_rate)
    return out


def measure(quick: bool, skab: Path | None = None) -> Section:
    """All four measurements and the section."""
    n_keys = 30_000 if quick else 100_000
    in_memory = 10_000
    t0 = time.perf_counter()
    with one_core() as pinned, tempfile.TemporaryDirectory() as tmp:
        tp = throughput(n_keys, passes=1 if quick else 2, repeats=3)
        fm = flat_memory(n_keys, in_memory, passes=3 if quick else 5, tmp=Path(tmp))
        q = quality(200 if quick else 1000, 200)
        have = skab is not None and skab.exists()
        sk = {p: skab_interleaved(skab, p) for p in (10.0, 50.0)} if have and skab else None
    elapsed = time.perf_counter() - t0
    mib = [f"{r / 2**20:.0f}" for r in fm["rss"]]
    rows = [
        [f"throughput, {n_keys:,} keys, d={D}, K={K}, batch {BATCH} (CPU time)",
         fmt_rate(tp["cpu"])],
        ["throughput, same (wall clock, shared machine)", fmt_rate(tp["wall"])],
        ["first event of every key (key creation, wall)", fmt_rate(tp["create"])],
        ["memory per in-memory key: arrays", f"{tp['array_bytes']:.0f} B"],
        ["memory per in-memory key: RSS growth (freed memory is reused: a lower bound)",
         f"{tp['rss_bytes']:.0f} B"],
        [f"RSS after each pass, {n_keys:,} keys through {in_memory:,} slots (MiB)",
         " → ".join(mib)],
        ["evicting + loading throughput (wall, checkpoint every 4 batches)",
         fmt_rate(fm["rate"])],
        [f"checkpoint of {fm['written']:,} dirty keys (median of 3: wall / CPU)",
         f"{1e3 * fm['checkpoint_s']:.0f} ms / {1e3 * fm['checkpoint_cpu_s']:.0f} ms"],
        [f"fleet ROC-AUC keyed ({q['anomalies']} anomalies in {q['events']:,} events)",
         f"{q['keyed']:.3f}"],
        ["fleet ROC-AUC global Detector", f"{q['global']:.3f}"],
        ["fleet keyed recall / false-alarm rate (alert_rate 1e-3)",
         f"{q['recall']:.3f} / {q['far']:.1e}"],
    ]
    if sk is not None:
        for prior, r in sk.items():
            rows.append([f"SKAB 34 files, key_prior_events={prior:g}: F1 / FAR, each file alone",
                         "{:.3f} / {:.3f}".format(*r["alone"])])
            rows.append([f"SKAB, key_prior_events={prior:g}: F1 / FAR, interleaved as keys",
                         "{:.3f} / {:.3f}".format(*r["interleaved"])])
    facts = {
        "keyed throughput (1e5 keys, CPU time)" if not quick else "keyed throughput (quick)":
            fmt_rate(tp["cpu"]),
        "keyed memory per key": f"{tp['array_bytes']:.0f} B",
        "keyed fleet ROC-AUC (global)": f"{q['keyed']:.3f} ({q['global']:.3f})",
    }
    cmd = "python -m bench.keys" + (" --quick" if quick else "")
    body = f"""{machine_lines(cmd, pinned)}- run time {elapsed:.0f} s

**Setup.** `streamem.evaluation.fleet.fleet`: every key has its own level and scales
(spread 8, scales 0.5-2) and a key-specific correlation; events are interleaved at random
across keys. `KeyedDetector(n_components={K}, warmup=1000)`, batches of {BATCH}. Throughput
is measured once every key exists (median of 3 chunks); CPU time is reported because the
machine is shared (wall clock is below it then). Flat memory: `max_keys_in_memory` =
10,000, a `SqliteKeyStore` in a temporary directory, a checkpoint every 4 batches; each
pass sends every key one event. Quality: anomalies are another key's normal rows (at least
6 of the key's own scales away), so they are normal for the fleet; the global model is one
`Detector` over all rows. SKAB (when the data is there): `KeyedDetector(warmup=400,
key_prior_events=10 or 50)`, 8 rows of every file per batch; F1/FAR over the test rows (after
the first 400 of each file), pooled.

{md_table(["what", "measured"], rows)}"""
    return Section("keys", "Per-key models (KeyedDetector)", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.keys", description=__doc__)
    p.add_argument("--quick", action="store_true", help="30,000 keys instead of 100,000")
    args = p.parse_args(argv)
    p_skab = DEFAULT_SKAB
    sec = measure(args.quick, p_skab)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
