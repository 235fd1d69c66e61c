"""End-to-end rows (daemon over a file, and over Kafka): not measured yet.

The daemon (``streamem run``) and the Kafka adapters are written by other engineers. This
module holds the section and one hook per row; fill in :func:`measure_file` and
:func:`measure_kafka` once those parts exist, and ``python -m bench`` will pick them up.

Run: ``python -m bench.e2e``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench.common import Section, machine_lines, md_table


@dataclass(frozen=True)
class E2EResult:
    """One end-to-end measurement: sustained events/s and the end-to-end latency."""

    events_per_second: float
    p50_latency_ms: float
    p99_latency_ms: float
    events: int
    notes: str = ""


def measure_file(quick: bool) -> E2EResult | None:
    """Hook: run the daemon over a JSON-lines file and time it.

    To fill in: write N events with ``streamem.evaluation.scenarios``, start
    ``streamem run`` on a config reading that file and writing anomalies to a file sink,
    wait for the last offset to be checkpointed, and return events/s plus latency
    percentiles (event timestamp -> anomaly written). Return None until then.
    """
    return None


def measure_kafka(quick: bool) -> E2EResult | None:
    """Hook: produce N events to the local test broker (127.0.0.1:19092), run the daemon
    as a consumer-group member, and measure sustained events/s and lag-to-verdict
    latency. Return None until the daemon and the broker script exist."""
    return None


def measure(quick: bool) -> Section:
    """Build the section from whatever the hooks return."""
    rows = []
    for name, hook in (("daemon, JSON-lines file", measure_file), ("daemon, Kafka", measure_kafka)):
        r = hook(quick)
        if r is None:
            rows.append([name, "not yet measured", "–", "–", "–"])
        else:
            rows.append(
                [
                    name,
                    f"{r.events_per_second:,.0f}",
                    f"{r.p50_latency_ms:.1f}",
                    f"{r.p99_latency_ms:.1f}",
                    r.notes or f"{r.events:,} events",
                ]
            )
    cmd = "python -m bench.e2e" + (" --quick" if quick else "")
    table = md_table(["path", "events/s", "p50 latency ms", "p99 latency ms", "notes"], rows)
    body = f"""{machine_lines(cmd, "not pinned (end-to-end runs will use the whole machine)")}
**Not yet measured.** These rows need the daemon and the Kafka broker, which other
engineers are writing; `bench/e2e.py` has one hook per row (`measure_file`,
`measure_kafka`) to fill in. Until then the only throughput figures are those of the
library itself (section "Throughput").

{table}"""
    return Section("e2e", "End to end (daemon, Kafka)", body)


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
