"""Vectorised bookkeeping (SPOT's peak ring buffer, the regime ring buffer, Grimshaw's w)
against the plain loops they replaced: identical state, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from streamem.scoring.regime import RegimeTracker
from streamem.scoring.scaler import RobustScaler
from streamem.scoring.threshold import SpotThreshold
from streamem.scoring.threshold.gpd import (
    _grimshaw_w,
    _grimshaw_w1,
    _log_likelihoods,
    fit_gpd,
    gpd_log_likelihood,
)


def _push_loop(
    peaks: list[float], head: int, size: int, new: np.ndarray
) -> tuple[list[float], int]:
    peaks = list(peaks)
    if len(peaks) < size:
        room = size - len(peaks)
        peaks += list(new[:room])
        new = new[room:]
        head = len(peaks) % size
    for v in new[-size:]:
        peaks[head] = float(v)
        head = (head + 1) % size
    return peaks, head


@pytest.mark.parametrize("seed", range(5))
def test_spot_peak_ring_buffer_matches_the_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spot = SpotThreshold(q=1e-3, max_excess=50)
    ref: list[float] = []
    head = 0
    for _ in range(40):
        new = rng.exponential(1.0, int(rng.integers(0, 130)))
        ref, head = _push_loop(ref, head, 50, new)
        spot._push(new)
        assert spot._peaks.tolist() == ref
        assert spot._head == head


class _LoopRing:
    """The per-event ring buffer the tracker used to fill with fancy indexing."""

    def __init__(self, P: int, d: int) -> None:
        self.P, self.pos = P, 0
        self.recent, self.flags = np.zeros((P, d)), np.zeros(P, dtype=bool)

    def observe(self, Z: np.ndarray, f: np.ndarray) -> None:
        for z, g in zip(Z, f, strict=True):
            self.recent[self.pos], self.flags[self.pos] = z, g
            self.pos = (self.pos + 1) % self.P

    def oldest_first(self) -> tuple[np.ndarray, np.ndarray]:
        order = (self.pos + np.arange(self.P)) % self.P
        return self.recent[order], self.flags[order]


@pytest.mark.parametrize("seed", range(5))
def test_regime_ring_buffer_matches_the_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = 37
    tr = RegimeTracker(patience=P, fraction=0.5, n_features=2)
    ref = _LoopRing(P, 2)
    seen = 0
    for _ in range(60):
        n = int(rng.integers(1, 90))
        Z = rng.normal(size=(n, 2))
        f = rng.random(n) < rng.uniform(0, 1)
        declared = tr.observe(Z, f)
        ref.observe(Z, f)
        seen += n
        order = (tr.pos + np.arange(P)) % P
        recent, flags = ref.oldest_first()
        assert np.array_equal(tr.recent[order], recent)
        assert np.array_equal(tr.flags[order], flags)
        assert tr.full == (seen >= P)
        assert declared == (seen >= P and bool(f.any()) and float(np.mean(flags)) >= 0.5)
        if declared:
            tr.reset()
            # reset() keeps the events in their slots and restarts at slot 0
            ref.recent, ref.flags = tr.recent.copy(), tr.flags.copy()
            ref.pos, seen = 0, 0


def test_grimshaw_w_scalar_and_vector_agree_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    peaks = rng.exponential(0.7, 999)
    xs = np.linspace(-1.0 / peaks.max() + 1e-6, 3.0, 57)
    buf = np.empty_like(peaks)
    vec = _grimshaw_w(xs, peaks)
    one = np.array([_grimshaw_w1(float(x), peaks, buf) for x in xs])
    assert np.array_equal(vec, one)
    naive = np.array([np.mean(1 / (1 + x * peaks)) * (1 + np.mean(np.log(1 + x * peaks))) - 1
                      for x in xs])
    np.testing.assert_allclose(vec, naive, rtol=1e-12, atol=1e-14)
    g, s = fit_gpd(peaks)
    assert abs(g) < 0.1 and s == pytest.approx(0.7, rel=0.1)


def test_scaler_transform_is_the_formula_for_any_layout() -> None:
    rng = np.random.default_rng(0)
    s = RobustScaler().fit(rng.normal(3.0, 2.0, (200, 4)))
    for X in (rng.normal(size=(1, 4)), rng.normal(size=(20, 4)), rng.normal(size=(1024, 4)),
              np.asfortranarray(rng.normal(size=(64, 4))), rng.normal(size=(64, 8))[:, ::2]):
        ref = (X - s.center_) / s.scale_
        for _ in range(2):  # the second call uses the cached tiles
            assert np.array_equal(s.transform(X), ref)
    s.fit(rng.normal(-1.0, 5.0, (200, 4)))  # new centre and scale: the cache must not be stale
    X = rng.normal(size=(1024, 4))
    assert np.array_equal(s.transform(X), (X - s.center_) / s.scale_)
    s.center_ = s.center_ + 1.0  # direct assignment, as from_state does
    assert np.array_equal(s.transform(X), (X - s.center_) / s.scale_)


@pytest.mark.parametrize("seed", range(4))
def test_gpd_candidate_likelihoods_match_the_scalar_function(seed: int) -> None:
    rng = np.random.default_rng(seed)
    peaks = rng.exponential(0.5, 800) if seed % 2 else rng.pareto(3.0, 800)
    cands = [(0.0, 0.5), (0.2, 0.4), (-0.3, 0.6), (-5.0, 0.1), (0.1, -1.0), (1e-13, 0.3)]
    got = _log_likelihoods(peaks, cands)
    assert got == [gpd_log_likelihood(peaks, g, s) for g, s in cands]
