"""SKAB binary and NAB-like changepoint scores against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from streamem.errors import InvalidInputError
from streamem.evaluation.metrics import Confusion
from streamem.evaluation.nab import (
    NabCounts,
    changepoint_predictions,
    nab_counts,
    nab_score,
    nab_windows,
    skab_binary,
)


def _ramp(pos: float, a_tp: float, a_fp: float) -> float:
    # SKAB's my_scale written out independently: y at index int(pos*1000) of a 1000-point grid
    x = -np.pi / 2 + min(int(pos * 1000), 999) * np.pi / 999
    return float((a_tp - a_fp) / 2 * -np.tanh(x) / np.tanh(np.pi / 2) + (a_tp - a_fp) / 2 + a_fp)


def test_skab_binary_formulas() -> None:
    # TP=50 FP=10 TN=90 FN=50: F1 = 50/(50+30) = 0.625; FAR = 10/100 = 10 %; MAR = 50/100 = 50 %
    f1, far, mar = skab_binary(Confusion(tp=50, fp=10, tn=90, fn=50))
    assert [f1, far, mar] == pytest.approx([0.625, 10.0, 50.0])


def test_changepoint_predictions_mark_both_edges() -> None:
    assert changepoint_predictions([0, 1, 1, 0]).tolist() == [False, True, False, True]
    assert changepoint_predictions([1, 0]).tolist() == [True, True]
    assert changepoint_predictions([]).size == 0


def test_windows_cut_right() -> None:
    # 0 -> [0,60]; 50 -> cut to [60,110]; 100 -> overlaps [60,110] -> [110,160]
    assert nab_windows([0, 50, 100], 60).tolist() == [[0, 60], [60, 110], [110, 160]]
    with pytest.raises(InvalidInputError, match="sorted"):
        nab_windows([10, 0], 60)


def test_only_first_prediction_in_window_counts() -> None:
    c = nab_counts([100], [100, 110, 159])
    assert c.tp_positions == (0.0,)
    assert c.n_fp == 0 and c.n_fn == 0


def test_boundaries_are_inclusive_and_outside_is_fp() -> None:
    # window [100,160]: 160 is inside (<=), 160.5 outside, 99 outside
    c = nab_counts([100], [99, 160, 160.5])
    assert c.n_fp == 2
    assert c.tp_positions == (1.0,)


def test_no_changepoints_every_prediction_is_fp() -> None:
    c = nab_counts([], [1, 2, 3])
    assert (c.n_windows, c.n_fp, c.n_fn) == (0, 3, 0)


def test_nab_score_by_hand() -> None:
    # file 1: cps 0 and 1000; preds 30 (half-way into the first window) and 500 (FP)
    # file 2: cp 0, no prediction (FN)
    f1 = nab_counts([0, 1000], [30, 500])
    f2 = nab_counts([0], [])
    assert f1.tp_positions == (0.5,) and f1.n_fp == 1 and f1.n_fn == 1
    r = nab_score([f1, f2])
    # standard (1, -0.11, -1): S = ramp(0.5) - 0.11 - 1 - 1; null = -3; perfect = 3
    s = _ramp(0.5, 1, -0.11) - 0.11 - 2
    assert r.standard == pytest.approx(100 * (s + 3) / 6)
    # low_fp (1, -0.22, -1)
    s = _ramp(0.5, 1, -0.22) - 0.22 - 2
    assert r.low_fp == pytest.approx(100 * (s + 3) / 6)
    # low_fn (1, -0.11, -2): null = -6, perfect = 3
    s = _ramp(0.5, 1, -0.11) - 0.11 - 4
    assert r.low_fn == pytest.approx(100 * (s + 6) / 9)
    assert (r.n_changepoints, r.missed, r.false_positives) == (3, 2, 1)
    assert r.mean_delay == 30.0


def test_ramp_endpoints() -> None:
    # a detection at the changepoint earns A_tp; at the window end A_fp
    start = NabCounts(1, (0.0,), 0, 0, (0.0,))
    end = NabCounts(1, (1.0,), 0, 0, (60.0,))
    assert start.raw("standard")[0] == pytest.approx(1.0)
    assert end.raw("standard")[0] == pytest.approx(-0.11)


def test_perfect_and_null_detectors() -> None:
    perfect = nab_score([nab_counts([10, 500], [10, 500])])
    assert perfect.standard == pytest.approx(100.0)
    null = nab_score([nab_counts([10, 500], [])])
    assert (null.standard, null.low_fp, null.low_fn) == (0.0, 0.0, 0.0)
