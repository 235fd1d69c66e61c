"""Controlled scenarios: detection delay, false alarms and re-adaptation, streamem vs river HST.

Question: on streams where we know exactly what changed and when (abrupt, gradual and
recurring drift, sensor dropout, an outlier burst, growing variance, nothing), how fast
does each detector notice, how often does it cry wolf, and how long until it stops
alarming on a new normal?

Run: ``python -m bench.scenarios [--quick]``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from numpy.typing import NDArray

from bench.common import Section, machine_lines, md_table, one_core
from bench.peers import RiverHST, run_peer, version
from streamem.evaluation.metrics import event_metrics
from streamem.evaluation.scenarios import SCENARIOS, Scenario, make_scenario

ALERT_RATE = 1e-3
WARMUP = 1000
ADAPT_WINDOW = 500
ADAPT_RATE = 0.01


def run_streamem(s: Scenario, batch: int = 1) -> NDArray[np.bool_]:
    """Flags of streamem's Detector (defaults, alert_rate 1e-3) streaming the scenario."""
    import streamem

    det = streamem.Detector(alert_rate=ALERT_RATE, warmup=WARMUP, random_state=0)
    det.process(s.X[:WARMUP])
    flags = [det.process(s.X[i : i + batch]).is_anomaly for i in range(WARMUP, len(s.X), batch)]
    return np.concatenate([np.zeros(WARMUP, bool), *flags])


def run_hst(s: Scenario) -> NDArray[np.bool_]:
    """Flags of river MinMaxScaler then HalfSpaceTrees, 1 - alert_rate quantile rule."""
    peer = RiverHST(s.X[:WARMUP], online_scaling=True)
    flags, _ = run_peer(peer, s.X[:WARMUP], s.X[WARMUP:], 1 - ALERT_RATE)
    return np.concatenate([np.zeros(WARMUP, bool), flags])


def readaptation(flags: NDArray[np.bool_], cps: tuple[int, ...]) -> float | None:
    """Mean events from each change point until the alarm rate over the next ADAPT_WINDOW
    events first drops to ADAPT_RATE or below; None if that never happens for some change."""
    out = []
    rate = np.convolve(flags.astype(float), np.ones(ADAPT_WINDOW), "valid") / ADAPT_WINDOW
    for cp in cps:
        ok = np.flatnonzero(rate[cp:] <= ADAPT_RATE)
        if ok.size == 0:
            return None
        out.append(float(ok[0]))
    return float(np.mean(out)) if out else 0.0


def evaluate(s: Scenario, flags: NDArray[np.bool_]) -> dict[str, str]:
    """Delay, detected events, false alarms per 10^4 normal events, re-adaptation."""
    lab, fl = s.labels[WARMUP:], flags[WARMUP:]
    m = event_metrics(lab, fl)
    normal = ~lab
    fa = 1e4 * float(fl[normal].sum()) / max(int(normal.sum()), 1)
    cps = tuple(c for c in s.change_points if c >= WARMUP)
    # growing variance is labelled anomalous to the end, so "back to normal" is undefined
    drift = s.name in ("abrupt_drift", "gradual_drift", "recurring_drift")
    ra = readaptation(flags, cps) if drift else None
    return {
        "detected": f"{m.n_detected}/{m.n_events}" if m.n_events else "–",
        "delay": "–" if not m.n_detected else f"{m.mean_delay:.0f}",
        "fa": f"{fa:.1f}",
        "adapt": ("never" if ra is None else f"{ra:.0f}") if drift else "–",
        "flagged": f"{fl.mean():.2%}",
    }


def measure(quick: bool) -> Section:
    """Run every scenario with both detectors and build the section."""
    n = 5_000 if quick else 20_000
    rows = []
    t0 = time.perf_counter()
    with one_core() as pinned, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        facts: dict[str, str] = {}
        for name in SCENARIOS:
            s = make_scenario(name, n=n, d=5, seed=0)
            ours, hst = evaluate(s, run_streamem(s)), evaluate(s, run_hst(s))
            if name == "abrupt_drift":
                facts["abrupt drift: delay / re-adaptation (events)"] = (
                    f"{ours['delay']} / {ours['adapt']}"
                )
            rows.append(
                [
                    f"`{name}`: {s.description}",
                    ours["detected"],
                    hst["detected"],
                    ours["delay"],
                    hst["delay"],
                    ours["fa"],
                    hst["fa"],
                    ours["adapt"],
                    hst["adapt"],
                    ours["flagged"],
                    hst["flagged"],
                ]
            )
    elapsed = time.perf_counter() - t0
    table = md_table(
        [
            "scenario (d=5)",
            "events found: streamem",
            "HST",
            "mean delay (events): streamem",
            "HST",
            "false alarms / 10⁴ normal: streamem",
            "HST",
            "re-adaptation (events): streamem",
            "HST",
            "flagged: streamem",
            "HST",
        ],
        rows,
    )
    cmd = "python -m bench.scenarios" + (" --quick" if quick else "")
    body = f"""{machine_lines(cmd, pinned)}- peers: river {version("river")}
- streams: {n:,} events, d=5, seed 0, from `streamem.evaluation.scenarios`; run time {elapsed:.0f} s
  (deterministic, so not repeated)

**Setup.** streamem: `Detector(alert_rate=1e-3, warmup=1000)` with every other parameter
at its default, fed one event per `process` call. river: `MinMaxScaler` then `HalfSpaceTrees`
(defaults) flagging a score above the 0.999 quantile of all earlier scores and not
learning flagged events. Both warm up on the first {WARMUP:,} events, which are left out
of every figure. **Labels**: the first 200 events after an abrupt or recurring switch,
the whole ramp of a gradual drift, the injected outliers, every event after variance
starts growing. **Delay**: events from the start of a labelled run to its first alarm,
mean over the runs found. **False alarms**: alarms on unlabelled events per 10,000
unlabelled events (target rate 1e-3 = 10 per 10⁴). **Re-adaptation**: events after a
change until the alarm rate over the next {ADAPT_WINDOW} events first falls to
{ADAPT_RATE:.0%} or less (mean over change points; "never" if it does not happen).

{table}"""
    return Section("scenarios", "Controlled scenarios", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import section_main

    return section_main("scenarios", __doc__, measure, argv, "shorter streams")


if __name__ == "__main__":
    main()
