"""What a config value takes from the environment: ``${ENV_VAR}`` references and secrets.

* ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) in a string value is replaced by the variable
  (:func:`interpolate`); an unset variable without a default is a
  :class:`~streamem.errors.ConfigError` that says how to set it.
* :class:`Secret` holds a value that must not show itself in ``repr``, ``str`` or logs (a
  password or a signing key, usually given as ``${ENV_VAR}``).

The ``STREAMEM_<SECTION>__<KEY>`` overrides are parsed as YAML, so they live with the YAML
reader in :mod:`streamem.config.load`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from streamem.errors import ConfigError

__all__ = ["Secret", "interpolate"]


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs.

    Examples
    --------
    >>> s = Secret("hunter2")
    >>> s, str(s), s.get()
    (Secret('***'), '***', 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: str, path: str, env: Mapping[str, str]) -> str:
    """Replace every ``${NAME}`` or ``${NAME:-default}`` in ``value`` from ``env``.

    Parameters
    ----------
    value
        A string value from the config.
    path
        Its YAML path, for the error message.
    env
        The environment to read.

    Raises
    ------
    ConfigError
        A variable is not set and has no default.

    Examples
    --------
    >>> interpolate("http://${HOST}:${PORT:-9093}/", "sinks[0].url", {"HOST": "am"})
    'http://am:9093/'
    >>> interpolate("${TOKEN}", "sinks[0].secret", {})
    Traceback (most recent call last):
    ...
    streamem.errors.ConfigError: sinks[0].secret: environment variable TOKEN is not set; ...
    """

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        if len(name) > 100:
            name = name[:100] + "..."
        raise ConfigError(path, f"environment variable {name} is not set; export {name}=... "
                          "or give a default as ${" + name + ":-value}")

    return _ENV.sub(repl, value)
