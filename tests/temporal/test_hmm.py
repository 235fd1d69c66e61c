"""OnlineHMM against hmmlearn's offline GaussianHMM; invariants, missing values, event time,
state round trip and kill -9 exactness."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from streamem.errors import InvalidInputError, NotFittedError, StateError
from streamem.model._hmm_stats import emission_log_prob
from streamem.model.hmm import OnlineHMM
from streamem.state.codec import dumps, loads

TRUE_A = np.array([[0.95, 0.04, 0.01], [0.03, 0.90, 0.07], [0.05, 0.05, 0.90]])
TRUE_MU = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])


def markov_stream(n: int, seed: int, trans: np.ndarray = TRUE_A,
                  means: np.ndarray = TRUE_MU) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cum = trans.cumsum(axis=1)
    u = rng.random(n)
    s = np.zeros(n, dtype=int)
    for t in range(1, n):  # the generator, not the model: a loop is fine here
        s[t] = min(int(np.searchsorted(cum[s[t - 1]], u[t])), len(trans) - 1)
    noise = rng.normal(size=(n, means.shape[1])) @ np.array([[1.0, 0.3], [0.0, 0.8]])
    return means[s] + noise, s


def fit_online(X: np.ndarray, batch: int = 1024, **kw: object) -> OnlineHMM:
    h = OnlineHMM(n_components=3, random_state=0, **kw)  # type: ignore[arg-type]
    for i in range(0, len(X), batch):
        h.partial_fit(X[i:i + batch])
    return h


def test_transition_matrix_and_log_likelihood_within_one_percent_of_hmmlearn() -> None:
    X, _ = markov_stream(20_000, seed=3)
    online = fit_online(X, half_life=math.inf)
    # offline Baum-Welch to convergence from a perturbed truth (k-means starts of hmmlearn
    # can stall in a merged-state optimum on this stream, which is not the reference we want)
    ref = GaussianHMM(n_components=3, covariance_type="full", n_iter=500, tol=1e-8,
                      init_params="", params="stmc")
    ref.startprob_ = np.ones(3) / 3
    ref.transmat_ = np.full((3, 3), 1 / 3)
    ref.means_ = TRUE_MU + 0.5
    ref.covars_ = np.array([np.eye(2)] * 3)
    ref.fit(X)
    order = [int(np.argmin(((ref.means_ - m) ** 2).sum(axis=1))) for m in online.means_]
    assert sorted(order) == [0, 1, 2]
    A_ref = ref.transmat_[np.ix_(order, order)]
    rel = np.linalg.norm(online.transmat_ - A_ref) / np.linalg.norm(A_ref)
    assert rel < 0.01 and np.abs(online.transmat_ - A_ref).max() < 0.01, (rel, online.transmat_)
    np.testing.assert_allclose(online.means_, ref.means_[order], atol=0.05)
    ll, ll_ref = online.log_likelihood(X), ref.score(X)
    assert abs(ll / ll_ref - 1.0) < 0.01, (ll, ll_ref)
    # the score is the predictive log-likelihood: the filter's terms add up to log p(x_1..n)
    assert online.n_seen_ == len(X)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.floats(0.0, 0.4))
def test_rows_of_transitions_and_filter_posteriors_sum_to_one(seed: int, K: int,
                                                              missing: float) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(700, 3)) * rng.uniform(0.1, 5.0, 3) + rng.integers(-3, 3, (700, 1))
    X[rng.random(X.shape) < missing] = np.nan
    X[rng.random(700) < 0.05] = np.nan  # some events with nothing observed
    h = OnlineHMM(n_components=K, half_life=300.0, n_warmup=max(2 * K, 200), random_state=seed)
    try:
        h.partial_fit(X[:300])
    except NotFittedError:
        return  # too few complete warm-up rows: said so, nothing else to check
    p = h.forward(X[300:])
    np.testing.assert_allclose(p.alpha.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(p.alpha >= 0) and np.all(np.isfinite(p.log_pred))
    h.update(p, X[300:])
    np.testing.assert_allclose(h.transmat_.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(h.transmat_ > 0)
    assert np.all(np.linalg.eigvalsh(h.covariances_) > 0)


def test_missing_values_are_marginalised_and_learning_still_finds_the_chain() -> None:
    X, _ = markov_stream(20_000, seed=5)
    online = fit_online(X, half_life=math.inf)
    rng = np.random.default_rng(0)
    Xm = X.copy()
    Xm[rng.random(X.shape) < 0.15] = np.nan
    gappy = fit_online(Xm, half_life=math.inf)
    order = [int(np.argmin(((online.means_ - m) ** 2).sum(axis=1))) for m in gappy.means_]
    assert np.abs(gappy.transmat_ - online.transmat_[np.ix_(order, order)]).max() < 0.02
    # the emission of a row with its second entry missing is the first entry's marginal
    lb = emission_log_prob(np.array([[1.0, np.nan]]), gappy._em)
    ref = [multivariate_normal(m[:1], c[:1, :1]).logpdf([1.0])
           for m, c in zip(gappy.means_, gappy.covariances_, strict=True)]
    np.testing.assert_allclose(lb[0], ref, rtol=1e-10)


def test_event_time_half_life_needs_timestamps_and_decays_by_the_gap() -> None:
    X, _ = markov_stream(3000, seed=1)
    h = OnlineHMM(n_components=3, half_life="1h", random_state=0)
    with pytest.raises(InvalidInputError, match="timestamps"):
        h.partial_fit(X[:1000])
    h = OnlineHMM(n_components=3, half_life="1h", random_state=0)
    ts = np.arange(3000, dtype=float)  # one event a second
    h.partial_fit(X[:2000], ts[:2000])
    before = h._s0.sum()
    p = h.forward(X[2000:2001])
    h.update(p, X[2000:2001], timestamps=np.array([1999.0 + 2 * 3600.0]))  # two quiet hours
    np.testing.assert_allclose(h._s0.sum(), before * 0.25 + 1.0, rtol=1e-12)


def test_unlearned_events_still_advance_the_filter() -> None:
    X, _ = markov_stream(4000, seed=2)
    h = fit_online(X[:3000], half_life=5000.0)
    stats = h._s0.copy()
    p = h.forward(X[3000:3100])
    h.update(p, X[3000:3100], learn=np.zeros(100, dtype=bool))
    np.testing.assert_array_equal(h._s0, stats)  # nothing learned, nothing decayed
    np.testing.assert_array_equal(h._prev, p.alpha[-1])


def run_batches(h: OnlineHMM, X: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([h.partial_fit(X[i:i + batch]) for i in range(0, len(X), batch)])


@pytest.mark.parametrize("cut", [250, 2500])  # during the warm-up, and after it
def test_state_round_trip_continues_exactly(cut: int) -> None:
    X, _ = markov_stream(6000, seed=7)
    X[::97, 1] = np.nan
    whole = OnlineHMM(n_components=3, half_life=2000.0, random_state=0)
    expected = run_batches(whole, X, 250)
    first = OnlineHMM(n_components=3, half_life=2000.0, random_state=0)
    head = run_batches(first, X[:cut], 250)
    restored = OnlineHMM.from_state(loads(dumps(first.to_state())))
    tail = run_batches(restored, X[cut:], 250)
    np.testing.assert_array_equal(np.concatenate([head, tail]), expected)
    for name in ("means_", "covariances_", "transmat_"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(whole, name))


def test_malformed_state_is_a_state_error_naming_the_field() -> None:
    h = fit_online(markov_stream(1000, seed=0)[0], half_life=500.0)
    state = h.to_state()
    state["transmat"] = [[1.0]]
    with pytest.raises(StateError, match="'transmat' has shape"):
        OnlineHMM.from_state(state)
    with pytest.raises(StateError, match="version"):
        OnlineHMM.from_state({**h.to_state(), "version": 99})


WORKER = """
import os, sys, numpy as np
from pathlib import Path
from streamem.model.hmm import OnlineHMM
from streamem.state.codec import dumps, loads
X = np.load(sys.argv[1]); out = Path(sys.argv[2]); state = out / "state.json"
if state.exists():
    saved = loads(state.read_bytes()); h = OnlineHMM.from_state(saved["hmm"]); i = saved["next"]
else:
    h, i = OnlineHMM(n_components=3, half_life=2000.0, random_state=0), 0
while i < len(X):
    lp = h.partial_fit(X[i:i + 200])
    np.save(out / f"lp_{i:06d}.npy", lp)
    i += 200
    tmp = out / "state.tmp"
    tmp.write_bytes(dumps({"hmm": h.to_state(), "next": i}))
    os.replace(tmp, state)
    if len(sys.argv) > 3:
        import time; time.sleep(0.05)
"""


def test_kill_9_and_restart_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    X, _ = markov_stream(8000, seed=11)
    np.save(tmp_path / "X.npy", X)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    slow = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "X.npy"),
                             str(tmp_path), "slow"], env=env)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("lp_*.npy"))) < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(slow.pid, signal.SIGKILL)
    slow.wait()
    done = len(list(tmp_path.glob("lp_*.npy")))
    assert 12 <= done < 40, done  # killed mid-stream
    subprocess.run([sys.executable, "-c", WORKER, str(tmp_path / "X.npy"), str(tmp_path)],
                   env=env, check=True)
    got = np.concatenate([np.load(p) for p in sorted(tmp_path.glob("lp_*.npy"))])
    expected = run_batches(OnlineHMM(n_components=3, half_life=2000.0, random_state=0), X, 200)
    np.testing.assert_array_equal(got, expected)
