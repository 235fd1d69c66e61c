"""High dimensions: the covariance structure is chosen by BIC among the ones the warm-up can
support; at d = 1555 the detector runs, picks diagonal covariances and says so."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from streamem import Detector
from streamem.scoring.structure import full_feasible


def test_d_1555_runs_scores_everything_and_warns_which_structure_it_chose(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(0)
    n, d = 1600, 1555  # InternetAds' width: mostly sparse 0/1 features, a few continuous
    X = (rng.random((n, d)) < 0.03).astype(float)
    X[:, :10] = rng.normal(size=(n, 10)) @ rng.normal(size=(10, 10))
    X[:, 10:20] = 0.0  # constant columns
    X[1300, :10] += 40.0  # a gross outlier in the continuous block
    det = Detector(random_state=0)
    with caplog.at_level(logging.WARNING, logger="streamem"):
        res = [det.process(X[i : i + 64]) for i in range(0, n, 64)]
    u = np.concatenate([r.surprise for r in res])
    assert det.ready_ and det.model_.covariance_type == "diag"
    assert np.isfinite(u[31:]).all()
    assert bool(np.concatenate([r.is_anomaly for r in res])[1300])
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1555 features" in m and "diagonal" in m for m in warned), warned


def test_auto_keeps_full_covariances_where_the_warm_up_supports_them_and_bic_wants_them() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 6))
    X = rng.normal(size=(1500, 6)) @ A  # strongly correlated
    det = Detector(random_state=0)
    det.process(X)
    assert det.model_.covariance_type == "full"
    assert full_feasible(1000, 36) and not full_feasible(1000, 44)


def test_auto_picks_diagonal_for_independent_features() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1500, 12)) * np.linspace(1, 5, 12)
    det = Detector(random_state=0)
    det.process(X)
    assert det.model_.covariance_type == "diag"


def test_an_explicit_structure_is_kept() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 3))
    det = Detector(warmup=300, covariance_type="full", random_state=0)
    det.process(X)
    assert det.model_.covariance_type == "full"
