"""Shared helpers for the benchmark scripts: machine facts, one-core pinning, timing, markdown."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def shared_data(name: str) -> Path:
    """``shared/data/<name>`` in the nearest parent of the repository that has it (a git
    worktree sits one level deeper than the main checkout); ``../shared/data/<name>`` if none.
    """
    for parent in REPO.parents:
        cand = parent / "shared" / "data" / name
        if cand.exists():
            return cand
    return (REPO / ".." / "shared" / "data" / name).resolve()


DEFAULT_SKAB = shared_data("skab")


def default_doc(quick: bool) -> Path:
    """Where results go: docs/benchmarks.md, or a scratch file for --quick runs (so a quick
    CI run never overwrites the documented full-run numbers)."""
    if quick:
        return Path(os.environ.get("TMPDIR", "/tmp")) / "streamem-benchmarks-quick.md"
    return DOC


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform as a fallback)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def blas_info() -> str:
    """The BLAS numpy uses, with its thread count, from threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped]
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return "none found"
    return ", ".join(
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
        f"{i.get('num_threads')} thread(s))"
        for i in libs
    )


def machine_lines(command: str, pinned: str = "one core", timing: bool = True) -> str:
    """The markdown block every section starts with."""
    return (
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}\n"
        f"- BLAS: {blas_info()}\n"
        f"- pinned: {pinned}; BLAS/OpenMP pools limited to 1 thread "
        f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} and threadpoolctl)\n"
        f"- command: `{command}`\n"
        "- the 2-core machine was shared with other jobs while this ran; "
        + ("figures are medians of repeats but can be noisy\n" if timing
           else "times are indicative only (the quality figures do not depend on it)\n")
    )


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """Pin the process to one CPU and limit every BLAS/OpenMP pool to one thread.

    Yields a description of the pinning for the report.
    """
    old = os.sched_getaffinity(0)
    cpu = max(old)
    try:
        os.sched_setaffinity(0, {cpu})
        desc = f"one core (process affinity = CPU {cpu})"
    except OSError:
        desc = "one BLAS thread (setting the CPU affinity failed)"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limiter: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    else:
        limiter = threadpool_limits(limits=1)
    try:
        with limiter:
            yield desc
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, old)


def median_rate(run: Callable[[], int], repeats: int) -> float:
    """Median events/s of ``run`` (which returns the number of events it processed)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = run()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def fmt_rate(r: float | None) -> str:
    """Events/s, human readable."""
    if r is None or not np.isfinite(r):
        return "–"
    if r >= 1e6:
        return f"{r / 1e6:.2f} M/s"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k/s"
    return f"{r:.0f} /s"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Section:
    """One benchmark's part of docs/benchmarks.md."""

    key: str
    title: str
    body: str
    facts: dict[str, str] = field(default_factory=dict)  # headline numbers for README

    def render(self) -> str:
        # the headline numbers ride along as a hidden comment, so the headline table can be
        # rebuilt from the document after any subset of the benchmarks ran
        facts = f"<!-- bench:facts {json.dumps(self.facts, ensure_ascii=False)} -->\n"
        return (
            f"<!-- bench:{self.key}:start -->\n## {self.title}\n\n{self.body.rstrip()}\n"
            f"{facts if self.facts else ''}<!-- bench:{self.key}:end -->"
        )


def read_facts(doc: Path) -> dict[str, dict[str, str]]:
    """The headline facts stored in each section of ``doc``, by section key."""
    text = doc.read_text() if doc.exists() else ""
    out: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"<!-- bench:(\w+):start -->(.*?)<!-- bench:\1:end -->", text, re.S):
        f = re.search(r"<!-- bench:facts (.*?) -->\n", m.group(2))
        if f:
            out[m.group(1)] = json.loads(f.group(1))
    return out


def sync_readme_table(table: str, readme: Path) -> bool:
    """Put ``table`` between README's ``bench:headline`` markers; False if it has none."""
    if not readme.exists():
        return False
    text = readme.read_text()
    pat = re.compile(r"(<!-- bench:headline:start -->\n).*?(<!-- bench:headline:end -->)", re.S)
    if not pat.search(text):
        return False
    readme.write_text(pat.sub(lambda m: m.group(1) + table + m.group(2), text))
    return True


ORDER = ["headline", "throughput", "kafka", "adbench", "nab", "skab", "scenarios", "temporal",
         "null", "e2e", "logs", "keys", "soak"]
HEADER = """# streamem benchmarks

Written by `python -m bench` (each section also by its own script, e.g.
`python -m bench.throughput`). Do not edit the sections by hand: rerun the script.
Install the peers with `pip install -e .[bench]`; the Random Cut Forest peer also needs Java 17+
and Maven (bench/rcf.py builds its runner once into ~/.cache/streamem/rcf).
"""


def write_section(section: Section, doc: Path = DOC) -> None:
    """Replace (or add, in the fixed order) one section of the benchmarks document."""
    text = doc.read_text() if doc.exists() else HEADER
    key = re.escape(section.key)
    pat = re.compile(rf"<!-- bench:{key}:start -->.*?<!-- bench:{key}:end -->", re.S)
    if pat.search(text):
        text = pat.sub(lambda _: section.render(), text)
    else:
        # insert before the first existing section that comes later in ORDER
        later = ORDER[ORDER.index(section.key) + 1 :] if section.key in ORDER else []
        pos = len(text)
        for k in later:
            m = text.find(f"<!-- bench:{k}:start -->")
            if m != -1:
                pos = min(pos, m)
        text = text[:pos].rstrip() + "\n\n" + section.render() + "\n\n" + text[pos:].lstrip()
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text.rstrip() + "\n")


def section_main(name: str, doc: str | None, measure: Callable[[bool], Section],
                 argv: list[str] | None, quick_help: str = "shorter runs") -> Section:
    """``python -m bench.NAME [--quick]``: measure one section, write it, print it."""
    import argparse

    p = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=doc)
    p.add_argument("--quick", action="store_true", help=quick_help)
    args = p.parse_args(argv)
    sec = measure(args.quick)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec
