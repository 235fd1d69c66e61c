"""config.example.yaml documents every key the config schema accepts.

The schema is walked from the section dataclasses (:class:`streamem.config.Config`), so a key
added to a section without a line in the example fails here."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from streamem.config import Config, SinkConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def _blocks(text: str) -> dict[str, str]:
    """The text of each top-level section (its live lines and its comments)."""
    out: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        m = re.match(r"^(?:# )?([a-z_]+):", line)  # an optional section is commented out
        if m:
            name = m.group(1)
        out[name] = out.get(name, "") + line + "\n"
    return out


def _documented(block: str, key: str) -> bool:
    # a live key (`  key: v`, `  - key: v`) or a commented one (`  # key: v`, `  # - key: v`)
    return re.search(rf"^\s*(#\s*)?(-\s*)?{re.escape(key)}:", block, re.MULTILINE) is not None


def _schema() -> dict[str, list[str]]:
    hints = typing.get_type_hints(Config)
    out: dict[str, list[str]] = {}
    for f in dataclasses.fields(Config):
        section = hints[f.name]
        if typing.get_origin(section) is tuple:
            (section,) = typing.get_args(section)[:1]
        if type(None) in typing.get_args(section):  # an optional section (aggregate)
            (section,) = [a for a in typing.get_args(section) if a is not type(None)]
        assert dataclasses.is_dataclass(section), f.name
        out[f.name] = [g.name for g in dataclasses.fields(section)]
    return out


def test_the_schema_walk_sees_the_sink_keys() -> None:
    assert _schema()["sinks"] == [f.name for f in dataclasses.fields(SinkConfig)]
    assert "poll_interval_ms" in _schema()["source"]


def test_every_accepted_key_is_documented_in_the_example() -> None:
    blocks = _blocks(EXAMPLE.read_text())
    missing = [f"{section}.{key}" for section, keys in _schema().items()
               for key in keys if not _documented(blocks.get(section, ""), key)]
    assert not missing, f"config.example.yaml does not document: {', '.join(missing)}"


def test_the_example_loads() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.fields.features
