"""Detection quality on the NAB development series, streamem beside its peers.

Question: on NAB's univariate series (``shared/data/nab-dev``, every category except the
held-out realKnownCause), how well do streamem and the peers of :mod:`bench.quality` rank
the points inside NAB's anomaly windows, and what is their NAB score?

Protocol: every detector sees a file from its first point on, score before learn, in
mini-batches of 64 (RCF: one point at a time). A point detector needs context to see a
time series, so every detector gets the same 8-point shingle (the value and the 7 before
it): RCF builds it internally (OpenSearch's shingle size 8), the others get the shingled
vectors; the first 7 points are unscored for all. ROC-AUC and PR-AUC per file use the raw
scores, points inside a window as positives, unscored points lowest; files without windows
have no AUC. NAB's score needs one threshold for the whole corpus, which raw scores in
different units cannot share, so each detector's score is turned into its causal running
percentile within the file (the rank of the point's score among the file's scores so far;
no future data) before NAB's threshold sweep (:mod:`streamem.evaluation.numenta`).

Run: ``python -m bench.nab [PATH]`` (PATH defaults to ../shared/data/nab-dev).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.common import Section, machine_lines, md_table, one_core, shared_data
from bench.peers import version
from bench.quality import (
    HSTPeer,
    LodaPeer,
    OfflineGMM,
    RcfPeer,
    Runner,
    StreamemPeer,
    auc_pair,
)
from streamem.evaluation import numenta

DEFAULT_NAB = shared_data("nab-dev")
SHINGLE = 8
RAW_ROW = "streamem, raw value (d=1)"


@dataclass(frozen=True)
class Series:
    """One NAB file: values, window labels per point, windows as index pairs."""

    name: str  # category/file.csv
    values: NDArray[np.float64]
    in_window: NDArray[np.bool_]
    windows: list[tuple[int, int]]

    @property
    def category(self) -> str:
        return self.name.split("/")[0]


def load(path: Path) -> list[Series]:
    """Every labelled CSV under ``path/data`` with its windows from ``combined_windows.json``."""
    windows = json.loads((path / "labels" / "combined_windows.json").read_text())
    out = []
    for name in sorted(windows):
        with (path / "data" / name).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        ts = np.array([r["timestamp"] for r in rows], dtype="datetime64[s]")
        vals = np.array([float(r["value"]) for r in rows])
        lab = np.zeros(len(vals), dtype=bool)
        idx = []
        for lo, hi in windows[name]:
            a = int(np.searchsorted(ts, np.datetime64(lo[:19]), "left"))
            b = int(np.searchsorted(ts, np.datetime64(hi[:19]), "right")) - 1
            if a <= b:
                lab[a : b + 1] = True
                idx.append((a, b))
        out.append(Series(name, vals, lab, idx))
    return out


def _head(s: Series, n: int) -> Series:
    wins = [(a, min(b, n - 1)) for a, b in s.windows if a < n]
    return Series(s.name, s.values[:n], s.in_window[:n], wins)


def shingles(v: NDArray[np.float64], k: int = SHINGLE) -> NDArray[np.float64]:
    """Rows ``v[i-k+1 .. i]`` for i >= k-1: shape (n - k + 1, k)."""
    return np.lib.stride_tricks.sliding_window_view(v, k).astype(float)


def running_percentile(s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Causal rank of each score among the scores so far (ties half), in (0, 1]; NaN stays."""
    out = np.full(s.size, np.nan)
    seen: list[float] = []
    for i, x in enumerate(s):
        if x != x:
            continue
        lo, hi = bisect.bisect_left(seen, x), bisect.bisect_right(seen, x)
        out[i] = (lo + 0.5 * (hi - lo) + 1.0) / (len(seen) + 1.0)
        bisect.insort(seen, float(x))
    return out


def score_series(peer: Runner, s: Series) -> NDArray[np.float64]:
    """One peer's raw scores for every point of a file (NaN = unscored)."""
    if isinstance(peer, RcfPeer):
        return peer.run(s.values[:, None])
    if peer.name == RAW_ROW:
        return peer.run(s.values[:, None])
    out = np.full(s.values.size, np.nan)
    if s.values.size >= SHINGLE:
        out[SHINGLE - 1 :] = peer.run(shingles(s.values))
    return out


def nab_peers() -> list[Runner]:
    """The NAB table's rows: the ADBench peers with RCF at shingle 8, plus streamem on d=1."""
    raw = StreamemPeer()
    raw.name = RAW_ROW
    return [StreamemPeer(), raw, RcfPeer(shingle=SHINGLE), LodaPeer(), HSTPeer(), OfflineGMM()]


@dataclass
class PeerResult:
    """Per-file AUCs and scores of one peer."""

    roc: dict[str, float] = field(default_factory=dict)
    pr: dict[str, float] = field(default_factory=dict)
    pct: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    secs: float = 0.0


def measure(path: Path, quick: bool = False) -> Section:
    """Run every peer on every file and build the docs section.

    ``quick`` keeps the first file of each category, cut to 1,000 points (CI smoke run).
    """
    series = load(path)
    if quick:
        first: dict[str, Series] = {}
        for s in series:
            first.setdefault(s.category, s)
        series = [_head(s, 1000) for s in first.values()]
    peers = nab_peers()
    names = [p.name for p in peers]
    res = {n: PeerResult() for n in names}
    nll_roc: dict[str, float] = {}  # streamem's row ranked by scores instead of surprise
    t0 = time.perf_counter()
    with one_core() as pinned:
        for i, s in enumerate(series, 1):
            print(f"[{i}/{len(series)}] {s.name}: {s.values.size:,} points, "
                  f"{len(s.windows)} windows", file=sys.stderr, flush=True)
            for p in peers:
                t = time.perf_counter()
                raw = score_series(p, s)
                res[p.name].secs += time.perf_counter() - t
                res[p.name].pct[s.name] = running_percentile(raw)
                if s.in_window.any() and not s.in_window.all():
                    res[p.name].roc[s.name], res[p.name].pr[s.name] = auc_pair(s.in_window, raw)
                    if p.name == "streamem" and isinstance(p, StreamemPeer):
                        nll = np.full(s.values.size, np.nan)
                        nll[s.values.size - p.nll.size :] = p.nll
                        nll_roc[s.name] = auc_pair(s.in_window, nll)[0]
    elapsed = time.perf_counter() - t0
    files = {s.name: numenta.nab_file(s.values.size, s.windows) for s in series}
    cats = sorted({s.category for s in series})

    def nab(n: str, subset: list[str], thr: float, profile: str = "standard") -> float:
        fs = [files[k] for k in subset]
        raw = numenta.raw_score(fs, [res[n].pct[k] for k in subset], thr, profile)
        return numenta.normalised(raw, sum(f.n_windows for f in fs), profile)

    all_names = [s.name for s in series]
    thresholds = {
        (n, prof): numenta.best_threshold([files[k] for k in all_names],
                                          [res[n].pct[k] for k in all_names], prof)[0]
        for n in names for prof in numenta.PROFILES
    }
    overall = {n: {prof: nab(n, all_names, thresholds[n, prof], prof)
                   for prof in numenta.PROFILES} for n in names}

    def mean_auc(n: str, cat: str | None) -> tuple[float, float, int]:
        ks = [k for k in res[n].roc if cat is None or k.startswith(cat + "/")]
        if not ks:
            return float("nan"), float("nan"), 0
        return (float(np.mean([res[n].roc[k] for k in ks])),
                float(np.mean([res[n].pr[k] for k in ks])), len(ks))

    # mean over categories of the per-category mean AUC (NAB's categories weigh equally)
    def cat_mean(n: str) -> tuple[float, float]:
        vals = [mean_auc(n, c) for c in cats if mean_auc(n, c)[2]]
        return float(np.mean([v[0] for v in vals])), float(np.mean([v[1] for v in vals]))

    head = ["detector", "mean ROC-AUC (categories)", "mean PR-AUC (categories)",
            "NAB standard", "NAB low FP", "NAB low FN", "time s"]
    summary = md_table(head, [
        [n, f"{cat_mean(n)[0]:.3f}", f"{cat_mean(n)[1]:.3f}",
         f"{overall[n]['standard']:.1f}", f"{overall[n]['reward_low_fp']:.1f}",
         f"{overall[n]['reward_low_fn']:.1f}", f"{res[n].secs:.0f}"] for n in names])
    cat_rows = []
    for c in cats:
        subset = [s.name for s in series if s.category == c]
        n_files = len(subset)
        n_win = sum(files[k].n_windows for k in subset)
        cells = []
        for n in names:
            roc, pr, k = mean_auc(n, c)
            auc = f"{roc:.3f} / {pr:.3f}" if k else "– / –"
            score = f"{nab(n, subset, thresholds[n, 'standard']):.1f}" if n_win else "–"
            cells.append(f"{auc} / {score}")
        cat_rows.append([c, str(n_files), str(n_win), *cells])
    cat_table = md_table(["category", "files", "windows", *names], cat_rows)
    file_rows = [[s.name, f"{s.values.size:,}", str(len(s.windows)),
                  *(f"{res[n].roc[s.name]:.3f} / {res[n].pr[s.name]:.3f}"
                    if s.name in res[n].roc else "–" for n in names)] for s in series]
    file_table = md_table(["file", "points", "windows", *names], file_rows)
    s_roc = cat_mean("streamem")[0]
    nll_cat_mean = float(np.mean([
        np.mean([v for k, v in nll_roc.items() if k.startswith(c + "/")])
        for c in cats if any(k.startswith(c + "/") for k in nll_roc)
    ])) if nll_roc else float("nan")
    ahead = [n for n in ("RCF (AWS, Java)", "PySAD LODA") if s_roc > cat_mean(n)[0]]
    cmd = f"nice -n 10 python -m bench --only nab --nab {path}" + (" --quick" if quick else "")
    body = f"""{machine_lines(cmd, pinned, timing=False)}- peers: river {version('river')}, \
PySAD {version('pysad')}, scikit-learn {version('scikit-learn')}, randomcutforest 4.2.0
- data: {len(series)} NAB files in {len(cats)} categories (realKnownCause held out), \
{sum(s.values.size for s in series):,} points, {sum(len(s.windows) for s in series)} windows
- run time: {elapsed:.0f} s. Seeds fixed (every peer seed 0): a rerun gives the same table.

**Protocol.** A fresh detector per file streams it from the first point on, in mini-batches
of 64, each scored before it is learned (RCF: point by point, score then update). Every
detector sees the same 8-point shingle (the value and the 7 before it): RCF shingles
internally (size 8, OpenSearch's default), the others get the shingled vectors, so the
first 7 points are unscored for all; the extra row "{RAW_ROW}" feeds streamem the bare
value. Peers and their settings as in the ADBench section (the offline GMM is fitted on
the file's shingles). ROC-AUC and PR-AUC per file use the raw scores with the points inside
NAB's windows as positives and unscored points lowest; the means are over categories of
the per-category mean (files without windows have no AUC). NAB scores follow NAB's
sweeper (probation 15 %, scaled-sigmoid window weights, one threshold for the whole corpus
chosen to maximise the score, 100 = perfect, 0 = detecting nothing). Raw scores in
different units cannot share one threshold, so every detector's score is first turned
into its causal running percentile within the file (rank among the file's scores so far).
NAB's published detectors output scores in [0, 1] and their scoreboard is on the full
corpus, so these numbers are not comparable with it.

**Target** (issue 13): mean ROC-AUC over categories ahead of RCF and LODA: streamem \
{s_roc:.3f}, RCF {cat_mean('RCF (AWS, Java)')[0]:.3f}, LODA {cat_mean('PySAD LODA')[0]:.3f} \
({'met' if len(ahead) == 2 else 'not met'}). streamem is ranked by `surprise`, as in the
ADBench section; ranked by `scores` (negative log-likelihood), the same runs give \
{nll_cat_mean:.3f}.

{summary}
**Per category** (mean ROC-AUC / mean PR-AUC / NAB standard at the corpus threshold;
artificialNoAnomaly has no windows, so neither AUC nor a normalised NAB score):

{cat_table}
**Per file** (ROC-AUC / PR-AUC):

{file_table}"""
    facts = {
        "NAB dev, mean ROC-AUC over categories / NAB standard (streamem defaults)": (
            f"{s_roc:.3f} / {overall['streamem']['standard']:.1f}"
        ),
        "NAB dev, peers (ROC / NAB standard)": "; ".join(
            f"{n} {cat_mean(n)[0]:.3f} / {overall[n]['standard']:.1f}"
            for n in names[2:]
        ),
    }
    return Section("nab", "NAB dev series (streaming, score before learn)", body, facts)


def main(argv: list[str] | None = None) -> Section:
    from bench.common import default_doc, write_section

    p = argparse.ArgumentParser(prog="python -m bench.nab", description=__doc__)
    p.add_argument("path", nargs="?", type=Path, default=DEFAULT_NAB)
    p.add_argument("--out", type=Path, default=None, help="markdown file to update")
    args = p.parse_args(argv)
    sec = measure(args.path)
    write_section(sec, args.out or default_doc(False))
    print(sec.body)
    return sec


if __name__ == "__main__":
    main()
