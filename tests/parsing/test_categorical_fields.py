"""``fields.categorical``: config rules, decoding to codes, hostile values, template ids."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamem.config import parse_config
from streamem.errors import ConfigError
from streamem.features import FeatureExtractor
from streamem.model._catcodes import CategoricalBatch
from streamem.parsing import from_config
from streamem.parsing.categorical import MAX_VALUE_CHARS, decode_categorical
from streamem.runtime.build import new_extractor

BASE: dict[str, Any] = {"source": {"type": "stdin"}}


@pytest.mark.parametrize(("fields", "path", "words"), [
    ({"features": ["a", "method"], "categorical": ["method"]}, "fields.categorical[0]",
     "also in fields.features"),
    ({"features": ["a"], "categorical": ["m", "m"]}, "fields.categorical[1]", "listed twice"),
    ({"features": ["a"], "categorical": [""]}, "fields.categorical[0]", "field name"),
    ({"features": ["a"], "key": "host", "categorical": ["host"]}, "fields.categorical[0]",
     "key, timestamp or id"),
])
def test_config_errors_name_the_yaml_path_and_the_fix(fields: dict[str, Any], path: str,
                                                      words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        parse_config({**BASE, "fields": fields})
    assert str(err.value).startswith(path + ":")


def test_a_config_with_categorical_fields_builds_an_extractor_that_codes_them() -> None:
    cfg = parse_config({**BASE, "fields": {"features": ["ms"],
                                           "categorical": ["method", "status_class"]}})
    assert cfg.fields.categorical == ("method", "status_class")
    b = new_extractor(cfg).decode([
        b'{"ms": 3, "method": "GET", "status_class": "2xx"}',
        b'{"ms": 4, "method": "POST"}',
        b'{"ms": 5, "method": "GET", "status_class": null}',
    ])
    assert b.categorical is not None and b.rejected == []
    assert [b.categorical.values(i) for i in range(3)] == [
        {"method": "GET", "status_class": "2xx"}, {"method": "POST", "status_class": None},
        {"method": "GET", "status_class": None}]  # missing is a code, not a rejection


def test_hostile_values_are_rejected_or_escaped_and_rows_stay_aligned() -> None:
    fx = FeatureExtractor(["v"], categorical=["m"])
    payloads = [
        json.dumps({"v": 1, "m": "x" * (MAX_VALUE_CHARS + 1)}).encode(),   # too long
        json.dumps({"v": 2, "m": {"nested": 1}}).encode(),                # an object
        json.dumps({"v": 3, "m": "GET\r\nX-Injected: 1"}).encode(),       # control chars
        json.dumps({"v": 4, "m": True}).encode(),
        json.dumps({"v": 5, "m": 404.0}).encode(),
        json.dumps({"v": 6}).encode(),
    ]
    b = fx.decode(payloads)
    assert [(r.index, r.reason) for r in b.rejected] == [(0, "invalid_value"), (1, "wrong_type")]
    assert "at most 256" in b.rejected[0].detail
    assert b.X[:, 0].tolist() == [3.0, 4.0, 5.0, 6.0]
    assert b.categorical is not None
    assert [b.categorical.values(i)["m"] for i in range(4)] == [
        "GET\\x0d\\x0aX-Injected: 1", "true", "404", None]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8), st.integers(-1000, 1000)),
                min_size=1, max_size=40))
def test_codes_decode_back_to_each_value_on_the_fast_and_the_careful_path(
        values: list[Any]) -> None:
    recs = [{"m": v} for v in values]
    b, bad = decode_categorical(recs, ["m"])
    assert bad == {}
    want = [None if v is None or v == "" else str(v) for v in values]
    got = [b.values(i)["m"] for i in range(len(values))]
    # escaped control characters aside, every value comes back as its text
    assert [g for g, w in zip(got, want, strict=True) if w is None or w.isprintable()] == \
        [w for w in want if w is None or w.isprintable()]
    assert len(set(b.vocab[0])) == len(b.vocab[0])  # a vocabulary of distinct values
    assert ((b.codes >= -1) & (b.codes < len(b.vocab[0]))).all()


def test_library_batches_accept_columns_and_check_them() -> None:
    b = CategoricalBatch.of({"m": ["a", None, "a"], "s": [1, 2, 1]})
    assert b.codes.tolist() == [[0, 0], [-1, 1], [0, 0]]
    assert CategoricalBatch.of(b, ["m", "s"]) is b
    with pytest.raises(Exception, match="lengths"):
        CategoricalBatch.of({"m": ["a"], "s": [1, 2]})
    assert np.array_equal(CategoricalBatch.of({"m": []}).codes, np.empty((0, 1)))


def test_the_template_id_is_a_categorical_field_of_a_text_log() -> None:
    cfg = parse_config({"source": {"type": "stdin", "format": "syslog"},
                        "fields": {"features": ["procid"], "template": "message",
                                   "categorical": ["template", "app_name"]}})
    fx = new_extractor(cfg, lines=from_config(cfg))
    lines = [f"Dec  1 06:55:{i:02d} host sshd[{100 + i}]: Failed password for user{i} "
             f"from 10.0.0.{i} port 22 ssh2".encode() for i in range(5)]
    lines.append(b"Dec  1 06:56:00 host cron[7]: session opened for user root")
    b = fx.decode(lines)
    assert b.categorical is not None and len(b.kept) == 6
    ids = [b.categorical.values(i)["template"] for i in range(6)]
    assert len(set(ids[:5])) == 1 and ids[5] != ids[0]  # one template, then a new one
    assert b.categorical.values(5)["app_name"] == "cron"
