"""The streamem error tree.

Every error raised on purpose by streamem derives from :class:`StreamemError`, and every
message names the bad value and the fix::

    StreamemError
    ├── ConfigError (ValueError)          a bad config key or value; ``.path`` is the YAML path
    ├── InvalidInputError (ValueError)    an event that cannot be scored (NaN-only, inf, shape)
    ├── NotFittedError (RuntimeError)     the model was used before it saw enough data
    ├── StateError (ValueError)           a snapshot that is corrupt, of an unknown version or shape
    ├── SourceError (RuntimeError)        the input cannot be read
    └── SinkError (RuntimeError)          an anomaly could not be delivered; ``.retry_after``

Only :mod:`streamem.cli` turns these into exit codes.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InvalidInputError",
    "NotFittedError",
    "SinkError",
    "SourceError",
    "StateError",
    "StreamemError",
]


class StreamemError(Exception):
    """Root of every error streamem raises on purpose.

    Examples
    --------
    >>> issubclass(ConfigError, StreamemError)
    True
    """


class ConfigError(StreamemError, ValueError):
    """A config key or value is wrong.

    Parameters
    ----------
    path
        The YAML path of the bad key, as in ``sinks[1].url``.
    message
        What is wrong and how to fix it.

    Examples
    --------
    >>> str(ConfigError("sinks[1].url", "must start with http:// or https://"))
    'sinks[1].url: must start with http:// or https://'
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class InvalidInputError(StreamemError, ValueError):
    """An event cannot be scored or learned (all features missing, ±inf, wrong shape).

    Examples
    --------
    >>> isinstance(InvalidInputError("x"), ValueError)
    True
    """


class NotFittedError(StreamemError, RuntimeError):
    """The model was asked to score before it had seen enough data.

    Examples
    --------
    >>> isinstance(NotFittedError("x"), RuntimeError)
    True
    """


class StateError(StreamemError, ValueError):
    """A saved state is corrupt, of an unknown schema version, or of the wrong shape.

    Examples
    --------
    >>> isinstance(StateError("x"), ValueError)
    True
    """


class SourceError(StreamemError, RuntimeError):
    """The input cannot be read (missing file, broker unreachable after retries).

    Examples
    --------
    >>> isinstance(SourceError("x"), RuntimeError)
    True
    """


class SinkError(StreamemError, RuntimeError):
    """An anomaly could not be delivered.

    Parameters
    ----------
    message
        What failed.
    retry_after
        Seconds the caller should wait before retrying, when the peer said so.

    Examples
    --------
    >>> SinkError("503 from http://127.0.0.1:9/", retry_after=2.0).retry_after
    2.0
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
