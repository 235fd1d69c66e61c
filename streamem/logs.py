"""Logging helpers: rate limiting, one line per record, and what a log line may never show.

* :func:`escape_controls` turns CR, LF, NUL and every other C0/C1 control (and U+2028/U+2029)
  into visible escapes, so text taken from an event (an id, a key, a file name) cannot forge
  log lines; both formatters apply it to every message.
* :func:`redact_url` is the one rule for showing a URL: credentials, query values and
  token-like path segments become ``***``.
* Secrets are masked where they are logged: :class:`~streamem.config.Secret` shows ``***``
  in ``str`` and ``repr``. Third-party loggers (httpx, kafka-python, ...) are held at WARNING,
  and :class:`ThirdPartyFilter` redacts URLs and whole-word secrets in their records.

Only :mod:`streamem.cli` calls :func:`setup_logging`; library modules just use
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["JsonFormatter", "RateLimitedLog", "TextFormatter", "ThirdPartyFilter",
           "escape_controls", "redact_url", "setup_logging"]

# loggers of libraries that log request URLs or client settings at INFO/DEBUG
QUIET_LIBRARIES = ("httpx", "httpcore", "kafka", "urllib3")


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


_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape_controls(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\r``, ``\\n``, ``\\x00``).

    Covers C0 (including tab), DEL, C1 (``\\x85`` is a line break for some viewers) and the
    Unicode line and paragraph separators; everything else, backslashes included, is kept.

    Examples
    --------
    >>> print(escape_controls("id-1\\r\\nERROR forged\\x00\\u2028"))
    id-1\\r\\nERROR forged\\x00\\u2028
    """
    return text.translate(_ESCAPES)


def _token_like(part: str) -> bool:
    has_alpha = any(c.isalpha() for c in part)
    has_digit = any(c.isdigit() for c in part)
    return len(part) >= 16 or (len(part) >= 8 and has_alpha and has_digit)


def redact_url(url: str) -> str:
    """``url`` as it may be shown in logs, errors and ``check-config --print``.

    The rule: scheme, host and port stay; credentials (``user:pw@``) become ``***@``; every
    query value becomes ``***`` (the names stay); a fragment becomes ``#***``; a path segment
    that looks like a token (16 characters or more, or 8 or more mixing letters and digits)
    becomes ``***``. Short words such as ``/api/v2/alerts`` or ``/hooks/ops`` stay readable.

    Examples
    --------
    >>> redact_url("https://bot:pw@hooks.example.com/services/T0AB12CD/XyZ0123456789abcdefgh"
    ...            "?token=abc&channel=ops#top")
    'https://***@hooks.example.com/services/***/***?token=***&channel=***#***'
    >>> redact_url("http://127.0.0.1:9093/api/v2/alerts")
    'http://127.0.0.1:9093/api/v2/alerts'
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<unparsable url>"
    if ":" in host:
        host = f"[{host}]"
    out = f"{parts.scheme}://" + ("***@" if parts.username or parts.password else "") + host
    out += f":{port}" if port is not None else ""
    out += "/".join("***" if _token_like(seg) else seg for seg in parts.path.split("/"))
    if parts.query:
        pairs = (q.partition("=") for q in parts.query.split("&"))
        out += "?" + "&".join(
            ("***" if _token_like(k) else k) + ("=***" if eq else "") for k, eq, _ in pairs)
    return out + ("#***" if parts.fragment else "")


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


class ThirdPartyFilter(logging.Filter):
    """Redact URLs and whole-word secrets in the records of libraries streamem does not own.

    streamem's own records are left alone: they mask at the source (a
    :class:`~streamem.config.Secret` shows ``***``, URLs go through :func:`redact_url`).
    Secrets shorter than :attr:`MIN_SECRET` characters are not searched for: replacing a
    short string everywhere garbles the log and reveals the secret.

    Examples
    --------
    >>> f = ThirdPartyFilter(["hunter2-long-secret", "k"])
    >>> rec = logging.LogRecord("httpx", logging.INFO, "", 0, "POST %s key=%s", (
    ...     "http://h/hook/XyZ0123456789abc?t=1", "hunter2-long-secret"), None)
    >>> _ = f.filter(rec); rec.getMessage()
    'POST http://h/hook/***?t=*** key=***'
    """

    MIN_SECRET = 8

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        found = sorted({s for s in secrets if len(s) >= self.MIN_SECRET}, key=len, reverse=True)
        self._secrets = (re.compile("|".join(rf"(?<!\w){re.escape(s)}(?!\w)" for s in found))
                         if found else None)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "streamem" or record.name.startswith("streamem."):
            return True
        msg = _redact_urls(record.getMessage())
        if self._secrets is not None:
            msg = self._secrets.sub("***", msg)
        record.msg, record.args = msg, None
        return True


def _redact_urls(text: str) -> str:
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _indented(text: str) -> str:
    # a traceback stays readable, but no line of it can pass for a log record of its own;
    # an exception message may quote a URL (an httpx error): it is redacted like any other
    return "\n".join("    " + escape_controls(line) for line in _redact_urls(text).split("\n"))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` with the message escaped (:func:`escape_controls`).

    Examples
    --------
    >>> rec = logging.LogRecord("streamem", logging.WARNING, "", 0, "bad id %s", ("a\\nb",),
    ...                         None)
    >>> TextFormatter("%(levelname)s %(message)s").format(rec)
    'WARNING bad id a\\\\nb'
    """

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
        super().__init__(fmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: object) -> str:
        return _indented(super().formatException(ei))  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` (+ ``exc``).

    ``msg`` is escaped as in the text format, so both formats show the same text.

    Examples
    --------
    >>> rec = logging.LogRecord("streamem", logging.INFO, "", 0, "hello\\r\\n", None, None)
    >>> json.loads(JsonFormatter().format(rec))["msg"]
    'hello\\\\r\\\\n'
    """

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": escape_controls(record.getMessage()),
        }
        if record.exc_info:
            doc["exc"] = _redact_urls(self.formatException(record.exc_info))
        return json.dumps(doc)  # ensure_ascii: no raw control or separator is ever written


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger on stderr (called by the CLI only).

    Parameters
    ----------
    level
        ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``.
    fmt
        ``text`` or ``json``.
    secrets
        Secret values to mask in third-party records (see :class:`ThirdPartyFilter`).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ThirdPartyFilter(secrets))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request with its full URL at INFO (a webhook's token is in it);
    # kafka-python logs client settings at DEBUG: their warnings and errors are enough
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
