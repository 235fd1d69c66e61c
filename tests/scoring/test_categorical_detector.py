"""Categorical fields inside the Detector: joint likelihood, new values, state round trip."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from streamem import Detector
from streamem.model._catcodes import CategoricalBatch
from streamem.scoring.categorical import CategoricalPart
from streamem.state.codec import dumps, loads

METHODS = np.array(["GET", "GET", "GET", "POST", "HEAD"])


def _stream(n: int, seed: int) -> tuple[np.ndarray, dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, {"method": list(rng.choice(METHODS, n)),
               "status_class": list(rng.choice(["2xx", "2xx", "3xx"], n))}


def test_a_never_seen_value_is_flagged_and_known_ones_are_not() -> None:
    det = Detector(warmup=500, random_state=0, categorical=["method", "status_class"])
    X, cats = _stream(4000, 0)
    res = det.process(X, categorical=cats)
    assert res.is_anomaly[500:].mean() < 0.01
    probe = np.zeros((3, 2))
    out = det.process(probe, categorical={"method": ["GET", "PURGE", None],
                                          "status_class": ["2xx", "2xx", "5xx"]})
    assert out.is_anomaly.tolist() == [False, True, True]
    assert out.surprise[1] > 3 and out.surprise[0] < 2


def test_the_joint_log_likelihood_matches_a_naive_per_row_reference() -> None:
    rng = np.random.default_rng(1)
    k, d = 3, 2
    means, covs = rng.normal(size=(k, d)), [np.eye(d) * (1 + i) for i in range(k)]
    w = np.array([0.5, 0.3, 0.2])
    part = CategoricalPart(["m", "s"], half_life=1e9, top=4)
    part.slots(CategoricalBatch.of({"m": list("abc"), "s": list("xyx")}), learn=True)
    part.resize(k)
    for c in part.cat.counts:
        c[:] = rng.uniform(0, 5, size=c.shape)
    X = rng.normal(size=(20, d))
    batch = CategoricalBatch.of({"m": list(rng.choice(list("abcz"), 20)),
                                 "s": list(rng.choice(["x", "y", ""], 20))})
    log_gauss = np.column_stack([multivariate_normal(means[j], covs[j]).logpdf(X)
                                 for j in range(k)])
    log_joint_g = log_gauss + np.log(w)
    log_resp = log_joint_g - np.logaddexp.reduce(log_joint_g, axis=1, keepdims=True)
    joint, _, _ = part.score(batch, log_resp, np.zeros(20))
    for i in range(20):  # explicit probabilities, one row at a time
        terms = []
        for j in range(k):
            lp = np.log(w[j]) + log_gauss[i, j]
            for f, name in enumerate(["m", "s"]):
                v = batch.values(i)[name]
                if v is None:
                    continue  # missing: marginalised
                c = part.cat.counts[f][j]
                slot = part.cat.vocab[f].get(v, part.cat.top)
                used = len(part.cat.vocab[f]) + 1
                lp += np.log((c[slot] + 0.25) / (c.sum() + 0.25 * used))
            terms.append(lp)
        ref = np.array(terms) - np.logaddexp.reduce(terms)
        np.testing.assert_allclose(joint[i], ref, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=2), min_size=1,
                max_size=200), st.integers(1, 4), st.integers(1, 6))
def test_probabilities_sum_to_one_and_the_vocabulary_stays_bounded(
        values: list[str], k: int, top: int) -> None:
    part = CategoricalPart(["v"], half_life=50.0, top=top)
    part.resize(k)
    resp = np.random.default_rng(0).dirichlet(np.ones(k), size=len(values))
    part.learn(CategoricalBatch.of({"v": values}), np.log(resp), np.ones(len(values), bool))
    assert len(part.cat.vocab[0]) <= top
    p = np.exp(part._log_p(0))
    used = np.zeros(top + 1, bool)
    used[: len(part.cat.vocab[0])] = True
    used[-1] = True
    np.testing.assert_allclose((p * used).sum(axis=1), 1.0, atol=1e-9)
    assert (part.cat.counts[0][:, ~used] == 0).all()


def test_the_state_round_trips_and_old_states_still_load() -> None:
    det = Detector(warmup=300, random_state=0, categorical=["method", "status_class"])
    X, cats = _stream(1000, 2)
    det.process(X, categorical=cats)
    again = Detector.from_state(loads(dumps(det.to_state())))
    X2, cats2 = _stream(200, 3)
    cats2["method"][5] = "PURGE"
    a, b = det.process(X2, categorical=cats2), again.process(X2, categorical=cats2)
    np.testing.assert_array_equal(a.surprise, b.surprise)
    assert bool(a.is_anomaly[5])
    old = Detector(warmup=50).to_state()  # without categorical fields: the earlier layout
    assert "categorical" not in old
    assert Detector.from_state(loads(dumps(old))).categorical_ is None
