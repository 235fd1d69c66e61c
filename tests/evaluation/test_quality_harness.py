"""The quality harness of bench/ (ADBench, NAB): metrics, NaN rule, order, RCF, NAB scoring."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score  # type: ignore[import-untyped]

from streamem.evaluation import numenta

ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_pair_matches_sklearn_with_ties(seed: int) -> None:
    q = _bench("quality")
    rng = np.random.default_rng(seed)
    y = rng.random(200) < 0.2
    s = np.round(rng.normal(size=200) + y, 1)  # rounding makes many ties
    roc, pr = q.auc_pair(y, s)
    assert roc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert pr == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_unscored_events_count_as_the_lowest_score_tied_together() -> None:
    q = _bench("quality")
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    s = np.array([np.nan, np.nan, np.nan, 0.1, 0.2, 0.9, -5.0, np.nan])
    lowest = np.where(np.isnan(s), -6.0, s)  # below every scored event, all tied
    roc, pr = q.auc_pair(y, s)
    assert roc == pytest.approx(roc_auc_score(y, lowest))
    assert pr == pytest.approx(average_precision_score(y, lowest))
    # dropping the unscored events instead would give a different (higher) figure
    keep = ~np.isnan(s)
    assert roc < roc_auc_score(y[keep], s[keep])
    # a detector that scores nothing is exactly uninformative
    assert q.auc_pair(y, np.full(8, np.nan))[0] == 0.5


class _Memoriser:
    """Scores 0 for a point it has learned, 1 for a new one."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.array([0.0 if x.tobytes() in self.seen else 1.0 for x in X])

    def learn(self, X: np.ndarray) -> None:
        self.seen.update(x.tobytes() for x in X)


def test_prequential_scores_each_batch_before_learning_it() -> None:
    q = _bench("quality")
    X = np.arange(300.0).reshape(-1, 1)
    X = np.vstack([X, X[:64]])  # 300 new points, then 64 repeats of learned ones
    s = q.prequential(_Memoriser(), X, batch=64)
    # learned first, every point would be "known" (0); scored first, new points are 1
    assert s[:300].tolist() == [1.0] * 300
    assert s[300:].tolist() == [0.0] * 64
    # a duplicate inside one batch is scored before the batch is learned
    dup = np.array([[7.0], [7.0], [8.0]])
    assert q.prequential(_Memoriser(), dup, batch=64).tolist() == [1.0, 1.0, 1.0]
    assert q.prequential(_Memoriser(), dup, batch=1).tolist() == [1.0, 0.0, 1.0]


def _outlier_set(n: int = 600, at: int = 450, d: int = 3) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    X[at] = 12.0
    return X, at


def test_rcf_runner_builds_with_maven_and_ranks_an_obvious_outlier_first() -> None:
    rcf = _bench("rcf")
    folder, _ = rcf.build()  # real Maven + Java; a missing tool fails this test
    assert (folder / ".complete").exists()
    assert rcf.build()[1] == 0.0  # cached: the second build is free
    X, k = _outlier_set()
    out = rcf.run(X, seed=0)
    assert out.score.shape == (len(X),)
    assert np.isnan(out.score[:32]).all() and np.isfinite(out.score[32:]).all()
    assert int(np.nanargmax(out.score)) == k
    assert out.grade[k] > 0  # RCF's own thresholder flags it too
    again = rcf.run(X, seed=0)
    np.testing.assert_array_equal(out.score, again.score)  # seeded: reproducible


def test_rcf_scores_a_point_before_the_forest_learns_it() -> None:
    rcf = _bench("rcf")
    # before the 256-point samples fill up, every tree keeps every point
    X, k = _outlier_set(n=200, at=100)
    X = np.insert(X, k + 1, X[k], axis=0)  # the same outlier twice in a row
    s = rcf.run(X, seed=0).score
    # the first copy is scored by a forest that has not seen it (5.2 with seed 0); the
    # second finds its twin, learned right after being scored (3.0)
    assert s[k] == np.nanmax(s) and s[k] > 1.5 * s[k + 1]


def test_streamem_and_peers_rank_an_outlier_in_the_harness() -> None:
    q = _bench("quality")
    X, k = _outlier_set(n=1400, at=1200)  # after streamem's warm-up (today 1000 events)
    y = np.zeros(len(X), bool)
    y[k] = True
    for peer in (q.LodaPeer(), q.HSTPeer()):
        s = peer.run(X)
        assert s.shape == (len(X),)
        assert q.auc_pair(y, s)[0] > 0.95, peer.name
    st = q.StreamemPeer()
    s = st.run(X)
    assert 0 < st.scored_fraction <= 1
    assert np.nanargmax(s) == k


def test_offline_gmm_picks_k_by_bic_within_the_parameter_bound() -> None:
    q = _bench("quality")
    rng = np.random.default_rng(0)
    two = np.vstack([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 8.0])
    g = q.OfflineGMM()
    s = g.run(two)
    assert g.chosen == "K=2, full" and np.isfinite(s).all()
    # 40 events in 10 dimensions: one full component has 65 parameters -> diagonal, and
    # K stays where the parameters (21 per component) do not outnumber the events
    small = q.OfflineGMM()
    small.run(rng.normal(size=(40, 10)))
    assert small.chosen in ("K=1, diag",)
    assert q.gmm_params(1, 10, "full") == 65 and q.gmm_params(2, 10, "diag") == 41


def test_adbench_loader_shuffles_reproducibly_and_caps(tmp_path: Path) -> None:
    ad = _bench("adbench")
    X = np.arange(100.0).reshape(50, 2)
    y = (np.arange(50) % 10 == 0).astype(int)
    np.savez(tmp_path / "b.npz", X=X, y=y)
    np.savez(tmp_path / "A.npz", X=X[:20], y=y[:20])
    sets = ad.load(tmp_path, cap=30)
    assert [s.name for s in sets] == ["A", "b"]
    b = sets[1]
    assert b.X.shape == (30, 2) and b.n_total == 50
    assert not np.array_equal(b.X[:, 0], X[:30, 0])  # shuffled
    np.testing.assert_array_equal(b.X[:, 0] / 2 % 10 == 0, b.y)  # rows keep their labels
    np.testing.assert_array_equal(ad.load(tmp_path, cap=30)[1].X, b.X)  # fixed seed


def test_running_percentile_is_causal() -> None:
    nab = _bench("nab")
    s = np.array([3.0, 1.0, np.nan, 2.0, 5.0, 5.0])
    p = nab.running_percentile(s)
    assert np.isnan(p[2])
    # rank among the scores so far, itself included, ties counted half: 5.0 at index 5
    # sees [1, 2, 3, 5]: (3 below + 1/2 tie + 1 itself) / 5
    assert p[0] == 1.0 and p[1] == 0.5 and p[4] == 1.0 and p[5] == pytest.approx(0.9)
    changed = s.copy()
    changed[4:] = -1.0  # the future does not move the past
    np.testing.assert_array_equal(nab.running_percentile(changed)[:4], p[:4])


def test_nab_sweep_finds_the_best_threshold_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    files = [numenta.nab_file(400, [(100, 119), (300, 329)]), numenta.nab_file(300, []),
             numenta.nab_file(500, [(60, 79)])]  # the last window starts in probation
    scores = [np.round(rng.random(f.window.size), 2) for f in files]
    for s, f in zip(scores, files, strict=True):
        s[f.window >= 0] += rng.random() * 0.3  # windows score a bit higher
    for profile in numenta.PROFILES:
        thr, best = numenta.best_threshold(files, scores, profile)
        cands = np.unique(np.concatenate(scores))
        brute = max(numenta.raw_score(files, scores, t, profile) for t in cands)
        assert best == pytest.approx(max(brute, -numenta.PROFILES[profile][2] * 3))
        if np.isfinite(thr):
            assert numenta.raw_score(files, scores, thr, profile) == pytest.approx(best)


def test_nab_scores_like_numenta_on_a_hand_worked_file() -> None:
    f = numenta.nab_file(1000, [(400, 409), (700, 719)])
    assert f.n_windows == 2 and int((f.window == numenta.PROBATION).sum()) == 150
    s = np.zeros(1000)
    s[[402, 405]] = 1.0  # window 1: the earlier detection counts
    s[50] = 1.0  # probationary: ignored
    s[600] = 1.0  # far after window 1: a full false positive
    # window 1 detected at x = -(409 - 402 + 1) / 10 = -0.8; window 2 missed
    tp = float(numenta.scaled_sigmoid(-0.8) / numenta.scaled_sigmoid(-1.0))
    raw = numenta.raw_score([f], [s], 0.5)
    assert raw == pytest.approx(tp - 0.11 - 1.0)
    assert numenta.normalised(raw, 2) == pytest.approx(100 * (raw + 2) / 4)
    perfect = np.zeros(1000)
    perfect[[400, 700]] = 1.0
    assert numenta.normalised(numenta.raw_score([f], [perfect], 0.5), 2) == pytest.approx(100)


def test_nab_loader_maps_window_timestamps_to_indices(tmp_path: Path) -> None:
    nab = _bench("nab")
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    rows = [f"2020-01-01 00:{m:02d}:00,{m}" for m in range(20)]
    (tmp_path / "data" / "cat" / "f.csv").write_text("timestamp,value\n" + "\n".join(rows))
    (tmp_path / "labels" / "combined_windows.json").write_text(
        '{"cat/f.csv": [["2020-01-01 00:05:00.000000", "2020-01-01 00:08:00.000000"]]}'
    )
    (s,) = nab.load(tmp_path)
    assert s.windows == [(5, 8)] and s.in_window.sum() == 4 and s.category == "cat"
    assert nab.shingles(s.values).shape == (13, 8)


def test_python_m_bench_only_adbench_writes_its_section_and_headline(tmp_path: Path) -> None:
    main = _bench("__main__")
    data = tmp_path / "adbench"
    data.mkdir()
    X, k = _outlier_set(n=1300, at=1250)
    y = np.zeros(len(X), int)
    y[[k, 1100]] = 1
    X[1100] = -9.0
    np.savez(data / "synthetic.npz", X=X, y=y)
    doc = tmp_path / "b.md"
    main.main(["--quick", "--only", "adbench", "--adbench", str(data), "--out", str(doc)])
    text = doc.read_text()
    assert "<!-- bench:adbench:start -->" in text and "| synthetic | 1,300 | 3 | 2 |" in text
    facts = _bench("common").read_facts(doc)
    assert set(facts) == {"adbench"}  # the headline section carries no facts of its own
    assert "<!-- bench:headline:start -->" in text
    assert "ADBench dev, mean ROC-AUC / PR-AUC (streamem defaults)" in facts["adbench"]


def test_streamem_peer_ranks_by_surprise_and_keeps_the_nll_of_the_same_run() -> None:
    """The harness ranks streamem by its calibrated surprise (comparable across the cold
    start and the mixture) and keeps the same run's negative log-likelihood beside it."""
    import streamem

    q = _bench("quality")
    X, _ = _outlier_set(n=1400, at=1200)
    st = q.StreamemPeer()
    s = st.run(X)
    det = streamem.Detector(random_state=0)
    parts = [det.process(X[i : i + q.BATCH]) for i in range(0, len(X), q.BATCH)]
    assert np.array_equal(s, np.concatenate([r.surprise for r in parts]), equal_nan=True)
    assert np.array_equal(st.nll, np.concatenate([r.scores for r in parts]), equal_nan=True)
    assert not np.array_equal(s, st.nll, equal_nan=True)
