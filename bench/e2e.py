"""End-to-end rows: the daemon over a file (measured) and over Kafka (hook, not measured yet).

:func:`measure_file` runs the real ``streamem run`` over a JSON-lines file.
:func:`measure_kafka` is the hook for the Kafka row: fill it in once the broker script and
the Kafka source are settled, and ``python -m bench`` will pick it up.

Run: ``python -m bench.e2e``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Section, machine_lines, md_table
from streamem.evaluation.scenarios import null_stream


@dataclass(frozen=True)
class E2EResult:
    """One end-to-end measurement: sustained events/s and, where defined, latency."""

    events_per_second: float
    p50_latency_ms: float | None
    p99_latency_ms: float | None
    events: int
    notes: str = ""


CONFIG = """source:
  type: file
  path: events.jsonl
  format: jsonl
  follow: false
fields:
  features: [{features}]
  timestamp: ts
  key: sensor
batch:
  max_events: 1024
model:
  n_components: 8
  covariance_type: full
  warmup: 1000
  random_state: 0
detector:
  alert_rate: 0.001
sinks:
  - type: file
    name: anomalies-file
    path: anomalies.jsonl
dead_letter:
  type: file
  path: dead-letter.jsonl
checkpoint:
  dir: state
metrics:
  enabled: false
logging:
  level: WARNING
"""


def _write_events(folder: Path, n: int, d: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    X = null_stream(n=n, d=d, seed=4).X
    with (folder / "events.jsonl").open("w") as fh:
        for i, row in enumerate(X):
            ev: dict[str, object] = {"ts": 1.7e9 + i * 0.01, "sensor": "s1"}
            ev.update({f"f{j}": round(float(v), 6) for j, v in enumerate(row)})
            fh.write(json.dumps(ev) + "\n")
    feats = ", ".join(f"f{j}" for j in range(d))
    (folder / "cfg.yaml").write_text(CONFIG.format(features=feats))


def _run_daemon(src: Path, run_dir: Path) -> tuple[float, int]:
    """Wall seconds of one ``streamem run`` over src/events.jsonl, and anomalies written."""
    run_dir.mkdir()
    for name in ("events.jsonl", "cfg.yaml"):
        (run_dir / name).symlink_to(src / name)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "streamem", "run", "-c", "cfg.yaml"],
        cwd=run_dir,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - t
    with (run_dir / "anomalies.jsonl").open() as fh:
        return wall, sum(1 for _ in fh)


def measure_file(quick: bool) -> E2EResult | None:
    """``streamem run`` (the daemon) over a JSON-lines file, start to exit.

    Two files of d=10 events (with a timestamp and a key) are written, one of N events and
    one of N/10; the daemon reads each (file source, ``follow: false``), scores them in
    micro-batches of 1024, writes anomalies to a file sink, checkpoints, and exits at the
    end of the file. The sustained rate is (N − N/10) / (wall(N) − wall(N/10)), which
    removes every fixed cost (interpreter start-up, imports, warm-up fit, final
    checkpoint). Median of 3 runs of each size, each in a fresh folder.
    """
    n, d = (20_000 if quick else 300_000), 10
    small = n // 10
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        _write_events(base / "big", n, d)
        _write_events(base / "small", small, d)
        big_runs = [_run_daemon(base / "big", base / f"big{i}") for i in range(3)]
        small_runs = [_run_daemon(base / "small", base / f"small{i}") for i in range(3)]
    wall_big = statistics.median(w for w, _ in big_runs)
    wall_small = statistics.median(w for w, _ in small_runs)
    rate = (n - small) / max(wall_big - wall_small, 1e-9)
    return E2EResult(
        events_per_second=rate,
        p50_latency_ms=None,
        p99_latency_ms=None,
        events=n,
        notes=(
            f"{n:,} vs {small:,} events, d={d}: wall {wall_big:.2f} s vs {wall_small:.2f} s "
            f"(fixed costs ≈ {wall_small - small / rate:.1f} s); {big_runs[0][1]} anomalies in "
            f"the {n:,}-event run; latency is not defined for a file read at full speed"
        ),
    )


def measure_kafka(quick: bool) -> E2EResult | None:
    """Hook for a Kafka *latency* row (event produced -> verdict on the anomalies topic).

    Kafka throughput is measured by ``bench/kafka.py`` (section "Kafka"); this hook is for
    end-to-end latency at a controlled producer rate, which nobody measures yet. Return
    None until then.
    """
    return None


def measure(quick: bool) -> Section:
    """Build the section from whatever the hooks return."""
    rows = []
    facts: dict[str, str] = {}
    hooks = (("daemon, JSON-lines file", measure_file), ("daemon, Kafka, latency", measure_kafka))
    for name, hook in hooks:
        r = hook(quick)
        if r is None:
            rows.append([name, "not yet measured", "–", "–", "–"])
        else:
            facts[f"{name} (whole daemon, one process)"] = f"{r.events_per_second:,.0f} events/s"
            rows.append(
                [
                    name,
                    f"{r.events_per_second:,.0f}",
                    "–" if r.p50_latency_ms is None else f"{r.p50_latency_ms:.1f}",
                    "–" if r.p99_latency_ms is None else f"{r.p99_latency_ms:.1f}",
                    r.notes or f"{r.events:,} events",
                ]
            )
    cmd = "python -m bench.e2e" + (" --quick" if quick else "")
    table = md_table(["path", "events/s", "p50 latency ms", "p99 latency ms", "notes"], rows)
    pinned = "not CPU-pinned (the daemon is a child process that inherits the BLAS setting)"
    body = f"""{machine_lines(cmd, pinned)}
**File row.** The real daemon (`streamem run`, one process, default settings but K=8,
micro-batches of 1024, file sink, checkpoints, metrics server off) over a JSON-lines file
of d=10 events, from start to exit; the rate is the difference between a long and a
short file, so start-up and warm-up cost cancel out; median of 3 runs of each. It
includes JSON parsing, feature extraction, scoring, sinks and checkpointing, so it is the
number to compare with the library-only throughput above.

**Kafka.** Throughput over the local broker is in the section "Kafka" (`bench/kafka.py`,
needs `scripts/kafka-broker start`). Latency at a controlled producer rate (event produced
→ verdict on the anomalies topic) is **not yet measured**; `bench/e2e.py` has the hook
`measure_kafka` for it.

{table}"""
    return Section("e2e", "End to end (daemon, Kafka)", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    sec = measure(args.quick)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
