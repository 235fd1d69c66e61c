"""``random_state`` makes every result reproducible: the same seed, events and batches give
bit-identical results and state, through the cold start, the warm-up fit (K by BIC, k-means++
restarts), online EM with re-seeding, and a regime change."""

from __future__ import annotations

from typing import Any

import numpy as np
from testkit.gmm import random_mixture

from streamem import Detector, OnlineGMM


def _stream() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    mix = random_mixture(rng, 3, 4)
    X = mix.sample(rng, 6000)
    X[2500:2520] += 30.0  # a burst: flagged, not learned
    X[4000:] += 12.0  # a lasting shift: a regime change
    sizes = [1, 5, 64, 300, 1024, 7] * 40
    out, i = [], 0
    for s in sizes:
        if i >= len(X):
            break
        out.append(X[i : i + s])
        i += s
    return out


def _run(seed: int | None, **kw: Any) -> tuple[list[np.ndarray], Detector]:
    det = Detector(warmup=800, regime_patience=600, random_state=seed, **kw)
    res = [det.process(X) for X in _stream()]
    fields = ("scores", "surprise", "threshold", "is_anomaly", "learned", "warming_up")
    return [np.concatenate([getattr(r, f) for r in res]) for f in fields], det


def test_the_same_seed_gives_bit_identical_results_and_state() -> None:
    a, det_a = _run(7)
    b, det_b = _run(7)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y, equal_nan=True)
    assert det_a.regime_changes_ >= 1 and det_a.n_anomalies_ > 0  # every path was exercised
    sa, sb = det_a.model_.to_state(), det_b.model_.to_state()
    assert sa["rng"] == sb["rng"]
    for key in ("s0", "mu", "C", "reservoir", "weights", "means", "covariances"):
        assert np.array_equal(sa[key], sb[key]), key


def test_the_seed_is_what_decides_the_random_choices() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-3, 1, (400, 2)), rng.normal(3, 1, (400, 2))])
    X = X[rng.permutation(len(X))]
    fits = {s: OnlineGMM(n_components=4, n_warmup=800, n_init=1, random_state=s).partial_fit(X)
            for s in (0, 0, 1)}
    again = OnlineGMM(n_components=4, n_warmup=800, n_init=1, random_state=0).partial_fit(X)
    assert np.array_equal(fits[0].means_, again.means_)
    assert not np.array_equal(fits[0].means_, fits[1].means_)  # k-means++ seeds differ
