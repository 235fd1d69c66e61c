"""The config keys of text logs: source.format/pattern/types and fields.template."""

from __future__ import annotations

from typing import Any

import pytest

from streamem.config import parse_config
from streamem.errors import ConfigError


def _cfg(source: dict[str, Any], fields: dict[str, Any] | None = None) -> Any:
    return parse_config({"source": {"type": "stdin", **source},
                         "fields": {"features": ["status"], **(fields or {})}})


def test_text_formats_are_accepted_with_their_keys() -> None:
    cfg = _cfg({"format": "regex", "pattern": r"(?P<status>\d+) (?P<message>.*)",
                "types": {"status": "int"}}, {"template": "message"})
    assert (cfg.source.format, cfg.source.types, cfg.fields.template) == (
        "regex", {"status": "int"}, "message")
    for name in ("nginx", "apache", "apache_error", "syslog", "logfmt"):
        assert _cfg({"format": name}).source.format == name


@pytest.mark.parametrize(("source", "fields", "path", "text"), [
    ({"format": "nginxx"}, {}, "source.format", "did you mean 'nginx'?"),
    ({"format": "regex"}, {}, "source.pattern", "required for source.format regex"),
    ({"format": "regex", "pattern": "(?P<a>x"}, {}, "source.pattern", "does not compile"),
    ({"format": "regex", "pattern": r"\d+"}, {}, "source.pattern", "has no named group"),
    ({"format": "nginx", "pattern": "(?P<a>x)"}, {}, "source.pattern",
     "only read with source.format regex"),
    ({"format": "nginx", "types": {"status": "integer"}}, {}, "source.types.status",
     "'integer' is not a type; use one of int, float, str"),
    ({"format": "nginx", "types": {"latency": "float"}}, {}, "source.types.latency",
     "not a field of the nginx format; its fields are remote_addr"),
    ({"format": "jsonl", "types": {"a": "int"}}, {}, "source.types", "only for text formats"),
    ({"format": "jsonl"}, {"template": "message"}, "fields.template",
     "needs a text source.format"),
    ({"format": "syslog"}, {"template": "msg"}, "fields.template",
     "'msg' is not a field of the syslog format; use one of pri"),
])
def test_config_errors_name_the_key_and_the_fix(source: dict[str, Any], fields: dict[str, Any],
                                                path: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(source, fields)
    assert info.value.path == path
    assert text in info.value.message


def test_logfmt_takes_any_field_names() -> None:  # its fields are not known in advance
    cfg = _cfg({"format": "logfmt", "types": {"status": "int"}}, {"template": "msg"})
    assert cfg.fields.template == "msg"
