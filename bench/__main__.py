"""``python -m bench``: run every benchmark and rewrite docs/benchmarks.md.

Options: ``--quick`` (CI, about a minute; writes a scratch file, not the docs),
``--only throughput,null`` (a subset), ``--skab PATH`` (default ../shared/data/skab),
``--loghub PATH`` (default ../shared/data/loghub),
``--adbench PATH`` / ``--nab PATH`` (default ../shared/data/adbench-dev, nab-dev),
``--adbench-cap N`` (events per ADBench set, 50,000; quick 2,000),
``--minutes M`` (memory soak length), ``--out FILE`` (where to write).
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from bench import adbench, e2e, keys, logs, nab, null, scenarios, skab, soak, temporal, throughput
from bench.common import (
    DEFAULT_SKAB,
    ORDER,
    REPO,
    Section,
    default_doc,
    md_table,
    read_facts,
    shared_data,
    sync_readme_table,
    write_section,
)

ALL = ("throughput", "kafka", "adbench", "nab", "skab", "scenarios", "temporal", "null", "e2e",
       "logs", "keys", "soak")


def _broker_up() -> bool:
    """Whether bench.kafka's broker (``STREAMEM_KAFKA_BOOTSTRAP`` / ``_PORT``) answers."""
    from bench.kafka import BOOTSTRAP

    host, _, port = BOOTSTRAP.split(",")[0].rpartition(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def headline(doc: Path) -> Section:
    """The README-ready table of the key numbers of every section now in ``doc``."""
    facts = read_facts(doc)
    rows = [[k, v] for key in ORDER if key in facts for k, v in facts[key].items()]
    body = (
        "Each row comes from its section below, as last written by `python -m bench` (or the\n"
        "section's own script); the date, machine and command are in that section.\n\n"
        + md_table(["what", "measured"], rows)
    )
    return Section("headline", "Headline numbers", body)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short runs for CI (about a minute)")
    p.add_argument("--only", default=",".join(ALL), help=f"comma list of {', '.join(ALL)}")
    p.add_argument("--skab", type=Path, default=DEFAULT_SKAB, help="SKAB data folder")
    p.add_argument("--loghub", type=Path, default=logs.DEFAULT_LOGHUB,
                   help="Loghub 2k samples folder")
    p.add_argument("--adbench", type=Path, default=shared_data("adbench-dev"),
                   help="ADBench dev folder (*.npz)")
    p.add_argument("--adbench-cap", type=int, default=None,
                   help="events per ADBench set (50,000; quick 2,000)")
    p.add_argument("--nab", type=Path, default=shared_data("nab-dev"), help="NAB dev folder")
    p.add_argument("--minutes", type=float, default=None,
                   help="daemon soak minutes (30; quick 0.17)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown file to update (default docs/benchmarks.md; a scratch file with --quick)",
    )
    args = p.parse_args(argv)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(ALL)}")
    minutes = args.minutes if args.minutes is not None else (0.17 if args.quick else 30.0)
    doc = args.out if args.out is not None else default_doc(args.quick)
    done: list[Section] = []
    for name in wanted:
        t = time.perf_counter()
        print(f"== {name} ...", flush=True)
        if name == "throughput":
            sec = throughput.measure(args.quick)
        elif name == "kafka":
            if not _broker_up():
                print("   skipped: no broker (scripts/kafka-broker start; STREAMEM_KAFKA_PORT)")
                continue
            from bench import kafka

            sec, _ = kafka.measure(args.quick)
        elif name == "adbench":
            if not args.adbench.exists():
                print(f"   skipped: no ADBench data at {args.adbench} (pass --adbench PATH)")
                continue
            cap = args.adbench_cap or (2_000 if args.quick else adbench.CAP)
            sec = adbench.measure(args.adbench, cap)
        elif name == "nab":
            if not args.nab.exists():
                print(f"   skipped: no NAB data at {args.nab} (pass --nab PATH)")
                continue
            sec = nab.measure(args.nab, quick=args.quick)
        elif name == "skab":
            if not args.skab.exists():
                print(f"   skipped: no SKAB data at {args.skab} (pass --skab PATH)")
                continue
            sec, _ = skab.measure(args.skab, args.quick)
        elif name == "scenarios":
            sec = scenarios.measure(args.quick)
        elif name == "temporal":
            sec = temporal.measure(args.quick)
        elif name == "null":
            sec = null.measure(args.quick)
        elif name == "e2e":
            sec = e2e.measure(args.quick)
        elif name == "logs":
            if not (args.loghub / "OpenSSH").is_dir():
                print(f"   skipped: no Loghub data at {args.loghub} (pass --loghub PATH)")
                continue
            sec = logs.measure(args.quick, args.loghub)
        elif name == "keys":
            sec = keys.measure(args.quick, args.skab)
        else:
            sec = soak.measure(minutes)
        write_section(sec, doc)
        done.append(sec)
        print(f"   done in {time.perf_counter() - t:.0f} s", flush=True)
    if done:
        head = headline(doc)
        write_section(head, doc)
        print(head.body)
        if not args.quick and doc == default_doc(False):
            table = head.body[head.body.index("| what |"):]
            if sync_readme_table(table, REPO / "README.md"):
                print("README.md headline table updated")
    print(f"written: {doc}")


if __name__ == "__main__":
    main()
