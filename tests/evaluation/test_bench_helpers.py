"""The benchmark plumbing: document sections, the peer thresholding rule, scenario scoring."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def test_sections_are_inserted_in_order_and_replaced_in_place(tmp_path: Path) -> None:
    common = _bench("common")
    doc = tmp_path / "b.md"
    common.write_section(common.Section("null", "Null", "first"), doc)
    common.write_section(common.Section("throughput", "Thr", "speed"), doc)
    common.write_section(common.Section("null", "Null", "second"), doc)
    text = doc.read_text()
    assert text.startswith("# streamem benchmarks")
    assert "first" not in text and text.count("second") == 1
    assert text.index("## Thr") < text.index("## Null")  # ORDER puts throughput first
    common.write_section(common.Section("null", "Null", "second"), doc)
    assert doc.read_text() == text  # idempotent


def test_headline_is_rebuilt_from_every_section_in_the_doc_and_synced_to_readme(
        tmp_path: Path) -> None:
    common = _bench("common")
    main = _bench("__main__")
    doc = tmp_path / "b.md"
    common.write_section(common.Section("null", "Null", "n", {"null row": "1e-3"}), doc)
    common.write_section(common.Section("throughput", "Thr", "t", {"speed | row": "1 M/s"}), doc)
    # a later run of one benchmark replaces only its own rows; the others stay
    common.write_section(common.Section("null", "Null", "n2", {"null row": "2e-3"}), doc)
    assert common.read_facts(doc) == {"throughput": {"speed | row": "1 M/s"},
                                      "null": {"null row": "2e-3"}}
    head = main.headline(doc)
    table = head.body[head.body.index("| what |"):]
    assert table.splitlines()[2:] == ["| speed | row | 1 M/s |", "| null row | 2e-3 |"]
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:headline:start -->\nold\n"
                      "<!-- bench:headline:end -->\nend\n")
    assert common.sync_readme_table(table, readme)
    text = readme.read_text()
    assert "old" not in text and "| null row | 2e-3 |" in text and text.endswith("end\n")
    assert not common.sync_readme_table(table, tmp_path / "missing.md")


def test_quick_runs_never_target_the_docs() -> None:
    common = _bench("common")
    assert common.default_doc(False) == ROOT / "docs" / "benchmarks.md"
    assert common.default_doc(True) != common.default_doc(False)


class _DistanceScorer:
    """A real (tiny) streaming scorer: distance from the running mean of learned events."""

    name = "distance"

    def __init__(self) -> None:
        self.n, self.mean = 0, np.zeros(1)

    def learn(self, x: np.ndarray) -> None:
        self.n += 1
        self.mean = self.mean + (x - self.mean) / self.n

    def score(self, x: np.ndarray) -> float:
        return float(np.abs(x - self.mean).sum())


def test_run_peer_flags_above_the_running_quantile_and_skips_learning_them() -> None:
    peers = _bench("peers")
    rng = np.random.default_rng(0)
    warm = rng.normal(size=(500, 1))
    test = rng.normal(size=(300, 1))
    test[100] = 50.0
    scorer = _DistanceScorer()
    flags, scores = peers.run_peer(scorer, warm, test, q=0.999)
    assert flags[100] and scores[100] > 40
    assert flags.sum() <= 3
    # the outlier was not learned: the mean stays near 0
    assert abs(scorer.mean[0]) < 0.2
    assert scorer.n == 500 + 300 - int(flags.sum())


def test_readaptation_counts_events_until_alarms_stop() -> None:
    sc = _bench("scenarios")
    flags = np.zeros(5000, bool)
    flags[1000:1700] = True  # alarms for 700 events after the change at 1000
    ra = sc.readaptation(flags, (1000,))
    # first window [t, t+500) with <= 1 % alarms starts at 1700 - 5 -> 695 events after
    assert ra == pytest.approx(695, abs=1)
    flags[1000:] = True
    assert sc.readaptation(flags, (1000,)) is None
