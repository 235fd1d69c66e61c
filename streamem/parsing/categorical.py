"""``fields.categorical``: decoded records' categorical fields as codes (stdlib + numpy).

Each listed field is read as text: strings as they are, integers and booleans by their text
(``500`` and ``"500"`` alike), integral floats as integers. A missing, null or empty value is
coded missing (the model marginalises it), never rejected. Hostile input is normal input:

* a value longer than :data:`MAX_VALUE_CHARS` characters is rejected as ``invalid_value``
  (a categorical is a label, not a payload);
* an object or a list is rejected as ``wrong_type``;
* control characters (C0, DEL, C1) and lone surrogates are escaped (``\\x0a``), so a value
  never breaks a log line, a label or a record.

A column of plain strings or integers is checked with C-speed calls (one ``join`` and a
regex search, one ``max(map(len, ...))``); only an odd column is read value by value.
:func:`check_config` holds the config rules of ``fields.categorical``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem.errors import ConfigError
from streamem.model._catcodes import CategoricalBatch, encode_texts
from streamem.parsing.eventmeta import Bad, lookup

if TYPE_CHECKING:
    from streamem.config.sections import Config

__all__ = ["MAX_VALUE_CHARS", "check_config", "decode_categorical"]

#: longest categorical value (characters)
MAX_VALUE_CHARS = 256
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    return f"\\x{ord(m.group()):02x}"


def _value(v: Any, name: str) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        if len(v) > MAX_VALUE_CHARS:
            raise Bad("invalid_value", f"{name} is {len(v)} characters long (at most "
                      f"{MAX_VALUE_CHARS}); send a label, or drop {name} from "
                      "fields.categorical")
        return _CONTROL.sub(_escape, v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -(10**18) < v < 10**18 else f"{v:.6e}"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e18 else repr(v)
    raise Bad("wrong_type", f"{name} is a {type(v).__name__}, not a categorical value (a "
              "string or a number)")


def _column(recs: Sequence[dict[str, Any]], name: str) -> list[Any]:
    if "." not in name or any(name in r for r in recs[:1]):
        return list(map(dict.get, recs, repeat(name)))
    path = tuple(name.split("."))
    return [lookup(r, path) for r in recs]


def decode_categorical(recs: Sequence[dict[str, Any]], fields: Sequence[str]
                       ) -> tuple[CategoricalBatch, dict[int, Bad]]:
    """The categorical codes of ``recs`` and ``{position: why}`` for unusable values.

    Examples
    --------
    >>> b, bad = decode_categorical([{"m": "GET", "s": 200}, {"m": "A\\nB"}, {"m": [1]}],
    ...                             ["m", "s"])
    >>> b.vocab, b.codes.tolist(), {i: e.reason for i, e in bad.items()}
    ((('A\\\\x0aB', 'GET'), ('200',)), [[1, 0], [0, -1], [-1, -1]], {2: 'wrong_type'})
    """
    bad: dict[int, Bad] = {}
    columns: dict[str, list[str]] = {}
    for name in fields:
        col = _column(recs, name)
        kinds = set(map(type, col))
        if kinds <= {str} and (not col or max(map(len, col)) <= MAX_VALUE_CHARS) \
                and not _CONTROL.search("".join(col)):
            texts: list[str] = col
        elif kinds <= {int}:
            texts = list(map(str, col))
        else:
            texts = []
            for i, v in enumerate(col):
                try:
                    texts.append(_value(v, name))
                except Bad as why:
                    bad.setdefault(i, why)
                    texts.append("")
        columns[name] = texts
    vocab, codes = [], []
    for name in fields:
        v, c = encode_texts(columns[name])
        vocab.append(v)
        codes.append(c)
    matrix = np.column_stack(codes) if codes and len(recs) else \
        np.empty((len(recs), len(fields)), dtype=np.int64)
    return CategoricalBatch(tuple(fields), matrix.astype(np.int64, copy=False),
                            tuple(vocab)), dict(sorted(bad.items()))


def check_config(cfg: Config) -> None:
    """The rules of ``fields.categorical`` (a :class:`ConfigError` names the first broken).

    Examples
    --------
    >>> from streamem.config import parse_config
    >>> parse_config({"source": {"type": "stdin"}, "fields": {"features": ["a"],
    ...               "categorical": ["a"]}})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: fields.categorical[0]: 'a' is also in fields.features; ...
    """
    f = cfg.fields
    for i, name in enumerate(f.categorical):
        where = f"fields.categorical[{i}]"
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(where, "give a field name or dotted path, e.g. method")
        if name in f.features:
            raise ConfigError(where, f"{name!r} is also in fields.features; a field is either "
                              "numeric (features) or categorical, remove it from one list")
        if name in (f.key, f.timestamp, f.id):
            raise ConfigError(where, f"{name!r} is the key, timestamp or id field; list a "
                              "field that describes the event instead")
        if name in f.categorical[:i]:
            raise ConfigError(where, f"{name!r} is listed twice; list each field once")
    if f.categorical and cfg.model.scope != "global":
        raise ConfigError("fields.categorical", "needs model.scope global (categorical "
                          f"fields are modelled by the global mixture, not {cfg.model.scope!r})")
