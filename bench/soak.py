"""Memory soak: RSS of a process running ``Detector.process`` on a steady stream.

Question: does the resident memory of the library stay flat over minutes of streaming?
(The daemon's soak comes later, with the daemon.)

Run: ``python -m bench.soak [--minutes M]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np

from bench.common import REPO, Section, machine_lines, md_table, one_core
from streamem.evaluation.scenarios import null_stream

BATCH = 256


def stream(minutes: float) -> dict[str, object]:
    """Child side: stream for ``minutes``, sampling RSS once a second."""
    import psutil  # type: ignore[import-untyped]

    import streamem

    proc = psutil.Process()
    X = null_stream(n=200_000, d=10, seed=3).X  # cycled; the model keeps learning
    samples: list[tuple[float, int, float]] = []  # (seconds, events, RSS MiB)
    with one_core() as pinned, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = streamem.Detector(alert_rate=1e-3, warmup=1000, random_state=0)
        t0 = time.perf_counter()
        next_sample, events, pos = 0.0, 0, 0
        while True:
            now = time.perf_counter() - t0
            if now >= next_sample:
                samples.append((now, events, proc.memory_info().rss / 2**20))
                next_sample += 1.0
            if now >= minutes * 60:
                break
            if pos + BATCH > len(X):
                pos = 0
            det.process(X[pos : pos + BATCH])
            pos += BATCH
            events += BATCH
    return {"pinned": pinned, "samples": samples}


def measure(minutes: float) -> Section:
    """Run the stream in a fresh child process (clean RSS) and build the section."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--child", "--minutes", str(minutes)],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(REPO),
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    pinned = str(child["pinned"])
    samples = [tuple(x) for x in child["samples"]]
    secs = np.array([s[0] for s in samples])
    rss = np.array([s[2] for s in samples])
    settled = secs >= min(10.0, secs[-1] / 2)  # ignore the first seconds (allocations settle)
    slope = float(np.polyfit(secs[settled], rss[settled], 1)[0]) * 60 if settled.sum() > 2 else 0.0
    flat = abs(slope) < 1.0
    pick = np.unique(np.linspace(0, len(samples) - 1, 8).astype(int))
    table = md_table(
        ["elapsed s", "events", "RSS MiB"],
        [[f"{samples[i][0]:.0f}", f"{samples[i][1]:,}", f"{samples[i][2]:.1f}"] for i in pick],
    )
    cmd = f"python -m bench.soak --minutes {minutes:g}"
    body = f"""{machine_lines(cmd, pinned)}
**Setup.** A fresh child process (nothing else loaded) runs `Detector(alert_rate=1e-3)`
on a d=10 stationary stream in batches of {BATCH} for {minutes:g} min
({samples[-1][1]:,} events) and samples its RSS (psutil) every second.

**Result.** RSS {rss[0]:.1f} MiB at the start, {rss.max():.1f} MiB peak, {rss[-1]:.1f} MiB
at the end; fitted slope after the first seconds: {slope:+.2f} MiB/min —
**{"flat" if flat else "growing"}** (flat = |slope| < 1 MiB/min).

{table}"""
    facts = {f"RSS over {minutes:g} min of streaming": f"{slope:+.2f} MiB/min ({rss[-1]:.0f} MiB)"}
    return Section("soak", "Memory soak (library)", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=1.0, help="how long to stream")
    p.add_argument("--quick", action="store_true", help="10 seconds, scratch output")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(stream(args.minutes)))
        raise SystemExit(0)
    sec = measure(0.17 if args.quick else args.minutes)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
