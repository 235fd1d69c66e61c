"""Metric functions against hand-worked cases and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm  # type: ignore[import-untyped]

from streamem.errors import InvalidInputError, StreamemError
from streamem.evaluation.metrics import (
    Confusion,
    average_precision,
    confusion,
    detection_delays,
    event_metrics,
    event_windows,
    false_alarm_rate,
    roc_auc,
)

# Hand-worked stream used by several tests (index: label/alarm)
#   idx:    0 1 2 3 4 5 6 7 8 9
#   label:  0 0 1 1 1 0 0 1 1 0
#   alarm:  1 0 0 1 1 0 0 0 0 1
# TP = {3,4} = 2; FP = {0,9} = 2; FN = {2,7,8} = 3; TN = {1,5,6} = 3
# precision = 2/4 = 0.5; recall = 2/5 = 0.4; F1 = 2/(2 + (2+3)/2) = 2/4.5
# FAR = 2/(2+3) = 0.4; miss rate = 3/5 = 0.6
# events: (2,5) detected at idx 3 -> delay 1; (7,9) missed
# alarm runs: (0,1) false, (3,5) true, (9,10) false -> 3 runs, 2 false
LABELS = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0])
ALARMS = np.array([1, 0, 0, 1, 1, 0, 0, 0, 0, 1])


def test_confusion_counts_by_hand() -> None:
    c = confusion(LABELS, ALARMS)
    assert c == Confusion(tp=2, fp=2, tn=3, fn=3)
    assert c.precision == pytest.approx(0.5)
    assert c.recall == pytest.approx(0.4)
    assert c.f1 == pytest.approx(2 / 4.5)
    assert c.false_alarm_rate == pytest.approx(0.4)
    assert c.miss_rate == pytest.approx(0.6)
    assert c.n == 10


def test_point_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.2
    p = rng.random(500) < 0.3
    c = confusion(y, p)
    assert c.precision == pytest.approx(skm.precision_score(y, p))
    assert c.recall == pytest.approx(skm.recall_score(y, p))
    assert c.f1 == pytest.approx(skm.f1_score(y, p))
    tn, fp, fn, tp = skm.confusion_matrix(y, p).ravel()
    assert (c.tp, c.fp, c.tn, c.fn) == (tp, fp, tn, fn)


def test_pooling_adds_counts_not_rates() -> None:
    # file A: tp=1 fp=0 tn=1 fn=0 (F1 1.0); file B: tp=0 fp=1 tn=0 fn=2 (F1 0.0)
    a = confusion([1, 0], [1, 0])
    b = confusion([1, 1, 0], [0, 0, 1])
    pooled = a + b
    assert pooled == Confusion(tp=1, fp=1, tn=1, fn=2)
    # pooled F1 = 1 / (1 + 3/2) = 0.4, not the mean of per-file F1 (0.5)
    assert pooled.f1 == pytest.approx(0.4)


def test_empty_cases_give_zero_not_nan() -> None:
    c = confusion([0, 0, 0], [0, 0, 0])
    assert (c.precision, c.recall, c.f1, c.false_alarm_rate) == (0.0, 0.0, 0.0, 0.0)
    assert false_alarm_rate([1, 1], [1, 0]) == 0.0


def test_event_windows_edges() -> None:
    assert event_windows([1, 1, 0, 1]) == [(0, 2), (3, 4)]
    assert event_windows([0, 0]) == []
    assert event_windows([1]) == [(0, 1)]
    assert event_windows([]) == []


def test_event_metrics_by_hand() -> None:
    m = event_metrics(LABELS, ALARMS)
    assert (m.n_events, m.n_detected, m.n_alarm_runs, m.n_false_alarm_runs) == (2, 1, 3, 2)
    assert m.mean_delay == 1.0
    assert m.recall == 0.5
    assert m.precision == pytest.approx(1 / 3)
    assert m.f1 == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))


def test_delays_use_timestamps() -> None:
    # event (2,5) starts at t=20 s, first alarm at idx 3, t=35 s -> 15 s
    t = np.array([0, 10, 20, 35, 40, 50, 60, 70, 80, 90], float)
    d = detection_delays(LABELS, ALARMS, t)
    assert d[0] == 15.0
    assert math.isnan(d[1])


def test_no_event_detected_has_nan_delay() -> None:
    m = event_metrics([0, 1, 1, 0], [1, 0, 0, 0])
    assert m.n_detected == 0 and math.isnan(m.mean_delay)


def test_roc_auc_by_hand_with_ties() -> None:
    # positives 0.5, 0.9; negatives 0.5, 0.1. Pairs: (0.5 vs 0.5) = 1/2, (0.5 vs 0.1) = 1,
    # (0.9 vs 0.5) = 1, (0.9 vs 0.1) = 1 -> 3.5 / 4
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1]) == pytest.approx(0.875)


def test_average_precision_by_hand() -> None:
    # descending: 0.9(1) 0.8(0) 0.7(1) 0.1(0)
    # k=1: P=1, R=1/2; k=3: P=2/3, R=1 -> AP = 1/2*1 + 1/2*2/3 = 5/6
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(400) < 0.15
    s = np.round(rng.normal(size=400) + 1.5 * y, 1)  # rounding makes ties
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))


def test_ranking_metrics_reject_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="both classes"):
        roc_auc([0, 0], [0.1, 0.2])
    with pytest.raises(InvalidInputError, match="NaN"):
        average_precision([0, 1], [np.nan, 0.2])


def test_bad_labels_raise_streamem_errors() -> None:
    with pytest.raises(StreamemError, match="only 0/1"):
        confusion([0, 2], [0, 1])
    with pytest.raises(InvalidInputError, match="equal length"):
        confusion([0, 1, 1], [0, 1])
    with pytest.raises(InvalidInputError, match="1-D"):
        event_windows(np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="one time per event"):
        detection_delays([0, 1], [0, 1], [0.0])
