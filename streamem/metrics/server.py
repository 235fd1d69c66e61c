"""The HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz`` in a background thread.

:class:`MetricsServer` serves the Prometheus exposition app of
:class:`~streamem.metrics.recorder.Metrics` plus two probes:

- ``/healthz``: 200 ``ok`` while the daemon loop calls :meth:`Metrics.heartbeat` at least every
  ``liveness_timeout`` seconds (counted from start-up for the first beat); 503 otherwise, or
  after ``set_up(False)``.
- ``/readyz``: 200 once :meth:`Metrics.set_ready` was called with True (warm-up done), else 503.

It imports no prometheus_client: the exposition app comes from :meth:`Metrics.wsgi_app`.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from streamem.errors import ConfigError

__all__ = ["MetricsServer", "Served", "SubApp", "WsgiApp"]

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Sequence[bytes]]


class Served(Protocol):
    """What the server needs of :class:`~streamem.metrics.recorder.Metrics`."""

    def wsgi_app(self) -> WsgiApp: ...

    def liveness(self, timeout: float) -> tuple[bool, str]: ...

    def readiness(self) -> tuple[bool, str]: ...


class SubApp(Protocol):
    """A WSGI app that serves some paths of the port (the operator page)."""

    def handles(self, path: str) -> bool: ...

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Sequence[bytes]: ...


class _QuietHandler(WSGIRequestHandler):
    timeout = 5.0  # a stalled client cannot hold close() for longer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics http: " + format, *args)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads


class MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` in a background thread.

    Parameters
    ----------
    metrics
        What to expose.
    host
        Bind address (``metrics.host``); IPv6 literals work.
    port
        Bind port (``metrics.port``); 0 picks a free one, see :attr:`port`.
    liveness_timeout
        Seconds without :meth:`Metrics.heartbeat` after which ``/healthz`` answers 503.
    ui
        The operator page and ``/api/v1`` (:class:`streamem.ui.app.UiApp`), served at ``/``;
        None serves a plain index.

    Raises
    ------
    ConfigError
        When the address cannot be bound.

    Examples
    --------
    >>> import urllib.request
    >>> from streamem.metrics.recorder import Metrics
    >>> m = Metrics()
    >>> with MetricsServer(m, "127.0.0.1", 0) as srv:
    ...     urllib.request.urlopen(f"{srv.url}/healthz").read()
    b'ok\\n'
    """

    def __init__(
        self, metrics: Served, host: str = "127.0.0.1", port: int = 9108,
        *, liveness_timeout: float = 60.0, ui: SubApp | None = None,
    ) -> None:  # fmt: skip
        self.metrics = metrics
        self.ui = ui
        self.liveness_timeout = liveness_timeout
        self._prom_app = metrics.wsgi_app()
        server_class: type[_Server] = _Server
        if ":" in host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self._server = make_server(host, port, self._app, server_class, _QuietHandler)
        except OSError as exc:
            raise ConfigError(
                "metrics.port", f"cannot listen on {host}:{port} ({exc}); choose a free port or 0"
            ) from exc
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"streamem-metrics-{self.port}", daemon=True,
        )  # fmt: skip
        self._closed = False
        self._thread.start()
        logger.info("serving metrics on %s/metrics", self.url)

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:9108`` (with the bound port).

        Examples
        --------
        >>> from streamem.metrics.recorder import Metrics
        >>> with MetricsServer(Metrics(), "127.0.0.1", 0) as srv:
        ...     srv.url == f"http://127.0.0.1:{srv.port}"
        True
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Sequence[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return self._prom_app(environ, start_response)
        if self.ui is not None and self.ui.handles(path):
            return self.ui(environ, start_response)
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, 405, "use GET")
        if path == "/healthz":
            ok, text = self.metrics.liveness(self.liveness_timeout)
        elif path == "/readyz":
            ok, text = self.metrics.readiness()
        elif path == "/":
            return _reply(start_response, 200, "streamem: /metrics /healthz /readyz")
        else:
            return _reply(start_response, 404, f"no such path {path}; try /metrics")
        return _reply(start_response, 200 if ok else 503, text)

    def close(self) -> None:
        """Stop serving and join every server thread; safe to call twice.

        Examples
        --------
        >>> from streamem.metrics.recorder import Metrics
        >>> srv = MetricsServer(Metrics(), "127.0.0.1", 0)
        >>> srv.close(); srv.close()
        """
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reply(start_response: Callable[..., Any], status: int, text: str) -> list[bytes]:
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    body = f"{text}\n".encode()
    start_response(
        f"{status} {reasons[status]}",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
