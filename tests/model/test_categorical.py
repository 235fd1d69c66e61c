"""Categorical fields of the mixture (model/_categorical.py) against naive references."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from streamem.errors import StateError
from streamem.model._categorical import (
    Categoricals,
    accumulate,
    joint_from_mixture,
    joint_posterior,
    log_categorical,
)


def _counts(seed: int, k: int, slots: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.exponential(3.0, size=(k, s)) * (rng.random((k, s)) < 0.7) for s in slots]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 4), st.lists(st.integers(1, 6), min_size=1,
                                                          max_size=3),
       st.integers(0, 20), st.floats(0.01, 3.0))
def test_log_categorical_matches_a_naive_loop(seed, k, slots, n, alpha) -> None:
    counts = _counts(seed, k, slots)
    rng = np.random.default_rng(seed + 1)
    codes = np.array([[rng.integers(s) for s in slots] for _ in range(n)],
                     dtype=np.int64).reshape(n, len(slots))
    got = log_categorical(counts, codes, alpha)
    want = np.zeros((n, k))
    for i, j in itertools.product(range(n), range(k)):
        for f, c in enumerate(counts):
            want[i, j] += math.log((c[j, codes[i, f]] + alpha) / (c[j].sum() + alpha * len(c[j])))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # each field's distribution per component sums to one over its slots
    for c in counts:
        every = np.arange(c.shape[1])[:, None]
        p = np.exp(log_categorical([c], every, alpha))
        np.testing.assert_allclose(p.sum(axis=0), 1.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 30), st.integers(1, 3),
       st.sampled_from([3.0, 50.0, 1e9]), st.integers(1, 29))
def test_accumulate_in_one_batch_equals_one_event_at_a_time(seed, n, k, half_life,
                                                            cut) -> None:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, 2))
    resp = rng.dirichlet(np.ones(k), size=n)
    batch = _counts(seed, k, [4, 4])
    steps = [c.copy() for c in batch]
    split = [c.copy() for c in batch]
    accumulate(batch, codes, resp, half_life)
    for i in range(n):  # naive: decay then add, per event
        for f, c in enumerate(steps):
            c *= 2.0 ** (-1.0 / half_life)
            c[:, codes[i, f]] += resp[i]
    accumulate(split, codes[:cut], resp[:cut], half_life)
    accumulate(split, codes[cut:], resp[cut:], half_life)
    for a, b, c in zip(batch, steps, split, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11)
        np.testing.assert_allclose(c, b, rtol=1e-11)
        assert (a >= 0).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 10), st.integers(1, 5))
def test_joint_posterior_matches_logsumexp(seed, n, k) -> None:
    rng = np.random.default_rng(seed)
    lg, lc = rng.normal(scale=30, size=(n, k)), rng.normal(scale=5, size=(n, k))
    lw = np.log(rng.dirichlet(np.ones(k)))
    resp, surprise = joint_posterior(lg, lw, lc)
    joint = lg + lw + lc
    np.testing.assert_allclose(surprise, -logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(resp, np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)
    # no categorical field: the Gaussian mixture's own posterior
    _, s0 = joint_posterior(lg, lw, np.zeros((n, k)))
    np.testing.assert_allclose(s0, -logsumexp(lg + lw, axis=1), rtol=1e-12)


def test_online_em_recovers_two_latent_classes() -> None:
    rng = np.random.default_rng(0)
    truth = {"method": [[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]],
             "status": [[0.9, 0.1], [0.2, 0.8]],
             "template": [[0.6, 0.3, 0.05, 0.05], [0.05, 0.05, 0.3, 0.6]]}
    # three indicators: a latent-class model of two is not identifiable
    values = {"method": ["GET", "POST", "PUT"], "status": ["2xx", "5xx"],
              "template": ["t1", "t2", "t3", "t4"]}
    z = rng.random(20_000) < 0.3
    cols = {f: [values[f][rng.choice(len(values[f]), p=truth[f][int(zi)])] for zi in z]
            for f in truth}
    cat = Categoricals(["method", "status", "template"], n_components=2, top=5, half_life=4000.0)
    for f in range(3):
        cat.counts[f] += rng.random(cat.counts[f].shape)  # break the symmetry
    for i in itertools.chain(range(0, len(z), 500), range(0, len(z), 500)):
        # online EM, two passes: E-step with the current model, then the M-step
        batch = {f: v[i:i + 500] for f, v in cols.items()}
        codes = cat.encode(batch, learn=True)
        mass = cat.counts[0].sum(axis=1)
        resp, _ = joint_posterior(np.zeros((len(codes), 2)), np.log(mass / mass.sum()),
                                  cat.log_prob(codes))
        cat.learn(codes, resp)
    codes = cat.encode(cols, learn=False)
    mass = cat.counts[0].sum(axis=1)
    resp, _ = joint_posterior(np.zeros((len(z), 2)), np.log(mass / mass.sum()),
                              cat.log_prob(codes))
    minority = int(np.argmin(mass))
    assert abs(mass[minority] / mass.sum() - 0.3) < 0.05
    slots = [cat.vocab[0][v] for v in values["method"]]  # slots: in order of first appearance
    p = cat.counts[0][minority, slots] / cat.counts[0][minority].sum()
    np.testing.assert_allclose(p, truth["method"][1], atol=0.05)
    assert ((resp[:, minority] > 0.5) == z).mean() > 0.85


def test_an_unseen_value_scores_high_and_a_full_vocabulary_uses_other() -> None:
    cat = Categoricals(["template"], n_components=1, top=3)
    seen = ["a"] * 500 + ["b"] * 300 + ["c"] * 200
    cat.learn(cat.encode({"template": seen}, learn=True), np.ones((1000, 1)))
    s = cat.surprise(cat.encode({"template": ["a", "b", "c", "new"]}, learn=False))
    assert s[3] > s[:3].max() + 4.0
    assert cat.vocab[0] == {"a": 0, "b": 1, "c": 2}  # learn=False adds nothing
    codes = cat.encode({"template": ["d", "e", None]}, learn=True)  # no free slot: other
    assert codes[:, 0].tolist() == [3, 3, 3]
    big = Categoricals(["t"], n_components=1, top=10)
    codes = big.encode({"t": ["x", "y"]}, learn=False)  # free slot: the prior only
    assert codes[:, 0].tolist() == [0, 0] and big.vocab[0] == {}


def test_the_explanation_names_the_value_and_its_probability() -> None:
    cat = Categoricals(["method", "status"], n_components=2, top=4)
    codes = cat.encode({"method": ["GET"] * 50 + ["POST"] * 50, "status": ["200"] * 100},
                       learn=True)
    resp = np.repeat([[1.0, 0.0], [0.0, 1.0]], 50, axis=0)
    cat.learn(codes, resp)
    ex = cat.explain({"method": "DELETE", "status": "200"}, np.array([1.0, 0.0]))
    assert [e["field"] for e in ex] == ["method", "status"]
    assert ex[0]["value"] == "DELETE" and ex[0]["probability"] < 0.01
    assert ex[1]["probability"] > 0.9


def test_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(4)
    cat = Categoricals(["m"], n_components=3, top=4, half_life=100.0)
    vals = [str(v) for v in rng.integers(0, 7, 300)]
    resp = rng.dirichlet(np.ones(3), size=300)
    cat.learn(cat.encode({"m": vals[:150]}, learn=True), resp[:150])
    again = Categoricals.from_state(json.loads(json.dumps(cat.to_state())))
    for c in (cat, again):
        c.learn(c.encode({"m": vals[150:]}, learn=True), resp[150:])
    probe = {"m": [str(v) for v in range(9)]}
    np.testing.assert_array_equal(cat.surprise(cat.encode(probe, learn=False)),
                                  again.surprise(again.encode(probe, learn=False)))


@pytest.mark.parametrize("damage", [
    lambda s: s.update(version=9),
    lambda s: s.update(counts=[[[1.0, -1.0]]]),
    lambda s: s.update(vocab=[["a", "a"]]),
    lambda s: s.update(top="x"),
    lambda s: s.update(counts="nope"),
])
def test_a_damaged_state_raises_state_error(damage) -> None:
    state = Categoricals(["m"], n_components=2, top=3).to_state()
    damage(state)
    with pytest.raises(StateError, match="categoricals"):
        Categoricals.from_state(state)


def test_composed_with_the_gaussian_mixture_an_unseen_category_raises_the_surprise() -> None:
    from streamem import OnlineGMM

    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, (1500, 2)), rng.normal(6, 1, (1500, 2))])
    methods = ["GET"] * 1500 + ["POST"] * 1500  # each cluster has its own method
    order = rng.permutation(3000)
    X, methods = X[order], [methods[i] for i in order]
    gmm = OnlineGMM(n_components=2, random_state=0).fit(X)
    cat = Categoricals(["method"], n_components=2, top=8)
    for i in range(0, 3000, 500):  # the joint E-step feeds both M-steps
        xb = X[i:i + 500]
        codes = cat.encode({"method": methods[i:i + 500]}, learn=True)
        lpn, log_resp, _, _ = gmm._estimate(xb)
        resp, _ = joint_from_mixture(lpn, log_resp, cat.log_prob(codes))
        cat.learn(codes, resp)
        gmm._learn(xb, resp)
    probe = np.array([[0.0, 0.0]] * 3)
    lpn, log_resp, _, _ = gmm._estimate(probe)
    codes = cat.encode({"method": ["GET", "POST", "TRACE"]}, learn=False)
    _, surprise = joint_from_mixture(lpn, log_resp, cat.log_prob(codes))
    # x fits the GET cluster: GET is expected, POST belongs to the other cluster, TRACE is new
    assert surprise[0] < surprise[1] - 3 and surprise[2] > surprise[0] + 3
    np.testing.assert_allclose(surprise[0], -lpn[0] - np.log(
        np.exp(log_resp[0] + cat.log_prob(codes)[0]).sum()), rtol=1e-9)
