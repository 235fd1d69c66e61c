"""The typed builder: plain YAML data to a frozen config dataclass, driven by its annotations.

Each value is checked against its field's type (``int``, ``float``, ``bool``, ``str``,
``Literal`` choices, unions, tuples as lists, ``dict[str, str]``, nested dataclasses and
:class:`~streamem.config.env.Secret`); ``${ENV_VAR}`` references are interpolated first.
Unknown keys are rejected with the closest valid key. Every error is a
:class:`~streamem.errors.ConfigError` naming the YAML path (``sinks[1].url``) and the fix; it
shows the bad value bounded (:func:`~streamem.config.rules.shown`), and never a value of a
secret-typed key, only the type it should have. Rules that span keys or sections are
:mod:`streamem.config.validate`.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from streamem.config.env import Secret, interpolate
from streamem.config.rules import shown
from streamem.errors import ConfigError

__all__ = ["build", "secret_key"]


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             Secret: "a string (use ${ENV_VAR} for secrets)"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _kind(value: Any) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _is_secret(tp: Any) -> bool:
    return tp is Secret or Secret in typing.get_args(tp)


def _convert(tp: Any, value: Any, path: str, env: Mapping[str, str]) -> Any:
    origin = typing.get_origin(tp)
    if _is_secret(tp) and not isinstance(value, str) and not (value is None and tp is not Secret):
        raise ConfigError(path, f"must be a string, got {_kind(value)} (not shown: this key "
                          "holds a secret); write it as ${ENV_VAR} and export ENV_VAR")
    if isinstance(value, str) and not _is_secret(tp) and "${" in value:
        value = interpolate(value, path, env)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path, env)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # ``X | None``: X's own message is the precise one
            raise errors[0]
        raise ConfigError(path, f"{shown(value)} is not valid; expected {_describe(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        else:
            hint = ""
        raise ConfigError(path, f"{shown(value)} is not valid{hint}; use {_describe(tp)}")
    if origin is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(path, f"{shown(value)} is not a list; write it as [a, b]")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, f"{path}[{i}]", env) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"{shown(value)} is not a mapping; write it as {{k: v}}")
        for k, v in value.items():
            if isinstance(v, (dict, list)) or v is None:
                raise ConfigError(f"{path}.{k}", f"{shown(v)} is not valid; expected a string")
        return {str(k): str(v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path, env)
    if tp is Secret:
        if not isinstance(value, str):
            raise ConfigError(path, "must be a string; write ${ENV_VAR} to read it from the env")
        return Secret(interpolate(value, path, env))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    elif tp is str and isinstance(value, datetime.date):  # YAML reads ISO 8601 times itself
        return value.isoformat()
    raise ConfigError(path, f"{shown(value)} is not valid; expected {_describe(tp)}")


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def secret_key(parts: list[str], root: Any = None) -> bool:
    """Whether the key at ``parts`` (``["sinks", "0", "secret"]``) holds a :class:`Secret`.

    Examples
    --------
    >>> secret_key(["source", "sasl_password"]), secret_key(["sinks", "0", "url"])
    (True, False)
    """
    from streamem.config.sections import Config

    tp: Any = Config if root is None else root
    for part in parts:
        if typing.get_origin(tp) is tuple:
            tp = typing.get_args(tp)[0]
            if part.isdigit():
                continue
        hints = _hints(tp) if isinstance(tp, type) and dataclasses.is_dataclass(tp) else {}
        if part not in hints:
            return False
        tp = hints[part]
    return _is_secret(tp)


def build(cls: Any, data: Any, path: str, env: Mapping[str, str]) -> Any:
    """Build the dataclass ``cls`` from the mapping ``data`` found at the YAML ``path``.

    Parameters
    ----------
    cls
        A config dataclass (:class:`~streamem.config.Config` or one of its sections).
    data
        Its parsed YAML: a mapping, or ``None`` for all defaults.
    path
        Where ``data`` sits in the document (``""`` for the root, else e.g. ``sinks[1]``).
    env
        The environment for ``${ENV_VAR}`` references.

    Returns
    -------
    Any
        An instance of ``cls``; no cross-field rule has been checked yet.

    Raises
    ------
    ConfigError
        The first unknown key, missing required key or value of the wrong type.

    Examples
    --------
    >>> from streamem.config.sections import BatchConfig, SinkConfig
    >>> build(BatchConfig, {"max_events": 64}, "batch", {})
    BatchConfig(max_events=64, max_wait_ms=100)
    >>> build(SinkConfig, {"type": "webhok"}, "sinks[1]", {})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[1].type: 'webhok' is not valid (did you mean 'webhook'?); ...
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path or "<root>", f"expected a mapping of keys, got {shown(data)}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            where = where if len(where) <= 120 else where[:100] + "..."
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(where, f"unknown key; {hint}(valid keys: {', '.join(names)})")
        kwargs[key] = _convert(hints[key], value, where, env)
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in kwargs]
    if missing:
        where = f"{path}.{missing[0]}" if path else missing[0]
        raise ConfigError(where, "required; add it")
    return cls(**kwargs)

