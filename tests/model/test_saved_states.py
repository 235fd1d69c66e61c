"""States written by an earlier streamem (``tests/model/fixtures``, see ``generate.py``) still
load, and the restored objects continue exactly as the code that wrote them did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.gmm import assert_state_equal

from streamem import Detector, OnlineGMM, StateError
from streamem.model._versioned import StateReader

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def decode(obj: Any) -> Any:
    """Inverse of ``fixtures/generate.py:encode``."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            dtype = np.dtype(obj["dtype"])
            flat = obj["__ndarray__"]
            vals = [float.fromhex(v) for v in flat] if dtype.kind == "f" else flat
            return np.asarray(vals, dtype=dtype).reshape(obj["shape"])
        if "__dict__" in obj:
            return {decode(k): decode(v) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [decode(v) for v in obj["__list__"]]
            return tuple(items) if obj["tuple"] else items
        if "__float__" in obj:
            return float.fromhex(obj["__float__"])
    return obj


def load(name: str) -> dict[str, Any]:
    out: dict[str, Any] = decode(json.loads((FIXTURES / f"{name}.json").read_text()))
    return out


@pytest.mark.parametrize("name", ["detector_cold", "detector_blind", "detector_ready",
                                  "detector_regime"])
def test_saved_detector_continues_bit_for_bit(name: str) -> None:
    fx = load(name)
    det = Detector.from_state(fx["state"])
    assert_state_equal(det.to_state(), fx["state"])
    res = det.process(fx["next"])
    np.testing.assert_array_equal(res.scores, fx["scores"])
    np.testing.assert_array_equal(res.surprise, fx["surprise"])
    np.testing.assert_array_equal(res.is_anomaly, fx["is_anomaly"])
    np.testing.assert_array_equal(res.learned, fx["learned"])
    assert_state_equal(det.to_state(), fx["after"])


def test_saved_regime_fixture_holds_a_regime_change() -> None:
    assert Detector.from_state(load("detector_regime")["state"]).regime_changes_ == 1


def test_saved_gmm_continues_bit_for_bit() -> None:
    fx = load("gmm_diag")
    m = OnlineGMM.from_state(fx["state"])
    m.partial_fit(fx["next"])
    np.testing.assert_array_equal(m.score_samples(fx["probe"]), fx["scores"])
    assert_state_equal(m.to_state(), fx["after"])


def test_saved_river_adapter_scores_as_before() -> None:
    from streamem.integrations.river import GMMAnomalyDetector

    fx = load("river")
    det = GMMAnomalyDetector.from_state(fx["state"])
    got = [det.score_one({"a": float(a), "b": float(b)}) for a, b in fx["probe"]]
    np.testing.assert_array_equal(got, fx["scores"])


def test_saved_template_miner_mines_as_before() -> None:
    from streamem.parsing.templates import TemplateMiner

    fx = load("templates")
    miner = TemplateMiner.from_state(fx["state"])
    assert [list(miner.mine(m)) for m in fx["probe"]] == fx["mined"]


def test_detector_state_before_drift_tolerance_and_cold_start_loads() -> None:
    """The oldest layout: no ``baseline``/``cold``, the blind warm-up buffer at the top."""
    state = load("detector_blind")["state"]
    buffer = state["cold"]["buffer"]
    old = {k: v for k, v in state.items() if k not in ("baseline", "cold", "recent_surprise")}
    old["params"] = {k: v for k, v in state["params"].items()
                     if k not in ("detrend_half_life", "cold_start", "smooth_window",
                                  "detrend_min_autocorr")}
    old["buffer"] = buffer
    det = Detector.from_state(old)
    assert det.params["cold_start"] is False and det.params["detrend_half_life"] is None
    assert det.cold_.n_buffered_ == len(buffer)
    fresh = Detector(warmup=60, cold_start=False, random_state=0)
    fresh.process(buffer)
    X = load("detector_blind")["next"]
    np.testing.assert_array_equal(det.process(X).scores, fresh.process(X).scores)


@pytest.mark.parametrize(("owner", "call"), [
    ("Detector", lambda s: Detector.from_state(s)),
    ("OnlineGMM", lambda s: OnlineGMM.from_state(s)),
])
def test_state_errors_name_the_field_and_the_fix(owner: str, call: Any) -> None:
    with pytest.raises(StateError, match=f"{owner} state version 7 is not 1"):
        call({"version": 7})
    with pytest.raises(StateError, match=f"{owner} state: 'params' is missing"):
        call({"version": 1})


def test_nested_errors_name_the_path() -> None:
    state = load("detector_ready")["state"]
    bad = {**state, "threshold": {**state["threshold"], "head": "x"}}
    with pytest.raises(StateError, match=r"threshold.head"):
        Detector.from_state(bad)
    bad = {**state, "threshold": {k: v for k, v in state["threshold"].items() if k != "z"}}
    with pytest.raises(StateError, match=r"'threshold.z' is missing"):
        Detector.from_state(bad)


def test_reader_rejects_a_non_mapping_and_an_unknown_kind() -> None:
    with pytest.raises(StateError, match="not a mapping"):
        StateReader([1, 2], "Thing")
    with pytest.raises(StateError, match=r"kind 'spot'.*expected 'fixed'"):
        StateReader({"kind": "spot"}, "Thing", kind="fixed")


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into the nested dicts of a state."""
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    return out


def _edited(state: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of ``state`` with ``path`` set to ``value`` (deleted for ``_DELETE``)."""
    top = dict(state)
    node = top
    for k in path[:-1]:
        node[k] = dict(node[k])
        node = node[k]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return top


_DELETE = object()
_STATES = {name: load(name)["state"] for name in
           ("detector_cold", "detector_ready", "detector_regime")}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damaged_field_is_a_state_error_or_loads(data: st.DataObject) -> None:
    """Hostile snapshots: a deleted or garbage field never raises anything but StateError."""
    name = data.draw(st.sampled_from(sorted(_STATES)))
    state = _STATES[name]
    path = data.draw(st.sampled_from(_paths(state)))
    value = data.draw(st.sampled_from(
        [_DELETE, None, "x", -1, 1e308, [], {}, [[1, 2], [3]], {"a": 1}, True]))
    try:
        Detector.from_state(_edited(state, path, value))
    except StateError as exc:
        assert str(exc)
