"""The operator page and its JSON API, as one WSGI app served on the metrics port.

Routes (all JSON unless noted; documented in ``docs/contracts.md``):

- ``GET /``: the page (HTML; its script and style from ``/ui/``, nothing from elsewhere);
- ``GET /api/v1/status``: the overview (:func:`streamem.ui.status.status`);
- ``GET /api/v1/anomalies?key=&since=&limit=`` and ``GET /api/v1/anomalies/<id>``;
- ``GET /api/v1/incidents?key=&limit=``;
- ``GET /api/v1/keys?top=&q=``: keys ranked by recent anomalies;
- ``GET /api/v1/scores?minutes=``: per-batch top and median surprise against the threshold;
- ``GET /api/v1/model?minutes=``: component weights, drift and regime changes over time;
- ``POST /api/v1/feedback`` ``{"id", "verdict", "note"}``: needs ``Authorization: Bearer``
  with ``ui.token``; refused when no token is configured.

Security: read routes are open unless ``ui.read_token`` is set; every response carries a strict
Content-Security-Policy (``'self'`` only, no inline script), ``nosniff`` and no CORS headers;
request bodies over ``max_body_bytes`` are refused unread; tokens are compared in constant time.
The page puts every event-derived string into the DOM as text, never as markup.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote

from streamem.sinks.payload import dumps
from streamem.ui.history import VERDICTS, History

__all__ = ["CSP", "UiApp"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""The Content-Security-Policy of every response."""

_ASSETS = {"/": ("index.html", "text/html; charset=utf-8"),
           "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/ui/app.css": ("app.css", "text/css; charset=utf-8"),
           "/ui/icon.svg": ("icon.svg", "image/svg+xml")}
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Content Too Large", 415: "Unsupported Media Type"}
_MAX_LIMIT = 1000

StartResponse = Callable[..., Any]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class UiApp:
    """WSGI app for the page and ``/api/v1``.

    Parameters
    ----------
    history
        The recent history to serve.
    status
        Returns the overview dict (``GET /api/v1/status``).
    token
        Bearer token for mutating routes; None refuses them.
    read_token
        Bearer token for read routes (the page itself stays open, it holds no data); None
        leaves them open.
    on_feedback
        Called with each stored verdict (the daemon queues false positives for learning).
    count_feedback
        Called with the verdict, for ``streamem_feedback_total{verdict}``.
    max_body_bytes
        Largest request body accepted.
    clock
        Wall clock (for ``minutes=``).

    Examples
    --------
    >>> app = UiApp(History(), lambda: {"ready": True}, token="t0k")
    >>> out = []
    >>> body = app({"PATH_INFO": "/api/v1/status", "REQUEST_METHOD": "GET"},
    ...            lambda status, headers: out.append(status))
    >>> out, json.loads(b"".join(body))
    (['200 OK'], {'ready': True})
    """

    def __init__(self, history: History, status: Callable[[], Mapping[str, Any]], *,
                 token: str | None = None, read_token: str | None = None,
                 on_feedback: Callable[[Mapping[str, Any]], None] | None = None,
                 count_feedback: Callable[[str], None] | None = None,
                 max_body_bytes: int = 16_384, clock: Callable[[], float] = time.time) -> None:
        self.history = history
        self._status = status
        self._token = token
        self._read_token = read_token
        self._on_feedback = on_feedback
        self._count_feedback = count_feedback
        self.max_body_bytes = max_body_bytes
        self._assets: dict[str, bytes] = {}
        self._clock = clock

    def handles(self, path: str) -> bool:
        """Whether ``path`` is one of this app's routes."""
        return path in _ASSETS or path.startswith("/api/")

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path in _ASSETS:
                if method not in ("GET", "HEAD"):
                    raise _HttpError(405, "use GET")
                name, ctype = _ASSETS[path]
                return self._send(start_response, 200, self._asset(name), ctype)
            if not path.startswith("/api/v1/"):
                raise _HttpError(404, f"no such path {path}; the API is under /api/v1/")
            route = path[len("/api/v1/"):]
            if route == "feedback":
                if method != "POST":
                    raise _HttpError(405, "POST a verdict to /api/v1/feedback")
                return self._json(start_response, self._feedback(environ))
            if method not in ("GET", "HEAD"):
                raise _HttpError(405, "use GET")
            if self._read_token is not None:
                self._authorize(environ, (self._read_token, self._token))
            return self._json(start_response, self._read(route, _query(environ)))
        except _HttpError as exc:
            return self._json(start_response, {"error": exc.message}, exc.status)

    def _read(self, route: str, q: Mapping[str, str]) -> Any:
        h = self.history
        if route == "status":
            return self._status()
        if route == "anomalies":
            return {"anomalies": h.anomalies(q.get("key"), _float(q, "since"), _limit(q))}
        if route.startswith("anomalies/"):
            rec = h.anomaly_by_id(unquote(route[len("anomalies/"):]))
            if rec is None:
                raise _HttpError(404, "no recent anomaly with that id")
            return rec
        if route == "incidents":
            return {"incidents": h.incidents(q.get("key"), _limit(q))}
        if route == "keys":
            return {"keys": h.keys(_limit(q, "top", 20), q.get("q"))}
        if route in ("scores", "model"):
            minutes = _float(q, "minutes")
            since = None if minutes is None else self._clock() - 60.0 * minutes
            if route == "scores":
                return {"points": h.points(since)}
            return {"snapshots": h.models(since), "verdicts": h.verdicts(),
                    "feedback": h.recent_feedback(20)}
        raise _HttpError(404, f"no such API route {route!r}")

    def _feedback(self, environ: dict[str, Any]) -> dict[str, Any]:
        if self._token is None:
            raise _HttpError(403, "feedback is disabled: set ui.token (from the environment, "
                             "e.g. ${STREAMEM_UI_TOKEN}) to enable it")
        self._authorize(environ, (self._token,))
        body = self._body(environ)
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise _HttpError(400, "the body is not JSON; send "
                             '{"id": "...", "verdict": "false_positive"}') from None
        if not isinstance(doc, dict):
            raise _HttpError(400, "the body must be a JSON object with id and verdict")
        aid, verdict, note = doc.get("id"), doc.get("verdict"), doc.get("note", "")
        if not isinstance(aid, str) or not aid:
            raise _HttpError(400, "missing id: give the id of a recent anomaly")
        if verdict not in VERDICTS:
            raise _HttpError(400, f"verdict must be one of {', '.join(VERDICTS)}")
        if not isinstance(note, str) or len(note) > 2000:
            raise _HttpError(400, "note must be a string of at most 2000 characters")
        try:
            entry = self.history.feedback(aid, verdict, note)
        except KeyError:
            raise _HttpError(404, "no recent anomaly with that id") from None
        if self._count_feedback is not None:
            self._count_feedback(verdict)
        if self._on_feedback is not None:
            self._on_feedback(entry)
        return {"stored": entry}

    def _authorize(self, environ: Mapping[str, Any], tokens: Iterable[str | None]) -> None:
        given = str(environ.get("HTTP_AUTHORIZATION", ""))
        if not given.startswith("Bearer "):
            raise _HttpError(401, "send Authorization: Bearer <token>")
        offered = given[len("Bearer "):].encode()
        if not any(t is not None and hmac.compare_digest(offered, t.encode()) for t in tokens):
            raise _HttpError(401, "the token is not valid")

    def _body(self, environ: Mapping[str, Any]) -> bytes:
        ctype = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _HttpError(415, "send Content-Type: application/json")
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise _HttpError(411, "send a Content-Length") from None
        if length < 0 or length > self.max_body_bytes:
            raise _HttpError(413, f"the body may have at most {self.max_body_bytes} bytes")
        data: bytes = environ["wsgi.input"].read(length)
        return data

    # ------------------------------------------------------------------ replies
    def _asset(self, name: str) -> bytes:
        if name not in self._assets:
            self._assets[name] = resources.files("streamem.ui").joinpath(
                "static", name).read_bytes()
        return self._assets[name]

    def _json(self, start_response: StartResponse, doc: Any, status: int = 200) -> list[bytes]:
        body = dumps(doc).encode()
        return self._send(start_response, status, body, "application/json")

    @staticmethod
    def _send(start_response: StartResponse, status: int, body: bytes,
              ctype: str) -> list[bytes]:
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))),
                   ("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                   ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"),
                   ("X-Frame-Options", "DENY")]
        start_response(f"{status} {_REASONS[status]}", headers)
        return [body]


def _query(environ: Mapping[str, Any]) -> dict[str, str]:
    parsed = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=False)
    return {k: v[-1] for k, v in parsed.items()}


def _float(q: Mapping[str, str], name: str) -> float | None:
    if name not in q:
        return None
    try:
        v = float(q[name])
    except ValueError:
        raise _HttpError(400, f"{name} must be a number") from None
    if not math.isfinite(v):
        raise _HttpError(400, f"{name} must be finite")
    return v


def _limit(q: Mapping[str, str], name: str = "limit", default: int = 100) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIMIT:
        raise _HttpError(400, f"{name} must be a whole number from 1 to {_MAX_LIMIT}")
    return int(raw)
