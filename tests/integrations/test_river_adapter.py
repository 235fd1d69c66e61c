"""The river adapter in real river pipelines and under river's own estimator checks."""

from __future__ import annotations

import functools
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from river import anomaly, checks, compose, preprocessing
from sklearn.metrics import average_precision_score, roc_auc_score

from streamem import StateError
from streamem.integrations.river import GMMAnomalyDetector
from streamem.state.codec import dumps, loads

Stream = list[tuple[dict[str, float], bool]]


def labelled_stream(n: int, seed: int, rate: float = 0.02) -> Stream:
    """``n`` events ``({"f0": .., "f3": ..}, is_anomaly)``: two correlated clusters, anomalies
    at ``rate`` after event 300, half of them far off, half moving f0 and f1 2 sd against
    their correlation (each value alone within 2 sd)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 5.0, 1.0], [6.0, 3.0, 0.0, -2.0]])
    cov = np.array([[1.0, 0.8, 0.0, 0.0], [0.8, 1.0, 0.0, 0.0],
                    [0.0, 0.0, 1.0, -0.6], [0.0, 0.0, -0.6, 1.0]])
    X = centres[rng.integers(0, 2, n)] + rng.multivariate_normal(np.zeros(4), cov, n)
    y = (rng.random(n) < rate) & (np.arange(n) >= 300)
    idx = np.flatnonzero(y)
    far, broken = idx[: len(idx) // 2], idx[len(idx) // 2 :]
    X[far] += rng.choice([-1.0, 1.0], (len(far), 4)) * rng.uniform(5, 8, (len(far), 4))
    side = np.sign(rng.standard_normal(len(broken)))  # f0 and f1 2 sd apart, against the grain
    X[broken, 0] += 2.0 * side
    X[broken, 1] -= 2.0 * side
    rows = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in X]
    return list(zip(rows, y.tolist(), strict=True))


def prequential(model: Any, stream: Stream) -> tuple[list[float], list[bool]]:
    """Score each event before it is learned (river's protocol)."""
    scores, labels = [], []
    for x, y in stream:
        scores.append(model.score_one(x))
        model.learn_one(x)
        labels.append(y)
    return scores, labels


# ---------------------------------------------------------------------- in pipelines
def test_pipeline_ranks_the_anomalies_on_top() -> None:
    model = compose.Pipeline(preprocessing.StandardScaler(), GMMAnomalyDetector(seed=0))
    scores, labels = prequential(model, labelled_stream(3000, seed=0))
    assert roc_auc_score(labels, scores) > 0.9  # every event, warm-up zeros included
    assert average_precision_score(labels, scores) > 0.6
    assert model["GMMAnomalyDetector"].features == ["f0", "f1", "f2", "f3"]


def test_quantile_filter_flags_the_anomalies_and_protects_the_detector() -> None:
    det = GMMAnomalyDetector(seed=0)
    model = preprocessing.StandardScaler() | anomaly.QuantileFilter(det, q=0.98)
    stream = labelled_stream(3000, seed=1)
    flagged, labels = [], []
    for x, y in stream:
        flagged.append(model["QuantileFilter"].classify(model.score_one(x)))
        model.learn_one(x)
        labels.append(y)
    f, a = np.array(flagged[300:]), np.array(labels[300:])
    assert (f & a).sum() >= 0.8 * a.sum()  # recall
    assert (f & ~a).sum() <= 0.03 * (~a).sum()  # false alarms near 1 - q
    # the pipeline does not teach the detector the events the filter classifies as anomalous
    assert det.n_learned < len(stream) - 0.5 * a.sum()


def test_threshold_filter_on_the_surprise_scale() -> None:
    # surprise 4 = tail probability 1e-4: a threshold with a meaning before any calibration
    model = preprocessing.StandardScaler() | anomaly.ThresholdFilter(
        GMMAnomalyDetector(seed=0), threshold=4.0)
    flagged, labels = [], []
    for x, y in labelled_stream(3000, seed=2):
        flagged.append(model["ThresholdFilter"].classify(model.score_one(x)))
        model.learn_one(x)
        labels.append(y)
    f, a = np.array(flagged[300:]), np.array(labels[300:])
    assert (f & a).sum() >= 0.7 * a.sum()
    assert (f & ~a).sum() <= 0.01 * (~a).sum()


# ---------------------------------------------------------------------- river's checks
def _river_checks() -> list[Any]:
    model = GMMAnomalyDetector(**next(GMMAnomalyDetector._unit_test_params()))
    out = []
    for check in checks.yield_checks(model):
        name = check.__name__
        if isinstance(check, functools.partial) and "dataset" in check.keywords:
            # river's anomaly dataset is CreditCard (a 150 MB download): use a local labelled
            # stream of the same length instead (x10 for the memory check, as river does)
            n = 10_000 if name == "check_bounded_memory_growth" else 1000
            out.append(pytest.param(check.func, n, id=f"{name}[{len(out)}]"))
        else:
            out.append(pytest.param(check, 0, id=name))
    return out


@pytest.mark.parametrize(("check", "n"), _river_checks())
def test_river_estimator_checks(check: Callable[..., None], n: int) -> None:
    model = GMMAnomalyDetector(**next(GMMAnomalyDetector._unit_test_params()))
    assert check.__name__ not in model._unit_test_skips()  # none skipped
    if n:
        check(model.clone(), dataset=labelled_stream(n, seed=3))
    else:
        check(model.clone())


# ---------------------------------------------------------------------- features
def _warm(det: GMMAnomalyDetector, n: int = 400, seed: int = 0) -> GMMAnomalyDetector:
    for x, _ in labelled_stream(n, seed=seed, rate=0.0):
        det.learn_one(x)
    return det


def test_missing_features_are_marginalised_and_unseen_ones_ignored() -> None:
    det = _warm(GMMAnomalyDetector(n_warmup=200, seed=0))
    x = {"f0": 0.2, "f1": 0.1, "f2": 5.2, "f3": 0.9}
    part = {"f0": 0.2, "f2": 5.2}
    model = det.model_
    lpn, _, lnc, do = model._estimate(np.array([[0.2, np.nan, 5.2, np.nan]]))
    expected = -model._scorer.log_tail(lnc, lpn, do)[0] / math.log(10)
    assert det.score_one(part) == pytest.approx(expected, rel=1e-12)
    assert det.score_one({**part, "f1": None}) == det.score_one(part)
    assert det.score_one({**x, "new": 99.0}) == det.score_one(x)
    assert det.score_one({"new": 99.0}) == 0.0 and det.score_one({}) == 0.0
    before = det.n_unseen_features
    det.learn_one({**x, "new": 1.0, "other": 2.0})
    assert det.n_unseen_features == before + 2
    assert det.features == ["f0", "f1", "f2", "f3"]


def test_feature_set_is_every_warm_up_feature_sorted() -> None:
    det = GMMAnomalyDetector(n_warmup=50, learn_every=10, seed=0)
    rng = np.random.default_rng(0)
    det.learn_one({"b": 1.0})  # a partial first event does not fix the schema
    for i in range(60):
        x = {"c": rng.normal(), "b": rng.normal()}
        if i > 20:
            x["a"] = rng.normal()
        det.learn_one(x)
    assert det.features == ["a", "b", "c"] and not det.warming_up
    assert det.model_.n_features_in_ == 3
    det.learn_one({"a": 0.0, "b": 0.0, "c": 0.0, "late": 1.0})
    assert det.n_unseen_features == 1 and det.features == ["a", "b", "c"]


def test_bad_values_are_missing_counted_and_never_raise() -> None:
    det = _warm(GMMAnomalyDetector(n_warmup=200, seed=0))
    good = {"f0": 0.2, "f1": 0.1, "f2": 5.2, "f3": 0.9}
    bad = {**good, "f1": "n/a", "f3": math.inf}
    assert det.score_one(bad) == det.score_one({"f0": 0.2, "f2": 5.2})
    n = det.n_learned
    det.learn_one(bad)
    assert det.n_invalid_values == 2 and det.n_learned == n + 1
    det.learn_one({"f0": "x", "f1": None, "f2": -math.inf, "f3": 1e300})
    assert det.n_skipped == 1 and det.n_learned == n + 1
    assert det.score_one({"f0": "x"}) == 0.0


# ---------------------------------------------------------------------- micro-batches
def test_scores_use_the_model_as_it_is_until_the_micro_batch_is_learned() -> None:
    det = _warm(GMMAnomalyDetector(n_warmup=200, learn_every=8, seed=0), n=200)
    assert not det.warming_up and det.model_.n_seen_ == 0
    probe = {"f0": 1.5, "f1": 0.0, "f2": 4.0, "f3": 1.0}
    first = det.score_one(probe)
    stream = labelled_stream(8, seed=9, rate=0.0)
    for x, _ in stream[:7]:
        det.learn_one(x)
        assert det.score_one(probe) == first and det.model_.n_seen_ == 0
    det.learn_one(stream[7][0])
    assert det.model_.n_seen_ == 8 and det.score_one(probe) != first


def test_learn_many_and_score_many_match_the_one_at_a_time_methods() -> None:
    stream = [x for x, _ in labelled_stream(600, seed=4)]
    one = GMMAnomalyDetector(n_warmup=200, learn_every=50, seed=0)
    many = one.clone()
    for x in stream:
        one.learn_one(x)
    for i in range(0, 600, 50):
        frame = pd.DataFrame(stream[i : i + 50])
        many.learn_many(frame[list(reversed(frame.columns))])  # column order does not matter
    probes = [x for x, _ in labelled_stream(100, seed=5)]
    frame = pd.DataFrame(probes, index=range(1000, 1100)).drop(columns="f3")
    got = many.score_many(frame)
    assert list(got.index) == list(range(1000, 1100))
    want = [one.score_one({k: v for k, v in p.items() if k != "f3"}) for p in probes]
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-9)
    assert many.n_learned == one.n_learned == 600
    # and through a pipeline's mini-batch path (river's StandardScaler.learn_many first)
    pipe = preprocessing.StandardScaler() | GMMAnomalyDetector(n_warmup=200, seed=0)
    for i in range(0, 600, 100):
        pipe.learn_many(pd.DataFrame(stream[i : i + 100]))
    assert pipe["GMMAnomalyDetector"].n_learned == 600 and not pipe["GMMAnomalyDetector"].warming_up


# ---------------------------------------------------------------------- state
@pytest.mark.parametrize("n_before", [150, 433])  # inside and after the warm-up
def test_state_round_trip_continues_bit_for_bit(n_before: int) -> None:
    stream = [x for x, _ in labelled_stream(900, seed=6)]
    det = GMMAnomalyDetector(n_warmup=300, learn_every=16, seed=0)
    for x in stream[:n_before]:
        det.learn_one(x)
    twin = GMMAnomalyDetector.from_state(loads(dumps(det.to_state())))  # streamem's codec
    for x in stream[n_before:]:
        assert twin.score_one(x) == det.score_one(x)
        det.learn_one(x)
        twin.learn_one(x)
    assert twin.to_state()["counters"] == det.to_state()["counters"]


def test_missing_river_names_the_extra() -> None:
    code = "import sys; sys.modules['river'] = None; import streamem.integrations.river"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install 'streamem[river]'" in out.stderr


def test_bad_state_is_a_state_error() -> None:
    with pytest.raises(StateError, match="version 0 is not 1"):
        GMMAnomalyDetector.from_state({"version": 0})
    state = GMMAnomalyDetector(seed=0).to_state()
    del state["counters"]
    with pytest.raises(StateError, match="incomplete"):
        GMMAnomalyDetector.from_state(state)
