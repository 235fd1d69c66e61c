"""SKAB loading and the leaderboard protocol on small files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamem.errors import InvalidInputError, SourceError
from streamem.evaluation.metrics import Confusion
from streamem.evaluation.skab import load_skab, run_protocol

HEADER = "datetime;a;b;anomaly;changepoint\n"


def _write(path: Path, rows: list[tuple[str, float, float, int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{t};{a};{b};{float(y)};{float(c)}\n" for t, a, b, y, c in rows]
    path.write_text(HEADER + "".join(lines))


def _rows(n: int, anomaly_from: int) -> list[tuple[str, float, float, int, int]]:
    out = []
    for i in range(n):
        y = int(i >= anomaly_from)
        out.append(
            (
                f"2020-03-09 10:{i // 60:02d}:{i % 60:02d}",
                float(i),
                1.0 + 10 * y,
                y,
                int(i == anomaly_from),
            )
        )
    return out


def test_load_skips_anomaly_free_and_parses(tmp_path: Path) -> None:
    _write(tmp_path / "valve1" / "0.csv", _rows(10, 6))
    _write(tmp_path / "other" / "1.csv", _rows(8, 5))
    (tmp_path / "anomaly-free").mkdir()
    (tmp_path / "anomaly-free" / "anomaly-free.csv").write_text(
        "datetime;a\n2020-01-01 00:00:00;1\n"
    )
    files = load_skab(tmp_path)
    assert [f.name for f in files] == ["other/1.csv", "valve1/0.csv"]
    f = files[1]
    assert f.X.shape == (10, 2) and f.feature_names == ("a", "b")
    assert f.anomaly.sum() == 4 and np.flatnonzero(f.changepoint).tolist() == [6]
    assert f.timestamps[1] - f.timestamps[0] == 1.0


def test_load_rejects_wrong_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="valve1"):
        load_skab(tmp_path)
    (tmp_path / "x.csv").write_text("time;a\n1;2\n")
    with pytest.raises(SourceError, match="unexpected header"):
        load_skab(tmp_path)


def test_protocol_splits_pools_and_scores(tmp_path: Path) -> None:
    # file A: 10 rows, anomaly from row 6; file B: 8 rows, anomaly from row 5; train_size 4.
    _write(tmp_path / "a" / "1.csv", _rows(10, 6))
    _write(tmp_path / "b" / "1.csv", _rows(8, 5))
    files = load_skab(tmp_path)
    seen: list[tuple[int, int]] = []

    def threshold(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.append((len(train), len(test)))
        return test[:, 1] > 5.0, test[:, 1]

    r = run_protocol(files, threshold, train_size=4)
    assert seen == [(4, 6), (4, 4)]
    # perfect flags on both test parts: A has 4 anomalous of 6, B 3 of 4
    assert r.counts == Confusion(tp=7, fp=0, tn=3, fn=0)
    assert r.binary == (1.0, 0.0, 0.0)
    # each file has one changepoint, found exactly at its start (the rising edge)
    assert r.nab.missed == 0 and r.nab.false_positives == 0
    assert (r.missed_cps, r.false_positive_cps) == (0, 0)
    assert r.nab.standard == pytest.approx(100.0)
    assert r.auc == pytest.approx(1.0)


def test_protocol_checks_flag_length(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "1.csv", _rows(10, 6))
    with pytest.raises(InvalidInputError, match="one flag per test row"):
        run_protocol(load_skab(tmp_path), lambda tr, te: (np.zeros(2, bool), None), train_size=4)


def test_leaderboard_cp_counts_use_wide_windows(tmp_path: Path) -> None:
    # test part: rows 4..19 (t = 4..19 s), one changepoint at row 10; flags rise at row 12
    # and fall at row 14. Leaderboard window = span (15 s) / (1 + 1) = 7.5 s -> [10, 17.5]:
    # both edges (12, 14) fall inside -> first one counts, no FP, no miss.
    # NAB's 60 s window would give the same here; move the falling edge to row 19 (t = 19):
    # outside [10, 17.5] -> one leaderboard FP, but still inside the 60 s NAB window.
    rows = _rows(20, 10)
    _write(tmp_path / "a" / "1.csv", rows)

    def flags_12_to_19(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, None]:
        f = np.zeros(len(test), bool)
        f[12 - 4 : 19 - 4] = True  # rows 12..18 flagged, falls at row 19
        return f, None

    r = run_protocol(load_skab(tmp_path), flags_12_to_19, train_size=4)
    assert (r.missed_cps, r.false_positive_cps) == (0, 1)
    assert (r.nab.missed, r.nab.false_positives) == (0, 0)
