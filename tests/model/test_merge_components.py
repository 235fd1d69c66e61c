"""Merging mixture components (used when a regime change would exceed max_components) stays
finite for degenerate inputs: singular covariances and zero-weight components."""

from __future__ import annotations

import warnings

import numpy as np

from streamem.model._lifecycle import merge_components


def test_singular_and_empty_components_merge_without_nan() -> None:
    s0 = np.array([0.5, 0.0, 0.3, 0.2])
    mu = np.array([[0.0, 0.0], [5.0, 5.0], [0.1, 0.0], [9.0, 9.0]])
    C = np.stack([np.eye(2), np.zeros((2, 2)), np.eye(2), np.array([[1.0, 1.0], [1.0, 1.0]])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an inf - inf cost used to warn and compare as NaN
        w, m, c = merge_components(s0, mu, C, 2)
    assert len(w) == 2 and np.isclose(w.sum(), s0.sum())
    assert np.isfinite(m).all() and np.isfinite(c).all()


def test_the_closest_pair_is_merged_first() -> None:
    s0 = np.array([0.4, 0.4, 0.2])
    mu = np.array([[0.0], [0.2], [10.0]])
    w, m, _ = merge_components(s0, mu, np.ones((3, 1, 1)), 2)
    assert sorted(np.round(m[:, 0], 6).tolist()) == [0.1, 10.0]
    assert sorted(w.tolist()) == [0.2, 0.8]
