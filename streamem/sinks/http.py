"""The HTTP transport of the network sinks: the only module that imports httpx.

:class:`HttpTransport` keeps one pooled :class:`httpx.Client` with explicit timeouts and
turns every httpx failure into :class:`~streamem.errors.SinkError` (``raise ... from exc``).
It makes exactly one attempt per call; retries are the caller's policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from streamem.errors import SinkError

__all__ = ["HttpResponse", "HttpTransport", "parse_retry_after", "redact_url"]

logger = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """The url without credentials, path or query, for logs and reprs.

    Webhook urls often carry their secret in the path (``/services/T0/B0/XyZ``) or the
    query, and basic-auth credentials in the authority; only scheme, host and port stay.

    Parameters
    ----------
    url
        Any url.

    Returns
    -------
    str
        ``scheme://host[:port]/…`` (with ``/…`` only if something was hidden).

    Examples
    --------
    >>> redact_url("https://user:pw@hooks.example.com/services/T0/B0/secret?token=x")
    'https://hooks.example.com/…'
    >>> redact_url("http://127.0.0.1:9093")
    'http://127.0.0.1:9093'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if ":" in host:
        host = f"[{host}]"
    base = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
    return base + ("/…" if hidden else "")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Parameters
    ----------
    value
        The header value, or ``None``.
    now
        Current time in seconds since the epoch (``time.time()`` by default).

    Returns
    -------
    float or None
        Non-negative seconds, or ``None`` when absent or unreadable.

    Examples
    --------
    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0)
    6.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(frozen=True)
class HttpResponse:
    """What the network sinks need from an answer.

    Parameters
    ----------
    status
        HTTP status code.
    retry_after
        Seconds from ``Retry-After``, if the peer sent one.
    text
        The start of the answer body (for logs).

    Examples
    --------
    >>> HttpResponse(429, 2.0).retry_after
    2.0
    """

    status: int
    retry_after: float | None = None
    text: str = ""


class HttpTransport:
    """A pooled HTTP client that POSTs JSON bodies, one attempt per call.

    Parameters
    ----------
    timeout_seconds
        Default connect/read/write/pool timeout of one request.
    max_connections
        Size of the connection pool.
    verify
        Verify TLS certificates (``True``), or the path of a CA bundle.

    Examples
    --------
    >>> with HttpTransport(timeout_seconds=0.5) as transport:
    ...     transport.post_json("http://127.0.0.1:1/", b"{}", {})
    Traceback (most recent call last):
    ...
    streamem.errors.SinkError: cannot connect to http://127.0.0.1:1: ...
    """

    def __init__(self, timeout_seconds: float = 5.0, *, max_connections: int = 4,
                 verify: bool | str = True) -> None:
        self.timeout_seconds = timeout_seconds
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            verify=verify,
            follow_redirects=False,
        )
        self._closed = False

    def post_json(self, url: str, body: bytes, headers: Mapping[str, str],
                  timeout: float | None = None) -> HttpResponse:
        """POST one JSON body and return the status; never raises httpx errors.

        Parameters
        ----------
        url
            Target URL.
        body
            The exact request body.
        headers
            Extra headers (``Content-Type: application/json`` is always set).
        timeout
            Timeout of this request in seconds (the transport default if ``None``).

        Returns
        -------
        HttpResponse
            Status code, ``Retry-After`` in seconds, and the start of the answer.

        Raises
        ------
        SinkError
            On a timeout, a connection failure, an invalid URL or any other transport error.
        """
        shown = redact_url(url)
        if self._closed:
            raise SinkError(f"HTTP transport is closed; cannot POST to {shown}")
        all_headers = {"Content-Type": "application/json", **headers}
        request_timeout = httpx.Timeout(self.timeout_seconds if timeout is None else timeout)
        try:
            response = self._client.post(url, content=body, headers=all_headers,
                                         timeout=request_timeout)
        except httpx.TimeoutException as exc:
            raise SinkError(f"timed out after {request_timeout.read}s posting to {shown}: "
                            f"{type(exc).__name__}; raise timeout_seconds or check the "
                            "receiver") from exc
        except httpx.ConnectError as exc:
            raise SinkError(f"cannot connect to {shown}: {exc}; check the url and that the "
                            "receiver is up") from exc
        except httpx.InvalidURL as exc:
            raise SinkError(f"invalid url {shown!r}: {exc}; use http://host:port/path") from exc
        except httpx.HTTPError as exc:
            raise SinkError(f"HTTP error posting to {shown}: {type(exc).__name__}: {exc}; "
                            "check the url and the receiver") from exc
        return HttpResponse(response.status_code,
                            parse_retry_after(response.headers.get("Retry-After")),
                            response.text[:200])

    def close(self) -> None:
        """Close the connection pool; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpTransport(timeout_seconds={self.timeout_seconds})"
