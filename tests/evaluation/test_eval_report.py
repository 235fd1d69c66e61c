"""The HTML/PNG report: files written, table filled, inputs checked, extra missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from streamem.errors import InvalidInputError, StreamemError
from streamem.evaluation.report import ReportDependencyError, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _stream(n: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    x[1500:1510, 2] += 8.0
    labels = np.zeros(n, bool)
    labels[1500:1510] = True
    scores = np.abs(x).max(axis=1)
    scores[:100] = np.nan  # warm-up
    return x, labels, scores


def test_writes_all_plots_and_an_index(tmp_path: Path) -> None:
    x, labels, scores = _stream()
    weights = np.tile([0.5, 0.3, 0.2], (40, 1))
    paths = write_report(
        tmp_path / "out",
        scores=scores,
        threshold=4.0,
        is_anomaly=np.nan_to_num(scores) > 4.0,
        X=x,
        feature_names=["temp", "load", "flow"],
        labels=labels,
        timestamps=1.6e9 + np.arange(2000.0),
        weights_history=weights,
        metrics={"F1": 0.8123456, "detector": "streamem"},
    )
    names = [p.name for p in paths]
    assert names == ["scores.png", "features.png", "weights.png", "index.html"]
    for p in paths[:-1]:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
    page = paths[-1].read_text()
    for n in names[:-1]:
        assert f'src="{n}"' in page
    assert "0.8123" in page and "streamem" in page
    assert "2,000" in page  # event count in the summary
    assert "labelled anomalous</th><td>10" in page


def test_feature_plot_skipped_without_anomalies(tmp_path: Path) -> None:
    x, _, scores = _stream()
    paths = write_report(
        tmp_path,
        scores=scores,
        threshold=99.0,
        is_anomaly=np.zeros(2000, bool),
        X=x,
        feature_names=None,
    )
    assert [p.name for p in paths] == ["scores.png", "index.html"]


def test_html_escapes_metric_names(tmp_path: Path) -> None:
    x, _, scores = _stream(300)
    paths = write_report(
        tmp_path,
        scores=scores,
        threshold=4.0,
        is_anomaly=np.zeros(300, bool),
        X=x,
        feature_names=None,
        metrics={"<script>": 1},
    )
    assert "<script>" not in paths[-1].read_text()


def test_shape_mismatches_are_reported(tmp_path: Path) -> None:
    x, _, scores = _stream(300)
    with pytest.raises(InvalidInputError, match="expected \\(300,\\)"):
        write_report(
            tmp_path,
            scores=scores[:10],
            threshold=1.0,
            is_anomaly=scores > 1,
            X=x,
            feature_names=None,
        )
    with pytest.raises(InvalidInputError, match="one name per column"):
        write_report(
            tmp_path, scores=scores, threshold=1.0, is_anomaly=scores > 1, X=x, feature_names=["a"]
        )


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a None entry in sys.modules makes the import fail as if matplotlib were not installed
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    x, _, scores = _stream(300)
    with pytest.raises(ReportDependencyError, match=r"pip install streamem\[report\]") as info:
        write_report(
            tmp_path, scores=scores, threshold=1.0, is_anomaly=scores > 1, X=x, feature_names=None
        )
    assert isinstance(info.value, StreamemError)


def test_incidents_group_nearby_flags_and_rank_by_peak() -> None:
    from streamem.evaluation.report import _incidents

    flags = np.zeros(100, bool)
    flags[[10, 12, 15]] = True  # one incident (gaps <= 10)
    flags[[50, 51]] = True  # a second one
    flags[90] = True  # a third
    scores = np.ones(100)
    scores[12], scores[51], scores[90] = 5.0, 9.0, 2.0
    assert _incidents(scores, flags, 2) == [(50, 51), (10, 12)]
    assert _incidents(scores, np.zeros(100, bool), 3) == []


def test_float_labels_with_nan_count_only_ones(tmp_path: Path) -> None:
    x, _, scores = _stream(300)
    lab = np.full(300, np.nan)
    lab[100:105] = 1.0
    lab[200:210] = 0.0
    paths = write_report(
        tmp_path,
        scores=scores,
        threshold=4.0,
        is_anomaly=np.zeros(300, bool),
        X=x,
        feature_names=None,
        labels=lab,
    )
    assert "labelled anomalous</th><td>5<" in paths[-1].read_text()
