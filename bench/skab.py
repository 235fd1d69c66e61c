"""Detection quality on SKAB under the leaderboard protocol.

Question: how well does streamem find SKAB's labelled anomalies and changepoints, next to
the published leaderboard and to river HalfSpaceTrees and PySAD LODA run the same way?

Protocol (``shared/data/skab/SOURCE.md``): 34 labelled files; rows [0, 400) of each file
warm the detector up; every figure is computed on rows [400, end) ("test parts", 23,801
rows, 127 changepoints) with the confusion matrix pooled over files; changepoints scored
NAB-style with a 60 s window to the right.

Run: ``python -m bench.skab [PATH] [--quick]`` (PATH defaults to ../shared/data/skab).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import DEFAULT_SKAB, Section, machine_lines, md_table, one_core
from bench.peers import PysadModel, RiverHST, run_peer, version
from streamem.evaluation.skab import SkabFile, SkabResult, load_skab, run_protocol

Detect = Callable[
    [NDArray[np.float64], NDArray[np.float64]], tuple[NDArray[np.bool_], NDArray[np.float64]]
]

# Leaderboard rows re-typed in SOURCE.md: F1, FAR %, MAR %; NAB standard, LowFP, LowFN,
# missed CPs, FPs (None where the board gives none).
LEADERBOARD: list[tuple[Any, ...]] = [
    ("Conv-AE", 0.78, 13.55, 28.02, 23.61, 21.54, 27.55, 82, 23),
    ("MSET", 0.78, 39.73, 14.13, 13.84, 10.22, 17.37, 96, 66),
    ("T-squared+Q (PCA-based)", 0.76, 26.62, 24.92, 25.35, 14.51, 31.33, 72, 232),
    ("LSTM-AE", 0.74, 29.96, 25.92, 23.51, 20.11, 25.91, 88, 69),
    ("T-squared", 0.66, 19.21, 42.6, 19.54, 10.2, 24.31, 70, 106),
    ("LSTM-VAE", 0.56, 9.13, 55.03, None, None, None, None, None),
    ("Vanilla LSTM", 0.54, 12.54, 59.53, 11.31, -3.8, 17.25, 90, 342),
    ("MSCRED", 0.36, 49.94, 69.88, 32.42, 16.53, 40.28, 55, 342),
    ("Vanilla AE", 0.39, 2.59, 75.15, 11.41, 6.53, 13.91, 103, 106),
    ("Isolation forest", 0.29, 2.56, 82.89, 26.16, 19.5, 30.82, 76, 135),
    ("ArimaFD", None, None, None, -0.09, -0.17, -0.06, 127, 2),
    ("Null detector", 0, 0, 100, 0, 0, 0, None, None),
]

DEFAULT: dict[str, Any] = {"alert_rate": 1e-3, "n_components": "auto"}
DEFAULT_ROW = "streamem, defaults (alert_rate 1e-3, K auto), streaming"
# Drift tolerance (opt-in) with otherwise default settings.
DETREND: dict[str, Any] = {**DEFAULT, "detrend_half_life": 10.0}
DETREND_ROW = "streamem, defaults + drift tolerance (detrend_half_life 10), streaming"
DETREND_AUTO: dict[str, Any] = {**DEFAULT, "detrend_half_life": "auto"}
DETREND_AUTO_ROW = "streamem, defaults + drift tolerance (detrend_half_life auto), streaming"

# Honest model selection: SKAB has no validation split, so settings are chosen on the
# development files (valve1/*, 16 files) alone and then reported on the other 18 files
# (valve2/*, other/*) and on all 34. The rule: the highest development F1 among the
# settings whose development FAR is <= DEV_MAX_FAR, a margin below the 15 % target because
# the FAR of a setting chosen this way rose by 2.6 points from valve1/* to the unseen files
# in the previous round (13.7 -> 16.3 %).
DEV_PREFIX = "valve1/"
DEV_MAX_FAR = 12.0
SPLIT_GRID: dict[str, tuple[Any, ...]] = {
    "n_components": ("auto", 3, 4, 5),
    "smooth_window": (1, 5),
    "detrend_half_life": (None, 10.0, 30.0, "auto"),
    "regime_min_events": (400, 10**9),  # early regime acceptance on or off (the default)
    # The default "auto" picks the structure by BIC; on SKAB's detrended 400-row warm-ups
    # that is diagonal, which drops the sensors' correlations (see the prose, "Bisect").
    "covariance_type": ("auto", "full"),
}


def _trailing_mean(x: NDArray[np.float64], w: int) -> NDArray[np.float64]:
    if w <= 1:
        return x
    c = np.convolve(x, np.ones(w), "full")[: x.size]
    out: NDArray[np.float64] = c / np.minimum(np.arange(1, x.size + 1), w)
    return out


def streamem_detect(batch: int = 1, smooth: int = 1, **params: Any) -> Detect:
    """streamem on one file: warm up on the training rows, then stream the test rows.

    ``batch`` events go into each ``process`` call (1 = true streaming; a batch as long as
    the test part = the model frozen after training, as the leaderboard models are).
    ``smooth`` > 1 compares the trailing mean of the last ``smooth`` surprises (causal)
    with the detector's own threshold, like the leaderboard notebooks' window smoothing.
    """
    import streamem

    def detect(
        train: NDArray[np.float64], test: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        det = streamem.Detector(warmup=len(train), random_state=0, **params)
        det.process(train)
        surprise, limit = [], []
        for i in range(0, len(test), batch):
            r = det.process(test[i : i + batch])
            surprise.append(r.surprise)
            limit.append(-np.log10(r.threshold))
        s = _trailing_mean(np.concatenate(surprise), smooth)
        return s > np.concatenate(limit), s

    return detect


RCF_ROW = "RCF (AWS, OpenSearch settings: 50 trees, sample 256), anomaly grade > 0"
SLOW_SENSORS = ("Temperature", "Thermocouple")


def without_slow_sensors(inner: Detect, names: tuple[str, ...]) -> Detect:
    """Feed ``inner`` every sensor except the two slowly drifting temperatures."""
    keep = [i for i, n in enumerate(names) if n not in SLOW_SENSORS]

    def detect(
        train: NDArray[np.float64], test: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        return inner(train[:, keep], test[:, keep])

    return detect


def hotelling_t2(
    train: NDArray[np.float64], test: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Reference row: the leaderboard's "T-squared" detector, written from its description.

    Standardise with the training mean/std, T² = zᵀ S⁻¹ z with S the training covariance,
    upper control limit UCL = m(n−1)(n+1)/(n(n−m)) · F⁻¹(0.999; m, n−m) (F quantile taken
    on a 10,000-point grid over [0, 15] as upstream), trailing median of T² over 5 rows
    (computed over the whole file), flag where it exceeds 2·UCL. Running it through our
    protocol and metrics must give the published row; it checks the harness, not streamem.
    """
    from scipy import stats

    mu, sd = train.mean(axis=0), train.std(axis=0)
    z = (train - mu) / sd
    inv = np.linalg.inv(np.cov(z.T))
    n, m = z.shape
    grid = np.linspace(0, 15, 10_000)
    c = grid[stats.f.cdf(grid, m, n - m) < 0.999][-1]
    ucl = m * (n - 1) * (n + 1) / (n * (n - m)) * c
    allz = (np.vstack([train, test]) - mu) / sd
    t2 = np.einsum("ij,jk,ik->i", allz, inv, allz)
    med = np.full(t2.size, np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(t2, 5)
    med[4:] = np.median(windows, axis=1)
    flags = np.nan_to_num(med, nan=0.0) > 2 * ucl
    return flags[len(train) :], np.nan_to_num(med[len(train) :], nan=0.0)


def peer_detect(kind: str, q: float) -> Detect:
    """A peer with the shared expanding-quantile threshold (see bench.peers.run_peer)."""

    def detect(
        train: NDArray[np.float64], test: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        peer = RiverHST(train, online_scaling=True) if kind == "HST" else PysadModel(kind)
        return run_peer(peer, train, test, q)

    return detect


def rcf_detect(shingle: int = 1, q: float | None = None) -> Detect:
    """AWS Random Cut Forest (:mod:`bench.rcf`, OpenSearch's settings) on one file.

    The forest streams the training rows and then the test rows, score then update. With
    ``q`` None a test row is flagged where RCF's own thresholder gives it an anomaly grade
    above 0 (what OpenSearch reports as an anomaly); otherwise where its RCF score exceeds
    the ``q`` quantile of every score before it (the shared peer rule, minus the
    skip-learning part: the Java forest learns every row).
    """

    def detect(
        train: NDArray[np.float64], test: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        from bench import rcf

        out = rcf.run(np.vstack([train, test]), shingle=shingle)
        score = np.nan_to_num(out.score, nan=0.0)
        if q is None:
            flags = np.nan_to_num(out.grade, nan=0.0) > 0
        else:
            flags = np.zeros(score.size, dtype=bool)
            seen: list[float] = []
            for i, v in enumerate(score):
                if i >= len(train) and seen:
                    flags[i] = v > seen[min(int(q * len(seen)), len(seen) - 1)]
                bisect.insort(seen, float(v))
        return flags[len(train) :], score[len(train) :]

    return detect


def _row(name: str, r: SkabResult, secs: float) -> list[str]:
    f1, far, mar = r.binary
    n = r.nab
    return [
        name,
        f"{f1:.2f}",
        f"{far:.2f}",
        f"{mar:.2f}",
        f"{n.standard:.2f}",
        f"{n.low_fp:.2f}",
        f"{n.low_fn:.2f}",
        str(r.missed_cps),
        str(r.false_positive_cps),
        f"{r.auc:.3f}",
        f"{secs:.1f}",
    ]


HEAD = [
    "detector",
    "F1",
    "FAR %",
    "MAR %",
    "NAB std",
    "NAB LowFP",
    "NAB LowFN",
    "missed CPs",
    "FPs",
    "ROC-AUC",
    "time s",
]


def _fmt(v: Any) -> str:
    return "–" if v is None else str(v)


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items())


def _pick(
    scored: list[tuple[dict[str, Any], SkabResult]], max_far: float
) -> tuple[dict[str, Any], SkabResult]:
    """The highest-F1 setting among those with FAR <= ``max_far`` (all if none qualifies)."""
    ok = [(p, r) for p, r in scored if r.binary[1] <= max_far] or scored
    return max(ok, key=lambda pr: pr[1].binary[0])


#: Runner-up settings (by development F1, within the FAR bound) also run on the check files,
#: after the choice, to show how sensitive the outcome is to the exact pick.
N_RUNNERS_UP = 3


def choose_on_dev(
    files: list[SkabFile],
) -> tuple[
    dict[str, Any], list[list[str]], SkabResult, SkabResult, SkabResult, dict[str, Any],
    list[list[str]],
]:
    """Grid over :data:`SPLIT_GRID` on the development files; the chosen setting's results.

    Returns the chosen parameters, the development grid rows, the chosen setting's results
    on the development files, on the check files and on all files, the setting the old
    rule (development FAR <= 15 %) would have chosen, and rows for the runner-ups on the
    check files.
    """
    dev = [f for f in files if f.name.startswith(DEV_PREFIX)]
    check = [f for f in files if not f.name.startswith(DEV_PREFIX)]
    rows, scored = [], []
    for values in itertools.product(*SPLIT_GRID.values()):
        params = {"alert_rate": 1e-3, **dict(zip(SPLIT_GRID, values, strict=True))}
        t = time.perf_counter()
        r = run_protocol(dev, streamem_detect(**params))
        rows.append(_row(_label(params), r, time.perf_counter() - t))
        scored.append((params, r))
    params, r_dev = _pick(scored, DEV_MAX_FAR)
    old_rule = _pick(scored, 15.0)[0]
    detect = streamem_detect(**params)
    ranked = sorted(
        (pr for pr in scored if pr[1].binary[1] <= DEV_MAX_FAR and pr[0] != params),
        key=lambda pr: -pr[1].binary[0],
    )
    runners = []
    for p, r in ranked[:N_RUNNERS_UP]:
        t = time.perf_counter()
        rc = run_protocol(check, streamem_detect(**p))
        runners.append(_row(f"{_label(p)} (valve1/* F1 {r.binary[0]:.3f}, FAR "
                            f"{r.binary[1]:.2f} %): valve2/* + other/*", rc,
                            time.perf_counter() - t))
    return (params, rows, r_dev, run_protocol(check, detect), run_protocol(files, detect),
            old_rule, runners)


def measure(path: Path, quick: bool) -> tuple[Section, dict[str, SkabResult]]:
    """Run the rows and build the section."""
    files: list[SkabFile] = load_skab(path)
    names = files[0].feature_names
    runs: dict[str, Detect] = (
        {
            DEFAULT_ROW: streamem_detect(**DEFAULT),
            "river HalfSpaceTrees after MinMaxScaler (q=0.99)": peer_detect("HST", 0.99),
            "PySAD LODA (q=0.99)": peer_detect("LODA", 0.99),
            RCF_ROW: rcf_detect(),
            "T-squared, re-implemented here (harness check)": hotelling_t2,
        }
        if quick
        else {
            DEFAULT_ROW: streamem_detect(**DEFAULT),
            DETREND_ROW: streamem_detect(**DETREND),
            DETREND_AUTO_ROW: streamem_detect(**DETREND_AUTO),
            "streamem, defaults, frozen after warm-up (one batch per test part)": streamem_detect(
                batch=100_000, **DEFAULT
            ),
            "streamem, alert_rate 1e-2, K=1, streaming, 5-event trailing mean": streamem_detect(
                smooth=5, alert_rate=1e-2, n_components=1
            ),
            "streamem, defaults, 6 sensors (no Temperature/Thermocouple)": (
                without_slow_sensors(streamem_detect(**DEFAULT), names)
            ),
            "streamem, defaults, 6 sensors, 5-event trailing mean": without_slow_sensors(
                streamem_detect(smooth=5, **DEFAULT), names
            ),
            "river HalfSpaceTrees after MinMaxScaler (q=0.99)": peer_detect("HST", 0.99),
            "river HalfSpaceTrees after MinMaxScaler (q=0.9)": peer_detect("HST", 0.9),
            "PySAD LODA (q=0.99)": peer_detect("LODA", 0.99),
            "PySAD LODA (q=0.9)": peer_detect("LODA", 0.9),
            RCF_ROW: rcf_detect(),
            "RCF (AWS, OpenSearch settings), shingle 8, anomaly grade > 0": rcf_detect(8),
            "RCF (AWS, OpenSearch settings), RCF score above q=0.99": rcf_detect(q=0.99),
            "T-squared, re-implemented here (harness check)": hotelling_t2,
        }
    )
    results: dict[str, SkabResult] = {}
    rows = []
    t0 = time.perf_counter()
    with one_core() as pinned, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in runs.items():
            t = time.perf_counter()
            results[name] = run_protocol(files, fn)
            rows.append(_row(name, results[name], time.perf_counter() - t))
        split = None
        if not quick:
            t = time.perf_counter()
            split = choose_on_dev(files)
            chosen_name = f"streamem, chosen on valve1/* only ({_label(split[0])}), streaming"
            results[chosen_name] = split[4]
            rows.insert(1, _row(chosen_name, split[4], time.perf_counter() - t))
        grid_rows = []
        tried: dict[str, SkabResult] = {}
        if not quick:
            for a, k, c, w in itertools.product(
                (1e-4, 1e-3, 1e-2), (1, 2, "auto"), ("full", "diag"), (1, 5)
            ):
                t = time.perf_counter()
                r = run_protocol(
                    files,
                    streamem_detect(smooth=w, alert_rate=a, n_components=k, covariance_type=c),
                )
                label = f"alert_rate {a:g}, K {k}, {c}, smooth {w}"
                tried[label] = r
                grid_rows.append(_row(label, r, time.perf_counter() - t))
    elapsed = time.perf_counter() - t0
    board = [
        [f"*{n}* (leaderboard)", *(_fmt(v) for v in vals), "–", "–"] for n, *vals in LEADERBOARD
    ]
    table = md_table(HEAD, rows + board)
    every = {
        n: r
        for n, r in {**results, **tried}.items()
        if n.startswith(("streamem", "alert")) and "6 sensors" not in n
    }
    best_name = max(every, key=lambda n: every[n].binary[0])
    best = every[best_name]
    ok = [n for n, r in every.items() if r.binary[1] <= 15]
    best_ok = max(ok, key=lambda n: every[n].binary[0]) if ok else None
    def hits(r: SkabResult) -> bool:
        return r.binary[0] >= 0.8 and r.binary[1] <= 15

    if split is not None:
        p, _, r_dev, r_chk, r_all, _, _ = split
        verdict = (
            ("**met**" if hits(r_all) else "**not met**")
            + f" by the setting chosen on the valve1/* files alone ({_label(p)}): all 34 files"
            f" F1 {r_all.binary[0]:.2f} / FAR {r_all.binary[1]:.1f} %; the 18 files not used"
            f" for the choice (valve2/*, other/*) F1 {r_chk.binary[0]:.2f} / FAR"
            f" {r_chk.binary[1]:.1f} %"
            + (" (met there too)" if hits(r_chk) else " (not met there)")
        )
    else:
        verdict = "not assessed in --quick mode (the split selection is skipped)"
    best_nab = max(every, key=lambda n: every[n].nab.standard)
    within = (
        f"best F1 with FAR <= 15 %: {every[best_ok].binary[0]:.2f} ({best_ok}, FAR "
        f"{every[best_ok].binary[1]:.1f} %)"
        if best_ok
        else "no 8-sensor setting kept FAR <= 15 %"
    )
    cmd = f"python -m bench.skab {path}" + (" --quick" if quick else "")
    old_rule_text = ""
    if split is not None:
        alt = split[5]
        old_rule_text = (
            " The old rule (valve1 FAR <= 15 %) would have chosen the same setting."
            if alt == split[0]
            else f" The old rule (valve1 FAR <= 15 %) would have chosen {_label(alt)}."
        )
    split_text = ""
    if split is not None:
        p, dev_rows, r_dev, r_chk, r_all, _, runner_rows = split
        split_text = (
            "### Split selection (choose on valve1/*, report on the rest)\n\n"
            + md_table(
                HEAD,
                [
                    _row(f"chosen ({_label(p)}): valve1/* (16 files, used for the choice)",
                         r_dev, 0.0),
                    _row("same setting: valve2/* + other/* (18 files, not used)", r_chk, 0.0),
                    _row("same setting: all 34 files", r_all, 0.0),
                ],
            )
            + f"\nSensitivity, run *after* the choice and not used for it: the next"
            f" {N_RUNNERS_UP} settings by valve1/* F1 (within the valve1 FAR bound) on the 18"
            " unseen files:\n\n"
            + md_table(HEAD, runner_rows)
            + "\nThe development grid (valve1/* only; time s is per grid cell):\n\n"
            + md_table(HEAD, dev_rows)
        )
    grid = (
        "### Every setting tried (streaming, batch 1; public `Detector` parameters only)\n\n"
        + md_table(HEAD, grid_rows)
        if grid_rows
        else "(grid skipped in --quick mode)\n"
    )
    peers = (f"river {version('river')}, PySAD {version('pysad')}, randomcutforest 4.2.0 "
             "(Java)")
    body = f"""{machine_lines(cmd, pinned)}- peers: {peers}
- data: {len(files)} labelled files, {sum(len(f.X) - 400 for f in files):,} test rows, \
{sum(int(f.changepoint[400:].sum()) for f in files)} changepoints in the test parts
- run time: {elapsed:.0f} s. The results are deterministic (seeded), so nothing is repeated.

**How each row ran.** Every detector gets a fresh model per file, learns rows [0, 400)
and then streams rows [400, end): each event is scored with the model as it was before
the event, then (if not flagged) learned; nothing ever sees a label. "Frozen" feeds the
whole test part in one `process` call, so every test row is scored by the model fitted on
the 400 training rows (what the leaderboard models do). River HST and LODA have no
calibrated threshold: they flag a score above the q quantile of all scores seen so far
(training rows included) and skip learning flagged events. RCF is AWS's Java
`ThresholdedRandomCutForest` with OpenSearch's settings (see the ADBench section): it
streams the training rows, then the test rows, score then update (it learns every row),
and flags a row where its own thresholder gives an anomaly grade above 0, as OpenSearch
reports an anomaly (shingle 1, and 8 as OpenSearch's default); the "q=0.99" row ranks by
its RCF score with the shared expanding-quantile rule instead. Predicted changepoints are
`|diff(flags)|` as in the SKAB notebooks. Leaderboard rows are copied from SOURCE.md, not
re-run. FAR and MAR are in percent; NAB is 100 for a perfect detector, 0 for the null one.
NAB uses the 60 s right windows. "Missed CPs" and "FPs" are counted as the leaderboard
counts them, which is *not* with the 60 s windows: SKAB's notebooks take them from
`chp_score(metric="average_time", anomaly_window_destination="righter", portion=1)`, whose
windows are (test-part span) / (changepoints + 1) wide.

**Why the defaults over-alarm here, and drift tolerance.** Most false alarms come from a
handful of files whose *normal* test rows have drifted away from the 400 warm-up rows in
the two slow thermal sensors (median shifts of 3–19 warm-up standard deviations in
Temperature or Thermocouple; `det.explain` names one of them for ~95 % of the false alarms
there). With `protect_model` on, those events are flagged and therefore never learned, so
the model never catches up within a file. `Detector` has opt-in drift tolerance
(`detrend_half_life`, `detrend_min_autocorr=0.75`): a feature whose warm-up lag-1
autocorrelation is at least 0.75 is seen as its residual from an EWMA baseline (updated
with every event), the SPC remedy for autocorrelated data. The half-life is either fixed
(e.g. 10 events) or `"auto"`: fitted per slow feature on its warm-up rows as the half-life
(ladder 0.5 … 100 events) whose EWMA forecasts it best one step ahead in least squares
(simple exponential smoothing, i.e. an ARIMA(0,1,1) fit). On SKAB's 1 Hz temperatures that
gives 0.5–2 events, so the residual is close to the event-to-event change and a thermal
ramp faster than anything in the warm-up no longer alarms; a fixed 10 or 30 events lags a
ramp by 14 or 43 events' worth of slope. Nothing in it knows SKAB's column names: on these
files the rule picks Temperature and Thermocouple in most files, but also an accelerometer
or the flow rate in a few. It is off by default because it changes what an alarm means
for slow features (a fault that *holds* one at a wrong level alarms only until the
baseline catches up, one or two events with `"auto"` on a random-walk-like sensor) and
because on the shipped sample stream it adds false alarms (51 flagged with half-life 10,
46 with `"auto"`, instead of the 9 injected anomalies). With K=auto alone it trades recall
for false alarms (the row "defaults + drift tolerance (detrend_half_life auto)"): on the
detrended warm-ups BIC picks 2 components in most valve1/* files, too coarse for SKAB's
subtle faults, which a fixed K of 3-5 with 5-event smoothing does catch. The "6 sensors"
rows (the two thermal columns simply left out) were chosen *after* the failure analysis on
the test data and stay only as a reference.

**Honest selection.** SKAB has no validation split. The row "chosen on valve1/* only" comes
from a grid ({" × ".join(f"{k} {list(v)}" for k, v in SPLIT_GRID.items())}, alert_rate
1e-3) run on the 16 valve1/* files alone; the rule was the highest valve1 F1 among the
settings with valve1 FAR <= {DEV_MAX_FAR:g} %, a margin below the 15 % target (fixed before
anything new was run on the unseen files, because in the previous round the setting chosen
with a 15 % bound rose from 13.7 % FAR on valve1/* to 16.3 % on them). The chosen setting was then
run once on the other 18 files and on all 34 (table "Split selection" below).{old_rule_text} The
detrending parameters (autocorrelation 0.75, the half-life ladder and the least-squares
rule of `"auto"`) and the score smoothing option were themselves designed while looking
at valve1/* only: the `"auto"` half-life came from seeing on valve1/* that short fixed
half-lives (1–2 events) beat 10 and 30, and that the one-step least-squares half-life of
the thermal sensors' warm-up rows is in that range. Its result is not sensitive to the
autocorrelation cut (valve1/* F1 0.86–0.87 for cuts 0.5–0.85 with K 3 and 5; 0.84 at 0.95).
K=8 was dropped from the grid (in the previous round its valve1/* F1 never beat K=5, to
two decimals). K=auto stays the library default because the BIC choice is general,
although on SKAB's 400-row warm-ups it picks 2-3 components and larger fixed K does better.

**Why the valve1/* setting is not the default** (issue 13 asks for F1 >= 0.80 and FAR <= 15 %
with `Detector()` defaults). The rule for changing a library default: it must improve SKAB
valve1/* F1 at valve1/* FAR <= {DEV_MAX_FAR:g} % *and* lower neither the ADBench dev means
(ROC, PR) nor the NAB dev mean ROC-AUC over categories by more than 0.005. Measured with
streamem alone (2026-12-03, ranked by the NLL `scores`): `detrend_half_life="auto"` as a
default gives SKAB valve1/* F1 0.70 / FAR 1.0 % (all files 0.72 / 4.7 %) but NAB mean ROC
0.544 (defaults 0.567); with `smooth_window=5, regime_min_events=400` as well, SKAB all files
0.75 / 4.4 %, NAB 0.550, ADBench PR 0.305 (defaults 0.309); adding K=3, SKAB 0.75 / 4.2 %,
ADBench 0.678 / 0.299. Detrending treats NAB's slow, autocorrelated series as residuals, so
level changes there stop ranking high; none of the candidates passes the rule, so the
defaults stay and the SKAB target with defaults remains unmet (their FAR comes from the
thermal sensors drifting out of the 400 warm-up rows, see "6 sensors").

**Bisect (the opt-in setting's drop, 2026-12-03).** The setting chosen on valve1/* in
the 2026-11-26 round (K=3, smooth_window 5, detrend_half_life auto, regime_min_events 400)
gave valve1/* F1 0.871 / FAR 5.4 % then (all files 0.84 / 7.2 %) and 0.746 / 2.2 % on the
2026-12-03 tree (valve1/* streamed as in this section, batch 1). Three commits of
2026-12-02: the cold start (5d2fd73, scores the warm-up and keeps flagged events out of
its buffer: 0.836), `covariance_type="auto"` as the default (bc65d5a: 0.762) and the cold
start's buffer keeping out only gross outliers (5e012b3: 0.746). The main step is the
structure: on the detrended 400-row warm-ups BIC prefers diagonal covariances (e.g. valve1/10: full
log-likelihood -2913 vs diagonal -3008 at K=3, 84 more parameters, penalty 503), and
SKAB's faults are partly breaks of the sensors' correlations. With
`covariance_type="full"` the same setting gives 0.863 / 5.5 % on the current tree (0.871 /
5.4 % with `cold_start=False` as well). It is a behaviour change of the new default, not a
bug, so the grid now includes `covariance_type` (auto, full) and the choice is made by the
same valve1/* rule. Making "full whenever feasible" the default fails the rule for a
default change: SKAB valve1/* with defaults F1 0.749 -> 0.713, ADBench dev means 0.691 /
0.310 -> 0.685 / 0.291 (measured with streamem alone, ranked by surprise). The
widened grid (128 cells, valve1/* only, 2026-12-03) chose K=3, smooth_window 5,
detrend_half_life auto, regime_min_events 1e9, covariance_type full: valve1/* F1 0.865 /
FAR 6.2 %, the 18 unseen files 0.81 / 10.1 %, all 34 files 0.84 / 8.2 % (NAB standard
35.7); the runner-up with regime_min_events 400 gives 0.81 / 9.1 % on the unseen files.

**Harness check.** The "T-squared, re-implemented here" row is Hotelling's T² with the
leaderboard notebook's settings (fit on the 400 training rows with scaling, 5-row trailing
median, flag above 2 × UCL at p = 0.999), written from that description and run through
this harness. It reproduces the published T-squared row exactly (F1 0.66, FAR 19.21 %,
MAR 42.60 %, NAB 19.54 / 10.20 / 24.31, 70 missed CPs, 106 FPs), which checks the split,
the pooling, the F1/FAR/MAR formulas, the NAB scoring and the CP counts end to end.

**Target** (issue): outlier F1 >= 0.80 with FAR <= 15 % — {verdict}.
Best 8-sensor streamem F1 over every row and setting below: {best.binary[0]:.2f}
({best_name}) at FAR {best.binary[1]:.1f} %; {within}. Best NAB (standard):
{every[best_nab].nab.standard:.1f} ({best_nab}).
The settings were chosen by looking at these same test parts (SKAB has no separate
validation split), so the best grid rows are optimistic; the first row (defaults) is the
honest out-of-the-box figure.

{table}
{split_text}
{grid}"""
    d = results[next(iter(runs))]
    f1, far, mar = d.binary
    facts: dict[str, str] = {
        "SKAB outlier F1 / FAR / MAR (defaults, streaming)": (
            f"{f1:.2f} / {far:.1f} % / {mar:.1f} % (best published F1 0.78)"
        ),
        "SKAB NAB standard (defaults, streaming)": (
            f"{d.nab.standard:.1f} (T-squared 19.5, best published 32.4)"
        ),
    }
    dt = results.get(DETREND_ROW)
    if dt is not None:
        facts["SKAB outlier F1 / FAR, defaults + drift tolerance (detrend_half_life 10)"] = (
            f"{dt.binary[0]:.2f} / {dt.binary[1]:.1f} %"
        )
    if split is not None:
        p, _, _, r_chk, r_all, _, _ = split
        facts["SKAB, setting chosen on valve1/* only (" + _label(p) + ")"] = (
            f"all files F1 {r_all.binary[0]:.2f} / FAR {r_all.binary[1]:.1f} % / NAB "
            f"{r_all.nab.standard:.1f}; unseen files F1 {r_chk.binary[0]:.2f} / FAR "
            f"{r_chk.binary[1]:.1f} %"
        )
    short = {"PySAD LODA (q=0.99)": "LODA q=0.99",
             "river HalfSpaceTrees after MinMaxScaler (q=0.99)": "HST q=0.99",
             RCF_ROW: "RCF grade > 0"}
    if all(n in results for n in short):
        facts["SKAB peers, same protocol: F1 / FAR"] = "; ".join(
            f"{label} {results[n].binary[0]:.2f} / {results[n].binary[1]:.1f} %"
            for n, label in short.items()
        )
    six = results.get("streamem, defaults, 6 sensors, 5-event trailing mean")
    if six is not None:
        facts[
            "SKAB without the 2 drifting temperature sensors, 5-event mean (chosen after"
            " failure analysis)"
        ] = f"F1 {six.binary[0]:.2f} / FAR {six.binary[1]:.1f} % / NAB {six.nab.standard:.1f}"
    if tried:
        facts["SKAB best setting tried (tuned on the test parts)"] = (
            f"F1 {best.binary[0]:.2f} / FAR {best.binary[1]:.1f} % ({best_name}); "
            f"NAB {every[best_nab].nab.standard:.1f} ({best_nab})"
        )
    return Section("skab", "SKAB (leaderboard protocol)", body, facts), results


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.skab", description=__doc__)
    p.add_argument("path", nargs="?", type=Path, default=DEFAULT_SKAB, help="SKAB data folder")
    p.add_argument("--quick", action="store_true", help="skip the parameter grid")
    args = p.parse_args(argv)
    sec, _ = measure(args.path, args.quick)
    write_section(sec, default_doc(args.quick))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
