"""The SKAB benchmark (Skoltech Anomaly Benchmark): loading and the leaderboard protocol.

The protocol is the one behind the SKAB leaderboard (see ``shared/data/skab/SOURCE.md``):
the 34 labelled files only; the first 400 rows of every file are for training or warm-up;
every figure is computed on the remaining rows ("test parts"), with the confusion matrix
pooled over all files and changepoints scored NAB-style with a 60 s window to the right.
The data are read where they lie; nothing is copied.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from streamem.errors import InvalidInputError, SourceError
from streamem.evaluation.metrics import Confusion, confusion, roc_auc
from streamem.evaluation.nab import (
    NabCounts,
    NabResult,
    changepoint_predictions,
    nab_counts,
    nab_score,
    skab_binary,
)

__all__ = ["TRAIN_SIZE", "WINDOW_SECONDS", "SkabFile", "SkabResult", "load_skab", "run_protocol"]

TRAIN_SIZE = 400
WINDOW_SECONDS = 60.0

#: ``detect(train, test) -> (is_anomaly, scores)`` for one file; scores may be ``None``.
DetectFn = Callable[
    [NDArray[np.float64], NDArray[np.float64]],
    tuple[NDArray[np.bool_], NDArray[np.float64] | None],
]


@dataclass(frozen=True)
class SkabFile:
    """One labelled SKAB file.

    Parameters
    ----------
    name
        Path relative to the data folder, e.g. ``valve1/3.csv``.
    timestamps
        Seconds since the epoch, shape (n,).
    X
        Sensor values, shape (n, 8).
    anomaly
        Outlier labels, shape (n,).
    changepoint
        Changepoint labels, shape (n,).
    feature_names
        The 8 sensor column names.

    Examples
    --------
    >>> f = SkabFile("x.csv", np.arange(3.0), np.zeros((3, 1)), np.zeros(3, bool),
    ...              np.zeros(3, bool), ("a",))
    >>> f.X.shape
    (3, 1)
    """

    name: str
    timestamps: NDArray[np.float64]
    X: NDArray[np.float64]
    anomaly: NDArray[np.bool_]
    changepoint: NDArray[np.bool_]
    feature_names: tuple[str, ...] = field(default=())


def _read(path: Path, root: Path) -> SkabFile:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header, body = rows[0], [r for r in rows[1:] if r]
    if header[0] != "datetime" or header[-2:] != ["anomaly", "changepoint"]:
        raise SourceError(
            f"{path}: unexpected header {header[:2]}…{header[-2:]}; "
            "point the SKAB path at the upstream data/ folder"
        )
    times = np.array([np.datetime64(r[0].replace(" ", "T"), "s") for r in body])
    values = np.array([[float(v) for v in r[1:]] for r in body])
    return SkabFile(
        name=path.relative_to(root).as_posix(),
        timestamps=times.astype("int64").astype(float),
        X=values[:, :-2],
        anomaly=values[:, -2] == 1.0,
        changepoint=values[:, -1] == 1.0,
        feature_names=tuple(header[1:-2]),
    )


def load_skab(root: str | Path) -> list[SkabFile]:
    """Load the 34 labelled SKAB files (the anomaly-free file is skipped, as upstream does).

    Parameters
    ----------
    root
        The SKAB ``data`` folder (holding ``valve1/``, ``valve2/``, ``other/``).

    Returns
    -------
    list of SkabFile
        Sorted by name.

    Raises
    ------
    SourceError
        If the folder holds no labelled CSV files.

    Examples
    --------
    >>> load_skab("/nonexistent")
    Traceback (most recent call last):
    ...
    streamem.errors.SourceError: no labelled SKAB CSV files under /nonexistent; ...
    """
    base = Path(root)
    paths = sorted(p for p in base.rglob("*.csv") if "anomaly-free" not in p.parts)
    if not paths:
        raise SourceError(
            f"no labelled SKAB CSV files under {base}; pass the folder that holds "
            "valve1/, valve2/ and other/ (e.g. ../shared/data/skab)"
        )
    return [_read(p, base) for p in paths]


@dataclass(frozen=True)
class SkabResult:
    """Pooled scores of one detector under the SKAB protocol.

    Parameters
    ----------
    counts
        Confusion counts summed over the test parts.
    nab
        NAB-like changepoint scores.
    per_file
        File name -> its own confusion counts.
    auc
        ROC-AUC of the pooled test scores (NaN when the detector gave no scores).
    missed_cps, false_positive_cps
        Missed changepoints and predictions outside every window as the leaderboard's
        "Missed CPs" / "FPs" columns count them: SKAB's notebooks get these from
        ``chp_score(..., metric="average_time", anomaly_window_destination="righter",
        portion=1)``, i.e. with windows as wide as the test part's time span divided by
        (changepoints + 1), not the 60 s NAB windows. (Checked: this reproduces the
        T-squared row's 70 and 106 exactly.)

    Examples
    --------
    >>> from streamem.evaluation.nab import NabResult
    >>> r = SkabResult(Confusion(6, 2, 8, 4), NabResult(0, 0, 0, 0, 0, 0, 0.0), {}, 0.5)
    >>> [round(v, 2) for v in r.binary]
    [0.67, 20.0, 40.0]
    """

    counts: Confusion
    nab: NabResult
    per_file: dict[str, Confusion]
    auc: float
    missed_cps: int = 0
    false_positive_cps: int = 0

    @property
    def binary(self) -> tuple[float, float, float]:
        """``(F1, FAR %, MAR %)``."""
        return skab_binary(self.counts)


def run_protocol(
    files: Sequence[SkabFile], detect: DetectFn, train_size: int = TRAIN_SIZE
) -> SkabResult:
    """Run one detector over every file under the leaderboard protocol and pool the result.

    Parameters
    ----------
    files
        From :func:`load_skab`.
    detect
        Called once per file as ``detect(X[:train_size], X[train_size:])``; returns the 0/1
        flags for the test rows and, optionally, their scores. A fresh model per file.
    train_size
        Rows per file for training/warm-up (SKAB: 400).

    Returns
    -------
    SkabResult
        Pooled confusion, F1/FAR/MAR, NAB scores, per-file counts.

    Examples
    --------
    A detector that flags every test row on a tiny synthetic file:

    >>> t = np.arange(10.0); lab = np.array([0] * 6 + [1] * 4, bool)
    >>> f = SkabFile("a.csv", t, np.zeros((10, 1)), lab, lab & (t == 6), ("x",))
    >>> r = run_protocol([f], lambda tr, te: (np.ones(len(te), bool), None), train_size=4)
    >>> r.counts
    Confusion(tp=4, fp=2, tn=0, fn=0)
    """
    pooled = Confusion(0, 0, 0, 0)
    per_file: dict[str, Confusion] = {}
    cps: list[NabCounts] = []
    missed_wide = fp_wide = 0
    all_scores: list[NDArray[np.float64]] = []
    all_labels: list[NDArray[np.bool_]] = []
    for f in files:
        flags, scores = detect(f.X[:train_size], f.X[train_size:])
        flags = np.asarray(flags, dtype=bool)
        truth = f.anomaly[train_size:]
        if flags.shape != truth.shape:
            raise InvalidInputError(
                f"{f.name}: detector returned {flags.size} flags for {truth.size} test rows; "
                "return one flag per test row"
            )
        c = confusion(truth, flags)
        per_file[f.name] = c
        pooled = pooled + c
        t = f.timestamps[train_size:]
        true_cp, pred_cp = t[f.changepoint[train_size:]], t[changepoint_predictions(flags)]
        cps.append(nab_counts(true_cp, pred_cp, WINDOW_SECONDS))
        if t.size:
            wide = nab_counts(true_cp, pred_cp, (t[-1] - t[0]) / (true_cp.size + 1))
            missed_wide += wide.n_fn
            fp_wide += wide.n_fp
        if scores is not None:
            all_scores.append(np.asarray(scores, dtype=float))
            all_labels.append(truth)
    auc = float("nan")
    if all_scores and len(all_scores) == len(files):
        s, y = np.concatenate(all_scores), np.concatenate(all_labels)
        finite = np.isfinite(s)
        if finite.any() and 0 < y[finite].sum() < finite.sum():
            auc = roc_auc(y[finite], s[finite])
    return SkabResult(pooled, nab_score(cps), per_file, auc, missed_wide, fp_wide)
