"""``model.scope: key`` settings: what the config accepts and how a bad value is reported."""

from __future__ import annotations

from typing import Any

import pytest

from streamem.config import parse_config
from streamem.errors import ConfigError
from streamem.runtime.keying import join_key, key_idle_ttl, key_parts


def _cfg(model: dict[str, Any], key: Any = "pump") -> dict[str, Any]:
    fields: dict[str, Any] = {"features": ["t"]}
    if key is not None:
        fields["key"] = key
    return {"source": {"type": "stdin"}, "fields": fields, "model": model}


def test_defaults_and_composite_key() -> None:
    cfg = parse_config(_cfg({"scope": "key"}, ["site", "pump"]))
    m = cfg.model
    assert (m.scope, m.max_keys_in_memory, m.key_prior_events, m.key_idle_ttl) == \
        ("key", 100_000, 10.0, None)
    assert key_parts(cfg) == ("site", "pump") and key_idle_ttl(cfg) is None
    assert key_idle_ttl(parse_config(_cfg({"scope": "key", "key_idle_ttl": "12h"}))) == 43200.0


@pytest.mark.parametrize(("model", "key", "path", "hint"), [
    ({"scope": "key"}, None, "model.scope", "needs fields.key"),
    ({"scope": "key", "key_idle_ttl": "soon"}, "pump", "model.key_idle_ttl", "7d"),
    ({"scope": "key", "key_idle_ttl": -5}, "pump", "model.key_idle_ttl", ""),
    ({"scope": "key", "max_keys_in_memory": 0}, "pump", "model.max_keys_in_memory", "100000"),
    ({"scope": "key", "max_keys_in_memory": 100}, "pump", "model.max_keys_in_memory",
     "batch.max_events (512)"),
    ({"scope": "key", "key_prior_events": -1}, "pump", "model.key_prior_events", "10"),
    ({"scope": "key"}, ["site", "site"], "fields.key", "[site, pump]"),
    ({"scope": "key"}, [], "fields.key", "distinct"),
])
def test_bad_settings_name_the_path(model: dict[str, Any], key: Any, path: str,
                                    hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg(model, key))
    assert err.value.path == path and hint in str(err.value)


def test_composite_keys_cannot_collide() -> None:
    pairs = [["a|b", "c"], ["a", "b|c"], ["a\\", "|c"], ["a\\|", "c"], ["a", "b", "c"]]
    joined = [join_key(p) for p in pairs]
    assert len(set(joined)) == len(joined)


def test_scope_key_refuses_an_event_time_half_life() -> None:
    with pytest.raises(ConfigError, match=r"model\.half_life: '7d' is in event time"):
        parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"], "key": "k",
                                                               "timestamp": "t"},
                      "model": {"scope": "key", "half_life": "7d"}})
