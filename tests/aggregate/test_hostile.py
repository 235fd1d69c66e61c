"""Hostile values are counted as rejections with a reason, never a crash; bad specs fail
with the YAML path and the fix."""

from __future__ import annotations

from collections import UserDict

import numpy as np
import pytest

from streamem.aggregate import Aggregator, FeatureSpec
from streamem.errors import ConfigError

FEATS = [FeatureSpec("n", "count"), FeatureSpec("s", "sum", field="x"),
         FeatureSpec("d", "distinct_count", field="ip"),
         FeatureSpec("c", "count_by", field="ip", top=3)]


def test_bad_times_and_values_are_rejected_with_their_reason() -> None:
    agg = Aggregator(FEATS, 60)
    recs = [{"x": 1}, {"x": "abc"}, {"x": True}, {"x": float("inf")}, {"x": 1e300},
            {"x": [1]}, {"x": {"a": 1}}, {"x": 2}, {"x": 3}]
    times = [0, 1, 2, 3, 4, 5, 6, float("nan"), 1e12]
    _out, rej = agg.add(recs, times)
    assert [(i, r) for i, r, _ in rej] == [(1, "invalid_value"), (2, "invalid_value"),
                                           (3, "invalid_value"), (4, "invalid_value"),
                                           (5, "invalid_value"), (6, "invalid_value"),
                                           (7, "bad_timestamp"), (8, "bad_timestamp")]
    assert "x='abc' is not a finite number" in rej[0][2]
    assert agg.flush().X[0, :2].tolist() == [1.0, 1.0]


def test_odd_categorical_values_are_text_and_never_crash() -> None:
    agg = Aggregator(FEATS, 60)
    odd = ["\x00\r\n", "é" * 5000, 7, 7.0, None, ["a"], {"k": 1}, "\ud800", True]
    _out, rej = agg.add([{"ip": v} for v in odd], np.zeros(len(odd)))
    assert rej == []
    last = agg.flush()
    assert last.X[0, 0] == len(odd) and 7 <= last.X[0, 1 + 1] <= 10  # d: ~9 distinct texts
    assert last.labels["c"] == ["\x00\r\n", "é" * 5000, "7"]


def test_new_keys_beyond_max_keys_are_rejected_as_invalid_key() -> None:
    agg = Aggregator([FeatureSpec("n", "count")], 60, by=["svc"], max_keys=2)
    _, rej = agg.add([{"svc": s} for s in ["a", "b", "c", "a", "d"]], np.zeros(5))
    assert [(i, r) for i, r, _ in rej] == [(2, "invalid_key"), (4, "invalid_key")]
    assert "raise aggregate.max_keys" in rej[0][2]


def test_records_that_are_mappings_but_not_dicts_and_nested_fields() -> None:
    agg = Aggregator([FeatureSpec("s", "sum", field="http.bytes")], 60)
    _, rej = agg.add([UserDict({"http.bytes": 3}), {"http": {"bytes": 4}}], [0, 1])
    assert rej == [] and agg.flush().X.tolist() == [[7.0]]


def test_records_that_are_not_mappings_are_wrong_type() -> None:
    agg = Aggregator(FEATS, 60)
    _, rej = agg.add([{"x": 1}, ("parse_error", "x"), None, "text", {"x": 2}], np.zeros(5))
    assert [(i, r) for i, r, _ in rej] == [(1, "wrong_type"), (2, "wrong_type"),
                                           (3, "wrong_type")]
    assert agg.flush().X[0, :2].tolist() == [2.0, 3.0]


def test_lengths_that_disagree_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="give one each"):
        Aggregator(FEATS, 60).add([{}], [0, 1])


@pytest.mark.parametrize(("kwargs", "path", "fix"), [
    ({"name": "x", "fn": "median", "field": "a"}, "f.fn", "use one of count, sum"),
    ({"name": "x", "fn": "sum"}, "f.field", "name the record field"),
    ({"name": "x", "fn": "count", "field": "a"}, "f.field", "use where:"),
    ({"name": "x", "fn": "quantile", "field": "a", "q": 1.5}, "f.q", "from 0 to 1"),
    ({"name": "x", "fn": "sum", "field": "a", "q": 0.5}, "f.q", "remove it"),
    ({"name": "x", "fn": "count_by", "field": "a", "top": 0}, "f.top", "from 1 to 1000"),
    ({"name": "x", "fn": "count", "where": "status >= "}, "f.where", "at the end"),
    ({"name": "x", "fn": "count", "where": "status => 5"}, "f.where", "at character 8"),
    ({"name": "x", "fn": "count", "where": "status >= high"}, "f.where", "a number after >="),
    ({"name": "x", "fn": "count", "where": "__import__('os')"}, "f.where", "an operator"),
    ({"name": "x", "fn": "count", "where": "a == 1 or"}, "f.where", "at the end"),
    ({"name": "", "fn": "count"}, "f.name", "name the feature"),
])
def test_a_bad_feature_names_its_path_and_the_fix(kwargs, path, fix) -> None:
    with pytest.raises(ConfigError) as exc:
        FeatureSpec(**kwargs, path="f")
    assert str(exc.value).startswith(path + ":") and fix in str(exc.value)


@pytest.mark.parametrize(("kwargs", "path"), [
    ({"bucket_span": 0.5}, "aggregate.bucket_span"),
    ({"bucket_span": 60, "allowed_lateness": -1}, "aggregate.allowed_lateness"),
    ({"bucket_span": 60, "max_keys": 0}, "aggregate.max_keys"),
])
def test_bad_aggregator_settings(kwargs, path) -> None:
    with pytest.raises(ConfigError, match=path):
        Aggregator(FEATS, **kwargs)
