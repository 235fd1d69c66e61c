"""The runtime's bucket stage (streamem.runtime.aggregation) and ``streamem replay`` with
``aggregate:``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.logs_buckets import access_log
from streamem import parsing
from streamem.config import parse_config
from streamem.errors import StateError
from streamem.events import EventBatch
from streamem.runtime.aggregation import BucketStage
from streamem.runtime.build import new_extractor, new_stage
from streamem.runtime.keying import screen_keys
from streamem.runtime.replay import replay

FEATURES = [{"name": "requests", "fn": "count"},
            {"name": "errors_5xx", "fn": "count", "where": "status >= 500"},
            {"name": "bytes", "fn": "sum", "field": "body_bytes_sent"}]


def _cfg(**aggregate: Any) -> Any:
    return parse_config({
        "source": {"type": "stdin", "format": "nginx"},
        "model": {"warmup": 100, "random_state": 0, **aggregate.pop("model", {})},
        "aggregate": {"bucket_span": "10s", "allowed_lateness": "5s", "features": FEATURES,
                      **aggregate}})


def _stage(cfg: Any) -> BucketStage:
    stage = new_stage(cfg, new_extractor(cfg, None, parsing.from_config(cfg)))
    assert stage is not None
    return stage


def _batch(lines: list[bytes], first: int = 0) -> EventBatch:
    offs = list(range(first, first + len(lines)))
    return EventBatch(lines, offs, [o + 1 for o in offs], 0, "access.log")


def _all_buckets(stage: BucketStage, lines: list[bytes], size: int) -> np.ndarray:
    rows = [stage.decode("global", _batch(lines[i:i + size], i)).X
            for i in range(0, len(lines), size)]
    rows.append(stage.decode("global", stage.closing("global", {0: len(lines)})).X)
    return np.vstack(rows)


def test_the_buckets_do_not_depend_on_the_batch_size() -> None:
    lines = access_log(minutes=6)
    one = _all_buckets(_stage(_cfg()), lines, 7)
    big = _all_buckets(_stage(_cfg()), lines, 1000)
    assert one.shape == (36, 3)  # 6 minutes of 10-second buckets, the last one flushed
    np.testing.assert_allclose(one, big)
    assert one[:, 0].sum() == len(lines)


def test_a_composite_by_key_is_the_scope_key_of_each_bucket() -> None:
    cfg = _cfg(by=["request_method", "status"], model={"scope": "key"})
    assert cfg.fields.key == ("request_method", "status")
    dec = _stage(cfg).decode("global", _batch(access_log(minutes=1)))
    ok, keys = screen_keys(dec, ["request_method", "status"])
    assert len(keys) == len(dec.kept) > 3 and not ok.rejected
    assert keys == [dec.key(i) for i in range(len(keys))]
    first = dec.record(0)
    assert keys[0] == f"{first['request_method']}|{first['status']}"
    assert first["$bucket"]["key"] == {"request_method": first["request_method"],
                                       "status": first["status"]}
    assert dec.id(0) == f"global:{keys[0]}:{first['$bucket']['bucket_start']:.0f}"


def test_scope_key_without_by_or_with_another_key_fails_with_its_path() -> None:
    with pytest.raises(Exception, match=r"aggregate.by: model.scope key"):
        _cfg(model={"scope": "key"})
    with pytest.raises(Exception, match=r"fields.key: 'remote_addr' but with aggregate"):
        parse_config({"source": {"type": "stdin", "format": "nginx"},
                      "model": {"scope": "key"}, "fields": {"key": "remote_addr"},
                      "aggregate": {"by": ["status"], "features": FEATURES}})


def test_jsonl_with_aggregate_needs_an_event_time_field() -> None:
    with pytest.raises(Exception, match=r"fields.timestamp: required with aggregate"):
        parse_config({"source": {"type": "stdin"}, "aggregate": {"features": FEATURES}})


def test_a_snapshot_of_other_bucket_columns_is_refused() -> None:
    stage = _stage(_cfg())
    stage.decode("global", _batch(access_log(minutes=1)))
    saved = stage.to_state("global")
    other = _stage(_cfg(features=FEATURES[:2]))
    with pytest.raises(StateError, match=r"aggregate.features gives \['requests', "
                                         r"'errors_5xx'\]"):
        other.restore("global", saved)
    again = _stage(_cfg())
    again.restore("global", saved)
    assert again.aggregator("global").to_state() == stage.aggregator("global").to_state()


def test_replay_scores_buckets_and_flushes_the_last_ones(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = access_log()
    log.write_bytes(b"\n".join(lines) + b"\n")
    cfg = _cfg(features=[*FEATURES, {"name": "clients", "fn": "distinct_count",
                                     "field": "remote_addr"}])
    res = replay(str(log), cfg, progress=False)
    assert res.X.shape == (240, 4)  # 40 minutes of 10-second buckets, the last flushed
    assert res.totals["events"] == len(lines) and res.X[:, 0].sum() == len(lines)
    flagged = res.timestamps[res.is_anomaly]
    t0 = 1_767_348_000.0
    assert ((flagged >= t0 + 1200) & (flagged < t0 + 1320)).sum() >= 6  # the 5xx burst
    assert ((flagged >= t0 + 1800) & (flagged < t0 + 1920)).sum() >= 6  # the silence


def test_a_bucket_names_its_most_frequent_templates_with_their_text() -> None:
    from testkit.logs import loghub_dir, read_log

    cfg = parse_config({
        "source": {"type": "stdin", "format": "syslog"}, "fields": {"template": "message",
                                                              "max_clock_skew_seconds": None},
        "aggregate": {"bucket_span": "1h", "features": [
            {"name": "lines", "fn": "count"},
            {"name": "templates", "fn": "count_by", "field": "template", "top": 20}]}})
    stage = _stage(cfg)
    lines = read_log(loghub_dir(), "OpenSSH")
    first = stage.decode("global", _batch(lines))
    assert not first.rejected
    dec = stage.decode("global", stage.closing("global", {0: len(lines)}))
    assert len(dec.kept) >= 1
    ev = dec.record(0)["$bucket"]
    tops = ev["templates"]
    assert 1 <= len(tops) <= 3 and tops[0]["count"] >= tops[-1]["count"]
    assert all(isinstance(t["template_text"], str) and t["template_text"] for t in tops)
    col = dec.X[0, 1:21]  # the count_by columns, after lines
    assert tops[0]["count"] == col.max()


def test_columns_give_the_buckets_of_records_and_fall_back_on_a_bad_line() -> None:
    from bench.logs_buckets import ISSUE_FEATURES
    from streamem.aggregate import Aggregator
    from streamem.parsing import PRESETS

    fmt = PRESETS["nginx"]
    lines = access_log(minutes=5)  # 200 requests a minute: quantiles stay exact
    by_rec = Aggregator(ISSUE_FEATURES, 60, allowed_lateness=30)
    by_col = Aggregator(ISSUE_FEATURES, 60, allowed_lateness=30)
    fields = [*by_col._fields, "time_local"]
    a, b = [], []
    for i in range(0, len(lines), 500):
        batch = lines[i:i + 500]
        recs = fmt.parse(batch)
        a.append(by_rec.add(recs, [r["time_local"] for r in recs], batch)[0].X)
        cols = fmt.columns(batch, fields)
        assert cols is not None and set(cols) == set(fields)
        b.append(by_col.add_columns(cols, cols["time_local"], batch)[0].X)
    a.append(by_rec.flush().X)
    b.append(by_col.flush().X)
    np.testing.assert_array_equal(np.vstack(a), np.vstack(b))
    assert np.vstack(a).shape == (5, len(by_rec.columns))
    assert fmt.columns([lines[0], b"not nginx"], fields) is None
    assert fmt.columns([lines[0].replace(b" 200 ", b" 2x0 ")], fields) is None
