"""Text logs: parsing speed, template accuracy on Loghub, template cost vs Drain3 alone.

Questions:

1. How many nginx combined lines per second does the ``nginx`` preset parse on one core,
   alone and through the feature extraction (lines to the model's matrix)?
2. How well do the mined templates group Loghub's 2k samples? Grouping accuracy as in the
   Loghub/Drain papers (Zhu et al., ICSE-SEIP 2019): a line counts as correct when the set of
   lines in its mined group is exactly the set in its ground-truth group.
3. What does the template path (streamem's :class:`TemplateMiner` on records) cost compared
   with Drain3's own ``TemplateMiner.add_log_message`` on the same messages, same masks?

The ground truth per line comes from ``*_templates.csv``: each template becomes a regex
(``<*>`` matches anything) and a line gets the matching template with the most literal
characters. Each system's header (time, level, component...) is cut off by the regex of the
Loghub benchmark settings (``source.format: regex``), leaving Loghub's ``Content`` field.

Run: ``python -m bench.logs [--loghub PATH] [--quick]`` (PATH defaults to
../shared/data/loghub).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import logs_buckets
from bench.common import REPO, Section, fmt_rate, machine_lines, md_table, one_core
from streamem.features import FeatureExtractor
from streamem.parsing import PRESETS, LineDecoder, regex_format
from streamem.parsing.templates import DEFAULT_MASKS, TemplateMiner

DEFAULT_LOGHUB = (REPO / ".." / "shared" / "data" / "loghub").resolve()

# Loghub's log_format of each 2k sample (logparser benchmark settings), as a named-group regex
LOGHUB_HEADERS = {
    "Android": r"(?P<Date>\S+) (?P<Time>\S+)\s+(?P<Pid>\d+)\s+(?P<Tid>\d+) (?P<Level>\w) "
               r"(?P<Component>[^:]*?): (?P<Content>.*)",
    "Apache": r"\[(?P<Time>[^\]]+)\] \[(?P<Level>\w+)\] (?P<Content>.*)",
    "HDFS": r"(?P<Date>\d+) (?P<Time>\d+) (?P<Pid>\d+) (?P<Level>\w+) (?P<Component>\S+): "
            r"(?P<Content>.*)",
    "HPC": r"(?P<LogId>\S+) (?P<Node>\S+) (?P<Component>\S+) (?P<State>\S+) (?P<Time>\S+) "
           r"(?P<Flag>\S+) (?P<Content>.*)",
    "Hadoop": r"(?P<Date>\S+) (?P<Time>\S+) (?P<Level>\w+) \[(?P<Process>[^\]]*)\] "
              r"(?P<Component>\S+): (?P<Content>.*)",
    "HealthApp": r"(?P<Time>[^|]*)\|(?P<Component>[^|]*)\|(?P<Pid>[^|]*)\|(?P<Content>.*)",
    "Linux": r"(?P<Month>\w+)\s+(?P<Date>\d+) (?P<Time>\S+) (?P<Level>\S+) "
             r"(?P<Component>[^\[:]+)(?:\[(?P<PID>\d+)\])?: (?P<Content>.*)",
    "Mac": r"(?P<Month>\w+)\s+(?P<Date>\d+) (?P<Time>\S+) (?P<User>\S+) "
           r"(?P<Component>[^\[]+)\[(?P<PID>\d+)\](?: \((?P<Address>[^)]*)\))?: "
           r"(?P<Content>.*)",
    "OpenSSH": r"(?P<Date>\w+)\s+(?P<Day>\d+) (?P<Time>\S+) (?P<Component>\S+) "
               r"sshd\[(?P<Pid>\d+)\]: (?P<Content>.*)",
    "OpenStack": r"(?P<Logrecord>\S+) (?P<Date>\S+) (?P<Time>\S+) (?P<Pid>\d+) "
                 r"(?P<Level>\w+) (?P<Component>\S+) \[(?P<ADDR>[^\]]*)\] (?P<Content>.*)",
    "Proxifier": r"\[(?P<Time>[^\]]+)\] (?P<Program>.*?) - (?P<Content>.*)",
    "Spark": r"(?P<Date>\S+) (?P<Time>\S+) (?P<Level>\w+) (?P<Component>\S+): "
             r"(?P<Content>.*)",
    "Windows": r"(?P<Date>\S+) (?P<Time>\S+), (?P<Level>\w+)\s+(?P<Component>\S+)\s+"
               r"(?P<Content>.*)",
    "Zookeeper": r"(?P<Date>\S+) (?P<Time>\S+) - (?P<Level>\w+)\s+\[(?P<Node>[^:]+):"
                 r"(?P<Component>[^@]+)@(?P<Id>\d+)\] - (?P<Content>.*)",
}
# the preset of each system whose lines one of them reads
LOGHUB_PRESETS = {"Apache": "apache_error", "Linux": "syslog", "Mac": "syslog",
                  "OpenSSH": "syslog"}


def read_lines(path: Path) -> list[bytes]:
    """The lines of ``path`` without line ends (and without a final empty one)."""
    lines = path.read_bytes().split(b"\n")
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines[:-1] if ln] + \
        ([lines[-1]] if lines[-1] else [])


def _template_regex(template: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in template.strip().split("<*>")]
    return re.compile(r"\s*" + "(.*?)".join(parts) + r"\s*", re.S)


def ground_truth(contents: Sequence[str], templates_csv: Path) -> list[str | None]:
    """The ground-truth template id of each content (None: no template matches)."""
    with templates_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    tpls = [(r["EventId"], _template_regex(r["EventTemplate"]),
             len(r["EventTemplate"].replace("<*>", ""))) for r in rows]
    tpls.sort(key=lambda t: -t[2])  # most literal characters first
    cache: dict[str, str | None] = {}
    out: list[str | None] = []
    for c in contents:
        if c not in cache:
            cache[c] = next((eid for eid, rx, _ in tpls if rx.fullmatch(c)), None)
        out.append(cache[c])
    return out


def grouping_accuracy(truth: Sequence[Any], mined: Sequence[Any]) -> float:
    """Fraction of lines whose mined group holds exactly the lines of their true group."""
    by_truth: dict[Any, set[int]] = defaultdict(set)
    by_mined: dict[Any, set[int]] = defaultdict(set)
    for i, (t, m) in enumerate(zip(truth, mined, strict=True)):
        by_truth[t].add(i)
        by_mined[m].add(i)
    ok = sum(len(idx) for idx in by_mined.values()
             if len({truth[i] for i in idx}) == 1 and by_truth[truth[next(iter(idx))]] == idx)
    return ok / max(len(truth), 1)


def contents_of(system: str, lines: Sequence[bytes]) -> list[str]:
    """Loghub's ``Content`` of each line that its header regex matches."""
    recs = regex_format(LOGHUB_HEADERS[system]).parse(lines)
    return [r["Content"] for r in recs if isinstance(r, dict)]


def accuracy(loghub: Path) -> list[list[str]]:
    """One table row per Loghub system: lines, templates, accuracy, preset match rate."""
    rows = []
    for system in sorted(LOGHUB_HEADERS):
        d = loghub / system
        lines = read_lines(d / f"{system}_2k.log")
        contents = contents_of(system, lines)
        truth = ground_truth(contents, d / f"{system}_2k.log_templates.csv")
        miner = TemplateMiner("Content")
        mined = [miner.mine(c)[0] for c in contents]
        keep = [i for i, t in enumerate(truth) if t is not None]
        ga = grouping_accuracy([truth[i] for i in keep], [mined[i] for i in keep])
        preset = LOGHUB_PRESETS.get(system)
        matched = "–"
        if preset is not None:
            n_ok = sum(isinstance(r, dict) for r in PRESETS[preset].parse(lines))
            matched = f"`{preset}`: {n_ok}/{len(lines)}"
        rows.append([system, f"{len(lines)}", f"{len(contents)}", f"{len(keep)}",
                     f"{len(set(t for t in truth if t))}", f"{miner.n_templates}",
                     f"{ga:.3f}", matched])
    return rows


def nginx_lines(n: int, seed: int = 0) -> list[bytes]:
    """Synthetic nginx combined lines with ``$request_time $upstream_response_time``."""
    rng = random.Random(seed)
    agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36", "curl/8.5.0", "Go-http-client/1.1",
              "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15"]
    paths = ["/", "/api/v1/items/{}", "/static/app.{}.js", "/login", "/api/v1/users/{}/cart"]
    out = []
    for i in range(n):
        sec = 1_767_348_000 + i // 50
        t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(sec))
        status = rng.choice([200] * 40 + [301, 304, 404, 499, 500, 502])
        path = rng.choice(paths).format(rng.randrange(5000))
        up = "-" if path.startswith("/static") else f"{rng.random() * 0.2:.3f}"
        out.append(
            f'10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)} - - [{t}] '
            f'"{rng.choice(["GET"] * 8 + ["POST", "PUT"])} {path} HTTP/1.1" {status} '
            f'{rng.randrange(200, 40000)} "https://shop.example.com/" "{rng.choice(agents)}" '
            f'{rng.random() * 0.3:.3f} {up}'.encode())
    return out


def _rate(run: Callable[[], int], repeats: int) -> float:
    """Median lines per CPU second of this process (pinned to one core): on the shared
    2-core machine the wall clock also counts the time other jobs held the core."""
    rates = []
    for _ in range(repeats):
        t0 = time.process_time()
        n = run()
        rates.append(n / (time.process_time() - t0))
    return statistics.median(rates)


def speed(quick: bool, loghub: Path) -> tuple[list[list[str]], dict[str, str]]:
    """Parsing and template throughput rows (one core), and the headline facts."""
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import (
        TemplateMinerConfig,
    )

    n, batch, reps = (20_000 if quick else 200_000), 512, (3 if quick else 7)
    lines = nginx_lines(n)
    batches = [lines[i : i + batch] for i in range(0, n, batch)]
    fmt = PRESETS["nginx"]
    fx = FeatureExtractor(["status", "body_bytes_sent", "request_time"], format="nginx",
                          lines=LineDecoder(fmt))

    def parse() -> int:
        for b in batches:
            fmt.parse(b)
        return n

    def extract() -> int:
        for b in batches:
            fx.decode(b)
        return n

    # the template path vs Drain3 alone, on the same messages (OpenSSH's, 20x over)
    ssh = contents_of("OpenSSH", read_lines(loghub / "OpenSSH" / "OpenSSH_2k.log"))
    msgs = ssh * (5 if quick else 20)

    def ours() -> int:
        miner = TemplateMiner("message")
        recs = [{"message": m} for m in msgs]
        t0 = time.process_time()
        miner.annotate(recs)
        timings.append(time.process_time() - t0)
        return len(msgs)

    def theirs() -> int:
        cfg = TemplateMinerConfig()
        cfg.masking_instructions = [MaskingInstruction(p, name) for p, name in DEFAULT_MASKS]
        cfg.drain_max_clusters = 10_000  # the same bound as streamem's miner
        miner = Drain3Miner(config=cfg)
        add = miner.add_log_message
        t0 = time.process_time()
        for m in msgs:
            add(m)
        timings.append(time.process_time() - t0)
        return len(msgs)

    r_parse = _rate(parse, reps)
    r_extract = _rate(extract, reps)
    timings: list[float] = []
    for _ in range(reps):
        ours()
    t_ours = statistics.median(timings)
    timings = []
    for _ in range(reps):
        theirs()
    t_theirs = statistics.median(timings)
    rows = [
        ["`nginx` preset: lines to records", f"{n:,} lines, batches of {batch}",
         fmt_rate(r_parse)],
        ["`nginx` lines to the feature matrix (FeatureExtractor.decode)",
         f"{n:,} lines, 3 features", fmt_rate(r_extract)],
        ["templates: streamem TemplateMiner.annotate", f"{len(msgs):,} OpenSSH messages",
         fmt_rate(len(msgs) / t_ours)],
        ["templates: Drain3 TemplateMiner.add_log_message (same masks)",
         f"{len(msgs):,} OpenSSH messages", fmt_rate(len(msgs) / t_theirs)],
    ]
    ratio = t_ours / t_theirs
    facts = {"nginx lines parsed (one core, per CPU second)": fmt_rate(r_parse),
             "nginx lines to features (one core, per CPU second)": fmt_rate(r_extract),
             "template path cost vs Drain3 alone": f"{ratio:.2f}× (target ≤ 1.3×)"}
    rows.append(["template path ÷ Drain3 alone (time)", "", f"{ratio:.2f}×"])
    return rows, facts


def measure(quick: bool, loghub: Path = DEFAULT_LOGHUB) -> Section:
    """Run the speed and accuracy parts and build the section."""
    t0 = time.perf_counter()
    with one_core() as pinned:
        speed_rows, facts = speed(quick, loghub)
        acc_rows = accuracy(loghub)
        bucket_body, bucket_facts = logs_buckets.measure(quick, loghub)
    facts |= bucket_facts
    mean_ga = statistics.mean(float(r[6]) for r in acc_rows)
    facts["Loghub grouping accuracy (mean of 14 systems, default settings)"] = f"{mean_ga:.3f}"
    cmd = "python -m bench.logs" + (" --quick" if quick else "")
    body = f"""{machine_lines(cmd, pinned)}- run time {time.perf_counter() - t0:.0f} s; \
rates are medians of repeats, in lines per CPU second of the benchmark process

**Speed.** Synthetic nginx combined lines (with `$request_time $upstream_response_time`,
`bench.logs.nginx_lines`). The template rows time only the mining of already-parsed
messages; both miners use Drain3's defaults (depth 4, similarity 0.4), the same masks
(`DEFAULT_MASKS`: IPv4, hex, integers) and the same bound of 10,000 templates.

{md_table(["what", "input", "rate (per CPU second)"], speed_rows)}
**Template accuracy** (grouping accuracy; Loghub 2k samples, lines whose content matches a
ground-truth template; `TemplateMiner` at its defaults, the same for every system, where the
Drain paper tunes masks and thresholds per system). The last column is how many lines of
the raw file the matching preset reads.

{md_table(["system", "lines", "header matched", "with ground truth", "true templates",
           "mined templates", "grouping accuracy", "preset"], acc_rows)}
Mean grouping accuracy: {mean_ga:.3f}.
{bucket_body}"""
    return Section("logs", "Text logs: parsing and templates", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.logs", description=__doc__)
    p.add_argument("--quick", action="store_true", help="shorter runs")
    p.add_argument("--loghub", type=Path, default=DEFAULT_LOGHUB, help="Loghub 2k folder")
    args = p.parse_args(argv)
    sec = measure(args.quick, args.loghub)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
