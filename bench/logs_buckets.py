"""Log buckets: parse + aggregate throughput, and anomalies found in bucketed logs.

Questions:

1. How many nginx lines per CPU second go from raw bytes to closed buckets (``nginx``
   preset, then :class:`streamem.aggregate.Aggregator` with the issue's features)? How
   many JSON log lines (one ``orjson.loads`` over the batch, as the JSON event path does)?
2. A 40-minute synthetic access log with a 2-minute 5xx burst and a 2-minute silence,
   bucketed and scored by ``streamem.Detector()`` at its default settings: are both
   alarmed, and how many other buckets are?
3. Does the brute-force episode of Loghub's OpenSSH 2k sample (09:11-09:20) raise an
   anomaly when its per-minute buckets are scored the same way?

Run: ``python -m bench.logs_buckets [--quick]`` (also part of ``python -m bench.logs``).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.common import fmt_rate, md_table
from streamem import Detector
from streamem.aggregate import Aggregator, Buckets, FeatureSpec
from streamem.parsing import PRESETS

ISSUE_FEATURES = [
    FeatureSpec("requests", "count"),
    FeatureSpec("errors_5xx", "count", where="status >= 500"),
    FeatureSpec("p95_s", "quantile", field="request_time", q=0.95),
    FeatureSpec("clients", "distinct_count", field="remote_addr"),
    FeatureSpec("bytes", "sum", field="body_bytes_sent"),
    FeatureSpec("methods", "count_by", field="request_method", top=4),
]
T0 = 1_767_348_000  # 2026-01-02 10:00 UTC
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
          "curl/8.5.0", "Go-http-client/1.1"]


def access_log(minutes: int = 40, rate: float = 20.0, burst: tuple[int, int] = (20, 22),
               silence: tuple[int, int] = (30, 32), seed: int = 0) -> list[bytes]:
    """nginx combined lines (+ ``$request_time``) at ``rate`` per second: 1 % 5xx, 40 % in
    the ``burst`` minutes, none at all in the ``silence`` minutes."""
    rng = random.Random(seed)
    out: list[bytes] = []
    t = float(T0)
    end = T0 + minutes * 60
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        minute = (t - T0) / 60
        if silence[0] <= minute < silence[1]:
            continue
        p5 = 0.4 if burst[0] <= minute < burst[1] else 0.01
        status = rng.choice([500, 502, 503]) if rng.random() < p5 else \
            rng.choice([200] * 30 + [301, 304, 404])
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(int(t)))
        out.append(
            f'10.0.{rng.randrange(4)}.{rng.randrange(1, 200)} - - [{stamp}] '
            f'"{rng.choice(["GET"] * 8 + ["POST", "PUT"])} /api/v1/items/{rng.randrange(900)}'
            f' HTTP/1.1" {status} {rng.randrange(200, 9000)} "-" "{rng.choice(AGENTS)}" '
            f'{rng.lognormvariate(-3, 0.5):.3f}'.encode())


def json_lines(lines: list[bytes]) -> list[bytes]:
    """The same requests as JSON log lines (epoch-second ``ts``)."""
    recs = PRESETS["nginx"].parse(lines)
    return [orjson.dumps({"ts": r["time_local"], "remote_addr": r["remote_addr"],
                          "request_method": r["request_method"], "status": r["status"],
                          "body_bytes_sent": r["body_bytes_sent"],
                          "request_time": r["request_time"]}) for r in recs
            if isinstance(r, dict)]


def _aggregate_nginx(batches: list[list[bytes]]) -> int:
    fmt, agg = PRESETS["nginx"], Aggregator(ISSUE_FEATURES, 60, allowed_lateness=30)
    n = 0
    for b in batches:
        recs: list[Any] = [r for r in fmt.parse(b) if isinstance(r, dict)]
        agg.add(recs, [r["time_local"] for r in recs], b)
        n += len(b)
    agg.flush()
    return n


def _aggregate_nginx_columns(batches: list[list[bytes]]) -> int:
    """The same as :func:`_aggregate_nginx`, the fields as columns (no dict per line)."""
    fmt, agg = PRESETS["nginx"], Aggregator(ISSUE_FEATURES, 60, allowed_lateness=30)
    fields = [*agg._fields, "time_local"]
    n = 0
    for b in batches:
        cols = fmt.columns(b, fields)
        if cols is None:  # a line that does not match: the record path says which
            recs: list[Any] = [r for r in fmt.parse(b) if isinstance(r, dict)]
            agg.add(recs, [r["time_local"] for r in recs], b)
        else:
            agg.add_columns(cols, cols["time_local"], b)
        n += len(b)
    agg.flush()
    return n


def _aggregate_json(batches: list[list[bytes]]) -> int:
    agg = Aggregator(ISSUE_FEATURES, 60, allowed_lateness=30)
    n = 0
    for b in batches:
        recs = orjson.loads(b"[" + b",".join(b) + b"]")
        agg.add(recs, [r["ts"] for r in recs], b)
        n += len(b)
    agg.flush()
    return n


def _parse_only(batches: list[list[bytes]]) -> int:
    fmt = PRESETS["nginx"]
    for b in batches:
        fmt.parse(b)
    return sum(map(len, batches))


def throughput(quick: bool) -> tuple[list[list[str]], dict[str, str]]:
    """Rows and facts of question 1 (median of repeats, lines per CPU second)."""
    from bench.logs import _rate

    lines = access_log(minutes=4 if quick else 20, rate=200.0)
    js = json_lines(lines)
    size = 2048
    nb = [lines[i:i + size] for i in range(0, len(lines), size)]
    jb = [js[i:i + size] for i in range(0, len(js), size)]
    reps = 3 if quick else 5
    r_parse = _rate(lambda: _parse_only(nb), reps)
    r_nginx = _rate(lambda: _aggregate_nginx(nb), reps)
    r_cols = _rate(lambda: _aggregate_nginx_columns(nb), reps)
    r_json = _rate(lambda: _aggregate_json(jb), reps)
    feats = ", ".join(f"{f.fn}" + (f"[{f.where}]" if f.where else "") for f in ISSUE_FEATURES)
    rows = [["`nginx` preset alone (the same lines)", f"{len(lines):,} lines", fmt_rate(r_parse)],
            ["`nginx` lines -> closed 1m buckets", f"{len(lines):,} lines; {feats}",
             fmt_rate(r_nginx)],
            ["`nginx` lines -> closed 1m buckets, fields as columns (no dict per line)",
             f"{len(lines):,} lines; the same features", fmt_rate(r_cols)],
            ["JSON log lines -> closed 1m buckets", f"{len(js):,} lines; the same features",
             fmt_rate(r_json)]]
    facts = {"nginx lines parsed + aggregated (one core)": f"{fmt_rate(r_nginx)} "
             "(target ≥ 200k/s)",
             "nginx lines parsed + aggregated as columns (one core)": f"{fmt_rate(r_cols)} "
             "(target ≥ 200k/s)",
             "JSON log lines parsed + aggregated (one core)": f"{fmt_rate(r_json)} "
             "(target ≥ 300k/s)"}
    return rows, facts


def _windows(b: Buckets, flagged: np.ndarray, windows: dict[str, tuple[float, float]]
             ) -> dict[str, int]:
    hit = {name: 0 for name in windows}
    other = 0
    for i in np.flatnonzero(flagged).tolist():
        names = [n for n, (lo, hi) in windows.items() if b.start[i] < hi and b.end[i] > lo]
        for n in names:
            hit[n] += 1
        other += not names
    return {**hit, "other": other}


def scenario(span: float = 10.0) -> tuple[list[list[str]], dict[str, str]]:
    """Question 2: the synthetic access log, ``span``-second buckets, Detector defaults."""
    lines = access_log()
    recs = [r for r in PRESETS["nginx"].parse(lines) if isinstance(r, dict)]
    agg = Aggregator(ISSUE_FEATURES[:5], span, allowed_lateness=5)
    out, rej = agg.add(recs, [r["time_local"] for r in recs], lines)
    b = Buckets.concat([out, agg.flush()])
    res = Detector(random_state=0).process(b.X)
    windows = {"5xx burst": (T0 + 20 * 60.0, T0 + 22 * 60.0),
               "silence": (T0 + 30 * 60.0, T0 + 32 * 60.0)}
    hits = _windows(b, res.is_anomaly, windows)
    first = {n: next((float(b.start[i] - lo) for i in np.flatnonzero(res.is_anomaly)
                      if lo <= b.start[i] < hi), math.nan) for n, (lo, hi) in windows.items()}
    ok = hits["5xx burst"] > 0 and hits["silence"] > 0 and hits["other"] <= 3
    rows = [[f"synthetic access log, 40 min, {len(lines):,} lines, {len(b)} buckets of "
             f"{span:g}s", f"{hits['5xx burst']} (first {first['5xx burst']:.0f}s in)",
             f"{hits['silence']} (first {first['silence']:.0f}s in)", f"{hits['other']}",
             "yes" if ok else "**no**"]]
    facts = {"40-min access log: 5xx burst / silence alarmed, other anomalous buckets":
             f"{hits['5xx burst']} / {hits['silence']} buckets, {hits['other']} other "
             f"({'meets' if ok else 'misses'} the target: both, ≤ 3 other)"}
    assert not rej
    return rows, facts


def openssh(loghub: Path) -> tuple[list[list[str]], dict[str, str]]:
    """Question 3: OpenSSH 2k sample in 1-minute buckets (count and distinct templates)."""
    from streamem.parsing.templates import TemplateMiner

    raw = (loghub / "OpenSSH" / "OpenSSH_2k.log").read_bytes().split(b"\n")
    lines = [ln for ln in raw if ln]
    recs = [r for r in PRESETS["syslog"].parse(lines) if isinstance(r, dict)]
    TemplateMiner("message").annotate(recs)
    feats = [FeatureSpec("lines", "count"),
             FeatureSpec("templates", "distinct_count", field="template")]
    agg = Aggregator(feats, 60, allowed_lateness=60)
    out, rej = agg.add(recs, [r["timestamp"] for r in recs], lines)
    b = Buckets.concat([out, agg.flush()])
    res = Detector(random_state=0).process(b.X)
    day = math.floor(b.start[0] / 86400) * 86400
    windows = {"episode": (day + 9 * 3600 + 11 * 60, day + 9 * 3600 + 20 * 60),
               "second": (day + 10 * 3600 + 54 * 60, day + 11 * 3600 + 5 * 60)}
    hits = _windows(b, res.is_anomaly, windows)
    big = int(((b.X[:, 0] >= 20) & res.is_anomaly).sum()) - hits["episode"] - hits["second"]
    rows = [[f"Loghub OpenSSH 2k, {len(recs):,} lines, {len(b)} buckets of 1 min",
             f"{hits['episode']} of 9", f"{hits['second']} of 11",
             f"{hits['other']} ({big} with ≥ 20 lines)",
             "yes" if hits["episode"] else "**no**"]]
    facts = {"OpenSSH brute-force episode (09:11-09:20) raises an anomaly":
             f"{'yes' if hits['episode'] else 'no'} ({hits['episode']} of its 9 buckets; "
             f"the 10:54-11:04 episode {hits['second']} of 11; {hits['other']} other "
             "buckets flagged)"}
    assert not rej
    return rows, facts


def measure(quick: bool, loghub: Path) -> tuple[str, dict[str, str]]:
    """The markdown body part and the facts of this module."""
    t_rows, facts = throughput(quick)
    s_rows, s_facts = scenario()
    o_rows, o_facts = openssh(loghub)
    facts |= s_facts | o_facts
    body = f"""
**Buckets: speed.** Synthetic nginx combined lines at 200 requests/s, batches of 2,048,
timestamps from the preset; the JSON rows decode each batch with one `orjson.loads` (the
JSON event path's fast case). Features as in the issue's example.

{md_table(["what", "input", "rate (per CPU second)"], t_rows)}
**Buckets: anomalies** (`streamem.Detector(random_state=0)`, every other setting default, on
the bucket vectors: requests, errors_5xx, p95 request time, distinct clients, bytes;
`emit_empty`). 10-second buckets: with 1-minute ones a 40-minute log has 40 buckets, fewer
than the detector buffers before it scores (31) plus a useful warm-up.

{md_table(["stream", "5xx burst: flagged buckets", "silence: flagged buckets",
           "other flagged buckets", "target met"], s_rows)}
OpenSSH (Loghub, `syslog` preset, templates mined from `message`; buckets of 1 minute with
the line count and the distinct templates). The sample is of a host under constant attack:
besides the 09:11-09:19 episode it holds a second one at 10:54-11:04 and shorter bursts
(07:28, 74 lines; 08:24-08:26); the "other" column counts every flagged bucket outside both
episodes, bursts included.

{md_table(["stream", "09:11-09:19 flagged", "10:54-11:04 flagged", "other flagged",
           "raised"], o_rows)}
"""
    return body, facts


def main(argv: list[str] | None = None) -> None:
    from bench.logs import DEFAULT_LOGHUB

    p = argparse.ArgumentParser(prog="python -m bench.logs_buckets", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--loghub", type=Path, default=DEFAULT_LOGHUB)
    args = p.parse_args(argv)
    body, facts = measure(args.quick, args.loghub)
    print(body)
    for k, v in facts.items():
        print(f"- {k}: {v}")


if __name__ == "__main__":
    main()
