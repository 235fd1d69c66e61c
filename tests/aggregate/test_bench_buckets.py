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


def test_the_docs_walk_through_prints_the_burst_and_the_silence(capsys) -> None:
    import json
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "nginx_buckets.py"
    runpy.run_path(str(example), run_name="__main__")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 24  # docs/logs.md: 12 burst buckets + 12 silent ones
    burst = [r for r in records if r["events"] > 0]
    assert len(burst) == 12 and burst[0]["top_features"][0]["name"] == "errors_5xx"
    assert len(burst[0]["samples"]) == 3 and burst[0]["bucket_end"] - burst[0]["bucket_start"] == 10
    assert all(r["top_features"][0]["name"] == "clients" for r in records if not r["events"])
