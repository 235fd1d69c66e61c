"""Memory soak: RSS of the daemon (``streamem run``) fed at a steady rate for half an hour.

Question: does the daemon's resident memory stay flat while it runs for a long time at a
steady input rate, with everything on (sinks, incidents, dead letters, checkpoints, the
metrics endpoint)? A 45 s version runs in CI (tests/daemon/test_soak.py).

Run: ``python -m bench.soak [--minutes 30] [--rate 10000]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import Section, machine_lines, md_table

CONFIG = """source:
  type: stdin
fields:
  features: [flow, temperature, pressure, vibration.rms]
  timestamp: ts
  key: sensor
  id: id
batch:
  max_events: 256
  max_wait_ms: 50
model:
  n_components: 4
  warmup: 1000
  random_state: 0
detector:
  alert_rate: 0.001
sinks:
  - type: file
    path: {dir}/anomalies.jsonl
dead_letter:
  type: file
  path: {dir}/dead-letter.jsonl
checkpoint:
  dir: {dir}/state
  every_seconds: 30
  keep: 3
metrics:
  enabled: true
  host: 127.0.0.1
  port: {port}
logging:
  level: WARNING
"""
POOL = 50_000  # distinct pre-encoded events, replayed with fresh ids and timestamps
BAD_EVERY = 5_003  # one garbage line in this many (the dead-letter path stays busy)
SPIKE_EVERY = 997  # one injected anomaly in this many (sinks and incidents stay busy)


@dataclass(frozen=True)
class Soak:
    """What the soak measured."""

    minutes: float
    rate: int
    samples: list[tuple[float, int, float]]  # (seconds, events written, RSS MiB)
    processed: float  # events the daemon counted (streamem_events_total), scraped at the end
    written: int
    cpu_seconds: float
    anomalies: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(seed: int = 0) -> list[str]:
    """JSON templates with ``{i}``/``{ts}`` slots: two correlated sensors' operating points."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(POOL):
        flow = rng.normal(50.0, 2.0)
        pressure = 1.5 + 0.04 * flow + rng.normal(0, 0.05) + (3.0 if j % SPIKE_EVERY == 0 else 0)
        body = json.dumps({
            "sensor": f"s{j % 50}", "flow": round(flow, 4),
            "temperature": round(55 + 0.3 * flow + rng.normal(0, 0.8), 4),
            "pressure": round(pressure, 5),
            "vibration": {"rms": round(abs(rng.normal(1.3, 0.05)), 5)},
        })
        out.append('{"id": "e%d", "ts": %.2f, ' + body[1:].replace("%", "%%"))
    return out


def _feed(proc: subprocess.Popen[bytes], rate: int, stop: threading.Event,
          written: list[int]) -> None:
    """Write ``rate`` events per second to the daemon's stdin, in ten slices a second."""
    assert proc.stdin is not None
    pool, i, t0 = _lines(), 0, time.monotonic()
    per_slice = max(1, rate // 10)
    while not stop.is_set():
        chunk = []
        for _ in range(per_slice):
            if i % BAD_EVERY == BAD_EVERY - 1:
                chunk.append(f'{{"id": "bad{i}", "flow": [1, 2')  # truncated JSON
            else:
                chunk.append(pool[i % POOL] % (i, 1.7e9 + i / rate))
            i += 1
        proc.stdin.write(("\n".join(chunk) + "\n").encode())
        proc.stdin.flush()
        written[0] = i
        # pace against the clock, so a slow slice does not lower the average rate
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def _events_total(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("streamem_events_total{"))


def run(minutes: float, rate: int, every: float) -> Soak:
    """Start the daemon on stdin, feed it for ``minutes``, sample its RSS every ``every`` s."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        cfg = Path(tmp) / "soak.yaml"
        cfg.write_text(CONFIG.format(dir=tmp, port=port))
        proc = subprocess.Popen([sys.executable, "-m", "streamem", "run", "-c", str(cfg)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        stop, written = threading.Event(), [0]
        feeder = threading.Thread(target=_feed, args=(proc, rate, stop, written), daemon=True)
        samples: list[tuple[float, int, float]] = []
        t0 = time.monotonic()
        feeder.start()
        try:
            last = -1
            while (now := time.monotonic() - t0) < minutes * 60:
                if int(now / every) > last:
                    last = int(now / every)
                    if proc.poll() is not None:
                        raise RuntimeError(f"the daemon exited with {proc.returncode}")
                    samples.append((now, written[0], _rss_mib(proc.pid)))
                    pct = 100 * now / (minutes * 60)
                    print(f"\r   soak {pct:5.1f} %  {written[0]:,} events  "
                          f"RSS {samples[-1][2]:.1f} MiB", end="", flush=True, file=sys.stderr)
                time.sleep(0.2)
            stop.set()
            feeder.join()
            time.sleep(1.0)  # let the last slice through
            processed, cpu = _events_total(port), _cpu_seconds(proc.pid)
        finally:
            stop.set()
            if proc.stdin is not None:
                proc.stdin.close()  # end of input: the daemon checkpoints and exits
            if proc.wait(120) != 0:
                raise RuntimeError(f"the daemon exited with {proc.returncode}")
            print(file=sys.stderr)
        with (Path(tmp) / "anomalies.jsonl").open() as fh:
            anomalies = sum(1 for _ in fh)
    return Soak(minutes, rate, samples, processed, written[0], cpu, anomalies)


def measure(minutes: float, rate: int = 10_000) -> Section:
    """Run the soak and build the section."""
    every = 1.0 if minutes < 5 else 5.0
    s = run(minutes, rate, every)
    secs = np.array([x[0] for x in s.samples])
    rss = np.array([x[2] for x in s.samples])
    settle = min(120.0, secs[-1] / 3)  # imports, warm-up fit, first checkpoints
    kept = secs >= settle
    slope = float(np.polyfit(secs[kept], rss[kept], 1)[0]) * 60 if kept.sum() > 2 else 0.0
    month = slope * 60 * 24 * 30
    flat = month < 256.0
    pick = np.unique(np.linspace(0, len(s.samples) - 1, 10).astype(int))
    table = md_table(
        ["elapsed s", "events written", "RSS MiB"],
        [[f"{s.samples[i][0]:.0f}", f"{s.samples[i][1]:,}", f"{s.samples[i][2]:.1f}"]
         for i in pick],
    )
    cmd = f"python -m bench.soak --minutes {minutes:g} --rate {rate}"
    body = f"""{machine_lines(cmd, "not pinned (the daemon is a child process)")}
**Setup.** The real daemon (`streamem run`, d=4 with a dotted field, K=4, batches of up to
256 or 50 ms) reads JSON lines from stdin, written at a steady {rate:,} events/s for
{minutes:g} min by a feeder thread (50 sensor keys; one anomaly in {SPIKE_EVERY} events, so
the file sink and the incident tracker stay busy; one truncated JSON line in {BAD_EVERY:,},
so the dead-letter sink does too), with checkpoints every 30 s and the metrics endpoint on.
RSS is read from /proc every {every:g} s; the slope is fitted after the first
{settle:.0f} s (imports, warm-up fit, first checkpoints).

**Result.** {s.written:,} events written, {s.processed:,.0f} counted by the daemon
(`streamem_events_total`, scraped 1 s after the last write: {s.written - s.processed:,.0f}
behind), {s.anomalies:,} anomalies delivered;
the daemon used {s.cpu_seconds:.0f} CPU seconds ({100 * s.cpu_seconds / (minutes * 60):.0f} %
of one core). RSS {rss[kept][0]:.1f} MiB after settling, {rss.max():.1f} MiB peak,
{rss[-1]:.1f} MiB at the end; fitted slope
{slope:+.4f} MiB/min, i.e. {month:+.0f} MiB over 30 days at this rate —
**{"flat" if flat else "growing"}** (flat = under 256 MiB per 30 days).

{table}"""
    facts = {
        f"daemon RSS over a {minutes:g}-min soak at {rate:,} events/s":
            f"{slope:+.4f} MiB/min ({rss[-1]:.0f} MiB at the end; "
            f"{'flat' if flat else 'growing'})"
    }
    return Section("soak", "Memory soak (daemon)", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=30.0, help="how long to feed the daemon")
    p.add_argument("--rate", type=int, default=10_000, help="events per second")
    p.add_argument("--quick", action="store_true", help="10 seconds, scratch output")
    args = p.parse_args(argv)
    sec = measure(0.17 if args.quick else args.minutes, args.rate)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
