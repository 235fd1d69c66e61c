"""The bench's anomaly claims on bucketed logs hold (bench/logs_buckets.py)."""

from __future__ import annotations

import importlib

from testkit.logs import loghub_dir


def test_synthetic_access_log_burst_and_silence_are_alarmed_with_few_others() -> None:
    bench = importlib.import_module("bench.logs_buckets")
    rows, _ = bench.scenario()
    burst, silence, other = (int(rows[0][i].split()[0]) for i in (1, 2, 3))
    assert burst > 0 and silence > 0 and other <= 3, rows


def test_openssh_brute_force_episode_raises_an_anomaly() -> None:
    bench = importlib.import_module("bench.logs_buckets")
    rows, _ = bench.openssh(loghub_dir())
    assert int(rows[0][1].split()[0]) >= 1, rows


def test_a_silent_stretch_is_zero_filled_buckets() -> None:
    bench = importlib.import_module("bench.logs_buckets")
    from streamem.aggregate import Aggregator, Buckets
    from streamem.parsing import PRESETS

    lines = bench.access_log(minutes=6, rate=5.0, burst=(0, 0), silence=(2, 4))
    recs = [r for r in PRESETS["nginx"].parse(lines) if isinstance(r, dict)]
    agg = Aggregator(bench.ISSUE_FEATURES, 60)
    out, rej = agg.add(recs, [r["time_local"] for r in recs], lines)
    b = Buckets.concat([out, agg.flush()])
    assert rej == [] and b.X[:, 0].tolist()[2:4] == [0.0, 0.0] and len(b) == 6
    assert all(len(s) == 3 for i, s in enumerate(b.samples) if i not in (2, 3))
