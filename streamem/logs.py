"""Logging helpers: rate limiting, secret masking, JSON output.

Only :mod:`streamem.cli` calls :func:`setup_logging`; library modules just use
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

__all__ = ["JsonFormatter", "RateLimitedLog", "SecretFilter", "setup_logging"]


class RateLimitedLog:
    """Log a recurring condition at most once per ``interval`` seconds per key.

    Parameters
    ----------
    log
        The logger to write to.
    interval
        Minimum seconds between two messages with the same key.

    Examples
    --------
    >>> r = RateLimitedLog(logging.getLogger("x"), interval=60.0)
    >>> r.warning("down", "broker %s down", "b1"), r.warning("down", "broker %s down", "b1")
    (True, False)
    """

    def __init__(self, log: logging.Logger, interval: float = 30.0) -> None:
        self._log, self._interval = log, interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def due(self, key: str) -> bool:
        """True (and restart the clock) when ``key`` was not due within ``interval`` seconds."""
        now = time.monotonic()
        if now - self._last.get(key, -1e18) < self._interval:
            return False
        self._last[key] = now
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged recently; return whether it was."""
        now = time.monotonic()
        if now - self._last.get(key, -1e18) < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        skipped = self._suppressed.pop(key, 0)
        suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
        self._log.warning(msg + suffix, *args)
        self._last[key] = now
        return True


class SecretFilter(logging.Filter):
    """Replace every known secret value in log messages by ``***``.

    Examples
    --------
    >>> f = SecretFilter(["hunter2"])
    >>> rec = logging.LogRecord("x", logging.INFO, "", 0, "pw=%s", ("hunter2",), None)
    >>> _ = f.filter(rec); rec.getMessage()
    'pw=***'
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for s in self.secrets:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` (+ ``exc``).

    Examples
    --------
    >>> rec = logging.LogRecord("streamem", logging.INFO, "", 0, "hello", None, None)
    >>> json.loads(JsonFormatter().format(rec))["msg"]
    'hello'
    """

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger on stderr (called by the CLI only)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
