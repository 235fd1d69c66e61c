"""Contextual scenarios: time of day, cycle order and maintenance windows; HMM throughput.

Question: when an event is anomalous only in its context (a value normal by day but not by
night, a cycle that skips a stage, stages out of order, a maintenance window that looks like
an incident), which detectors notice, how fast, and how often do they cry wolf? And what
does the temporal model cost in throughput against the i.i.d. detector?

Detectors, in the same run: streamem's i.i.d. ``Detector``, ``HMMDetector`` (the online
HMM), ``SeasonalModel`` (``p(x | time of day)``, SPOT threshold), river HalfSpaceTrees and
AWS Random Cut Forest (shingle 8, its own anomaly grade).

Run: ``python -m bench.temporal [--quick]`` or ``python -m bench --only temporal``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import (
    DEFAULT_SKAB,
    Section,
    fmt_rate,
    machine_lines,
    md_table,
    one_core,
    shared_data,
)
from bench.peers import RiverHST, run_peer, version
from streamem.evaluation.metrics import event_metrics

Array = NDArray[np.float64]
Flags = NDArray[np.bool_]
ALERT_RATE = 1e-3
WARMUP = 1000
BATCH = 32
DAY = 86400.0


@dataclass(frozen=True)
class TemporalScenario:
    """A generated stream with timestamps, ground truth and an optional calendar."""

    name: str
    X: Array
    timestamps: Array
    labels: Flags
    description: str
    calendar: list[dict[str, Any]] = field(default_factory=list)
    n_states: int = 4  # the HMM's n_components: the number of stages of a cycle


def _runs(labels: Flags, starts: list[int], length: int) -> None:
    for s in starts:
        labels[s:s + length] = True


def day_night(n_days: int, seed: int) -> TemporalScenario:
    """Every 5 min: noon high (14), midnight low (6); noon values at 03:00 and night values
    at noon, three events each, on six days after the warm-up."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, n_days * DAY, 300.0)
    x = 10.0 + 4.0 * np.cos(2 * np.pi * (t - DAY / 2) / DAY) + rng.normal(0, 0.5, t.size)
    X = np.column_stack([x, rng.normal(0, 1, t.size)])
    labels = np.zeros(t.size, dtype=bool)
    days = np.linspace(6, n_days - 1, 6).astype(int)
    for i, d in enumerate(days):
        at = int((d * DAY + (3 if i % 2 == 0 else 12) * 3600) // 300)
        X[at:at + 3, 0] = (14.0 if i % 2 == 0 else 6.0) + rng.normal(0, 0.5, 3)
        _runs(labels, [at], 3)
    return TemporalScenario("day_night", X, t, labels,
                            "noon value at 03:00 / night value at noon")


def _cycle(stage_values: list[float], order_of: Callable[[int], list[int]], n_cycles: int,
           seed: int, label_from: Callable[[int], int | None]) -> tuple[Array, Flags]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for c in range(n_cycles):
        first_bad = label_from(c)
        for j, s in enumerate(order_of(c)):
            v = np.full(10, stage_values[s]) + rng.normal(0, 0.5, 10)
            rows.append(np.column_stack([v, rng.normal(0, 1, 10)]))
            lab = np.zeros(10, dtype=bool)
            if first_bad is not None and j == first_bad:
                lab[:3] = True
            labels.append(lab)
    return np.vstack(rows), np.concatenate(labels)


def skipped_stage(n: int, seed: int) -> TemporalScenario:
    """Stages 0 -> 5 -> 10 (ten events each); six cycles skip stage 5."""
    n_cycles = n // 30
    bad = set(np.linspace(n_cycles // 3, n_cycles - 2, 6).astype(int).tolist())
    X, labels = _cycle([0.0, 5.0, 10.0], lambda c: [0, 2] if c in bad else [0, 1, 2],
                       n_cycles, seed, lambda c: 1 if c in bad else None)
    return TemporalScenario("skipped_stage", X, np.arange(len(X), dtype=float), labels,
                            "cycle 0 -> 5 -> 10 skips stage 5 six times", n_states=3)


def out_of_order(n: int, seed: int) -> TemporalScenario:
    """Stages 0 -> 3 -> 6 -> 9; six cycles run 0 -> 6 -> 3 -> 9."""
    n_cycles = n // 40
    bad = set(np.linspace(n_cycles // 3, n_cycles - 2, 6).astype(int).tolist())
    X, labels = _cycle([0.0, 3.0, 6.0, 9.0],
                       lambda c: [0, 2, 1, 3] if c in bad else [0, 1, 2, 3],
                       n_cycles, seed, lambda c: 1 if c in bad else None)
    return TemporalScenario("out_of_order", X, np.arange(len(X), dtype=float), labels,
                            "stages 0 -> 3 -> 6 -> 9 run 0 -> 6 -> 3 -> 9 six times")


def maintenance(n_days: int, seed: int) -> TemporalScenario:
    """Every 5 min N(10, 1); a nightly 02:00-03:00 backup lifts x to 20 (in the calendar);
    up to six real incidents (x = 16, three events) outside it."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, n_days * DAY, 300.0)
    X = np.column_stack([rng.normal(10, 1, t.size), rng.normal(0, 1, t.size)])
    hour = (t % DAY) / 3600.0
    window = (hour >= 2) & (hour < 3)
    X[window, 0] = 20.0 + rng.normal(0, 1, int(window.sum()))
    labels = np.zeros(t.size, dtype=bool)
    for d in np.linspace(5, n_days - 1, 6).astype(int):
        at = int((d * DAY + 14 * 3600) // 300)
        X[at:at + 3, 0] = 16.0
        _runs(labels, [at], 3)
    cal = [{"name": "backup", "cron": "0 2 * * *", "duration": "1h",
            "action": "mute_and_freeze"}]
    return TemporalScenario("maintenance", X, t, labels,
                            "nightly backup window (calendar) and incidents outside it", cal)


# ---------------------------------------------------------------- detectors
def run_iid(X: Array, t: Array) -> Flags:
    import streamem

    det = streamem.Detector(alert_rate=ALERT_RATE, warmup=WARMUP, random_state=0)
    return np.concatenate([det.process(X[i:i + BATCH]).is_anomaly
                           for i in range(0, len(X), BATCH)])


def run_hmm(X: Array, t: Array, n_components: int = 4) -> Flags:
    from streamem.scoring.temporal import HMMDetector

    det = HMMDetector(n_components=n_components, alert_rate=ALERT_RATE, n_warmup=WARMUP,
                      random_state=0)
    return np.concatenate([det.process(X[i:i + BATCH]).is_anomaly
                           for i in range(0, len(X), BATCH)])


def run_hmm_seasonal(X: Array, t: Array) -> Flags:
    from streamem.scoring.temporal import HMMDetector

    det = HMMDetector(n_components=4, alert_rate=ALERT_RATE, n_warmup=WARMUP, random_state=0,
                      seasonality=["1d"])
    return np.concatenate([det.process(X[i:i + BATCH], t[i:i + BATCH]).is_anomaly
                           for i in range(0, len(X), BATCH)])


def run_seasonal(X: Array, t: Array) -> Flags:
    from streamem.model.seasonality import SeasonalModel
    from streamem.scoring.threshold import SpotThreshold

    m = SeasonalModel(periods=["1d"], n_components=4, n_warmup=WARMUP, random_state=0)
    thr = SpotThreshold(q=ALERT_RATE)
    out = []
    for i in range(0, len(X), BATCH):
        xb, tb = X[i:i + BATCH], t[i:i + BATCH]
        if not m.gmm.is_fitted:
            m.partial_fit(xb, tb)
            out.append(np.zeros(len(xb), dtype=bool))
            continue
        u = -np.log10(np.maximum(m.tail_probability(xb, tb), 1e-300))
        flags = u > thr.threshold_
        thr.update(u, flags)
        m.partial_fit(xb[~flags], tb[~flags])
        out.append(flags)
    return np.concatenate(out)


def run_hst(X: Array, t: Array) -> Flags:
    peer = RiverHST(X[:WARMUP], online_scaling=True)
    flags, _ = run_peer(peer, X[:WARMUP], X[WARMUP:], 1 - ALERT_RATE)
    return np.concatenate([np.zeros(WARMUP, dtype=bool), flags])


def run_rcf(X: Array, t: Array) -> Flags:
    from bench import rcf

    out = rcf.run(X, shingle=8)
    return np.asarray(np.nan_to_num(out.grade, nan=0.0) > 0)


DETECTORS: dict[str, Callable[[Array, Array], Flags]] = {
    "streamem i.i.d.": run_iid, "streamem HMM": run_hmm, "streamem HMM + 1d": run_hmm_seasonal,
    "streamem seasonal": run_seasonal,
    "river HST": run_hst, "RCF (shingle 8)": run_rcf,
}


def evaluate(labels: Flags, flags: Flags) -> dict[str, str]:
    """Events found, mean delay, false alarms per 10^4 normal events (after the warm-up)."""
    lab, fl = labels[WARMUP:], flags[WARMUP:]
    m = event_metrics(lab, fl)
    normal = ~lab
    fa = 1e4 * float(fl[normal].sum()) / max(int(normal.sum()), 1)
    return {"found": f"{m.n_detected}/{m.n_events}",
            "delay": "–" if not m.n_detected else f"{m.mean_delay:.1f}", "fa": f"{fa:.1f}"}


def run_scenario(s: TemporalScenario, name: str, calendar: bool = True,
                 n_states: int | None = None) -> dict[str, str]:
    """One detector on one scenario; calendar-frozen events are neither fed nor flagged."""
    keep = np.ones(len(s.X), dtype=bool)
    if calendar and s.calendar:
        from streamem.calendars import load_calendars

        keep = ~load_calendars(s.calendar).freeze(s.timestamps)
    flags = np.zeros(len(s.X), dtype=bool)
    if name == "streamem HMM":
        flags[keep] = run_hmm(s.X[keep], s.timestamps[keep], n_states or s.n_states)
    else:
        flags[keep] = DETECTORS[name](s.X[keep], s.timestamps[keep])
    return evaluate(s.labels, flags)


# ---------------------------------------------------------------- SKAB
def hmm_skab_detect(n_components: int = 4, batch: int = 1) -> Callable[..., Any]:
    """HMMDetector on one SKAB file: warm up on the training rows (standardised by their
    mean and deviation, as the i.i.d. Detector's scaler does), then stream the test rows."""
    from streamem.scoring.temporal import HMMDetector

    def detect(train: Array, test: Array) -> tuple[Flags, Array]:
        mu, sd = train.mean(axis=0), train.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        det = HMMDetector(n_components=n_components, alert_rate=ALERT_RATE,
                          n_warmup=len(train), random_state=0)
        det.process((train - mu) / sd)
        z = (test - mu) / sd
        res = [det.process(z[i:i + batch]) for i in range(0, len(z), batch)]
        return (np.concatenate([r.is_anomaly for r in res]),
                np.concatenate([r.surprise for r in res]))

    return detect


def skab_rows(path: Any, quick: bool) -> list[list[str]]:
    """SKAB under the leaderboard protocol: the i.i.d. Detector (defaults, streaming) against
    HMMDetector (K=4, streaming); F1, FAR, MAR and NAB standard score."""
    from bench.skab import DEFAULT, streamem_detect
    from streamem.evaluation.skab import load_skab, run_protocol

    files = load_skab(path)
    if quick:
        files = files[:4]
    rows = []
    for name, detect in (("streamem i.i.d. (defaults)", streamem_detect(**DEFAULT)),
                         ("streamem HMM (K=4)", hmm_skab_detect())):
        t0 = time.perf_counter()
        r = run_protocol(files, detect)
        f1, far, mar = r.binary
        rows.append([name, f"{len(files)}", f"{f1:.2f}", f"{far:.1f}", f"{mar:.1f}",
                     f"{r.nab.standard:.1f}", f"{time.perf_counter() - t0:.0f}"])
    return rows


# ---------------------------------------------------------------- NAB
def hmm_nab_scores(values: Array, batch: int = 64) -> Array:
    """HMMDetector (K=4) on a NAB series' raw value, standardised by its first points."""
    from streamem.scoring.temporal import HMMDetector

    warm = min(1000, max(len(values) // 4, 64))
    mu, sd = float(np.mean(values[:warm])), float(np.std(values[:warm]))
    z = ((values - mu) / (sd if sd > 0 else 1.0))[:, None]
    det = HMMDetector(n_components=4, alert_rate=ALERT_RATE, n_warmup=warm, reg_covar=1e-3,
                      random_state=0)
    return np.concatenate([det.process(z[i:i + batch]).scores
                           for i in range(0, len(z), batch)])


def nab_rows(path: Any, quick: bool) -> list[list[str]]:
    """NAB dev categories: the i.i.d. Detector on the raw value (d=1) against HMMDetector
    (K=4, d=1), both in mini-batches of 64; mean ROC-AUC over categories, NAB standard."""
    from bench.nab import RAW_ROW, _head, load, running_percentile
    from bench.quality import StreamemPeer, auc_pair
    from streamem.evaluation import numenta

    series = load(path)
    if quick:
        first: dict[str, Any] = {}
        for ser in series:
            first.setdefault(ser.category, ser)
        series = [_head(ser, 1000) for ser in first.values()]
    files = {ser.name: numenta.nab_file(ser.values.size, ser.windows) for ser in series}
    rows = []
    for name, run in ((RAW_ROW + ", defaults", lambda v: StreamemPeer().run(v[:, None])),
                      ("streamem HMM (K=4), d=1", hmm_nab_scores)):
        t0 = time.perf_counter()
        pct, roc = {}, {}
        for ser in series:
            raw = run(ser.values)
            pct[ser.name] = running_percentile(raw)
            if ser.in_window.any() and not ser.in_window.all():
                roc[ser.name] = auc_pair(ser.in_window, raw)[0]
        names = [ser.name for ser in series]
        fs = [files[k] for k in names]
        thr = numenta.best_threshold(fs, [pct[k] for k in names], "standard")[0]
        nab = numenta.normalised(numenta.raw_score(fs, [pct[k] for k in names], thr,
                                                   "standard"),
                                 sum(f.n_windows for f in fs), "standard")
        cats = sorted({k.split("/")[0] for k in roc})
        mean_roc = float(np.mean([np.mean([v for k, v in roc.items() if k.startswith(c + "/")])
                                  for c in cats]))
        rows.append([name, f"{len(series)}", f"{mean_roc:.3f}", f"{nab:.1f}",
                     f"{time.perf_counter() - t0:.0f}"])
    return rows


# ---------------------------------------------------------------- throughput
def throughput(quick: bool) -> tuple[float, float]:
    """Events/s of the i.i.d. Detector and of HMMDetector at d=10, K=8, batch 1024."""
    import streamem
    from streamem.scoring.temporal import HMMDetector

    d, K, B = 10, 8, 1024
    n_batches = 30 if quick else 150
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 5, (K, d))
    X = centers[rng.integers(K, size=(n_batches + 20) * B)] + rng.normal(size=((n_batches + 20)
                                                                               * B, d))
    dets: dict[str, Any] = {
        "iid": streamem.Detector(n_components=K, covariance_type="full", random_state=0),
        "hmm": HMMDetector(n_components=K, random_state=0)}
    for det in dets.values():
        for i in range(20):
            det.process(X[i * B:(i + 1) * B])
    best = dict.fromkeys(dets, 0.0)
    rounds, per = (3, n_batches // 3) if quick else (5, n_batches // 5)
    for r in range(rounds):  # interleaved, best of rounds: the box is shared
        for k, det in dets.items():
            lo = 20 + r * per
            t0 = time.perf_counter()
            for j in range(lo, lo + per):
                det.process(X[j * B:(j + 1) * B])
            best[k] = max(best[k], per * B / (time.perf_counter() - t0))
    return best["iid"], best["hmm"]


def measure(quick: bool) -> Section:
    """Every scenario with every detector, then the throughput pair."""
    n = 8_000 if quick else 24_000
    days = 10 if quick else 28
    scenarios = [day_night(days, 0), skipped_stage(n, 0), out_of_order(n, 0),
                 maintenance(days, 0)]
    t0 = time.perf_counter()
    rows = []
    facts: dict[str, str] = {}
    with one_core() as pinned, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in scenarios:
            for name in DETECTORS:
                if name in ("streamem seasonal", "streamem HMM + 1d") and s.name in (
                        "skipped_stage", "out_of_order"):
                    continue  # no time of day in a cycle of regular steps
                r = run_scenario(s, name)
                label = f"{name} (K={s.n_states})" if name == "streamem HMM" else name
                rows.append([f"`{s.name}`: {s.description}", label, r["found"], r["delay"],
                             r["fa"]])
            if s.n_states != 4:  # the HMM with a state count that does not match the cycle
                r = run_scenario(s, "streamem HMM", n_states=4)
                rows.append([f"`{s.name}`", "streamem HMM (K=4)", r["found"], r["delay"],
                             r["fa"]])
            if s.calendar:
                r = run_scenario(s, "streamem i.i.d.", calendar=False)
                rows.append([f"`{s.name}`", "streamem i.i.d., no calendar", r["found"],
                             r["delay"], r["fa"]])
        skab = skab_rows(DEFAULT_SKAB, quick) if DEFAULT_SKAB.exists() else []
        nab_path = shared_data("nab-dev")
        nab = nab_rows(nab_path, quick) if nab_path.exists() else []
        iid, hmm = throughput(quick)
    elapsed = time.perf_counter() - t0
    skab_table = (md_table(["SKAB (leaderboard protocol)", "files", "F1", "FAR %", "MAR %",
                            "NAB standard", "seconds"], skab) if skab
                  else f"SKAB not found at {DEFAULT_SKAB}: not run.\n")
    nab_table = (md_table(["NAB dev (all categories but realKnownCause)", "files",
                           "mean ROC-AUC (categories)", "NAB standard", "seconds"], nab)
                 if nab else "NAB dev data not found: not run.\n")
    facts["temporal: HMM / i.i.d. throughput (d=10, K=8, b=1024)"] = (
        f"{fmt_rate(hmm)} / {fmt_rate(iid)} = {hmm / iid:.2f}x")
    table = md_table(["scenario", "detector", "events found", "mean delay (events)",
                      "false alarms / 10⁴ normal"], rows)
    cmd = "python -m bench.temporal" + (" --quick" if quick else "")
    body = f"""{machine_lines(cmd, pinned)}- peers: river {version("river")}, RCF 4.2.0 (Java)
- streams: day/night and maintenance {days} days every 5 min; cycles {n:,} events; d=2, seed 0;
  run time {elapsed:.0f} s

**Setup.** Every detector at alert rate 1e-3; streamem detectors fed {BATCH} events per
call (score before learning); river HalfSpaceTrees behind a MinMaxScaler flags above the
0.999 quantile of earlier scores; RCF (OpenSearch's configuration, shingle 8) flags a
positive anomaly grade. The first {WARMUP:,} events are left out of every figure. In the
maintenance scenario the calendar (`cron: 0 2 * * *`, `duration: 1h`, `mute_and_freeze`)
removes the window's events from every detector's input and output; the last row shows the
i.i.d. detector without it. The HMM has as many states as the cycle has stages (K=4
elsewhere); the row K=4 of `skipped_stage` shows it with a spare state, which can absorb the
skipped transition (1/6 found in the 8,000-event `--quick` run, 6/6 on 24,000 events).
**Labels**: the first three events of every injected anomaly. **Delay**: events from the
start of a labelled run to its first alarm.

{table}
**SKAB** (first 400 rows of each file train, the rest streamed one event per call; the HMM
standardised by the training rows' mean and deviation). The i.i.d. row is `bench.skab`'s
default row. SKAB's faults are level shifts of the sensors more than order anomalies.

{skab_table}
**NAB** (the raw value, d=1, for both; mini-batches of 64; scores ranked by their causal
running percentile as in `bench.nab`, whose table also has the shingled i.i.d. rows; the HMM
standardised by the first quarter of each file up to 1,000 points, its warm-up).

{nab_table}
**Throughput** (d=10, K=8, batch 1024, best of interleaved rounds): i.i.d. `Detector`
{fmt_rate(iid)}, `HMMDetector` {fmt_rate(hmm)}: **{hmm / iid:.2f}x** (target 0.5x).
"""
    return Section("temporal", "Contextual scenarios and the temporal model", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import section_main

    return section_main("temporal", __doc__, measure, argv, "shorter streams")


if __name__ == "__main__":
    main()
