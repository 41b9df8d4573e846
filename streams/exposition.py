"""``/metrics`` and ``/healthz`` on one port, for a process without a web framework (the matcher worker).

prometheus_client's own server answers every path with the metrics; this one is the same server (its
WSGI app, threads per request, off the event loop) with ``/healthz`` beside it: 200 ``{"status": "ok"}``
while every supervised loop runs, 503 naming the loop that ended otherwise
(:meth:`~streams.supervision.Supervisor.health`). Served from a thread so that a busy or blocked event
loop still answers scrapes; ``health`` only reads the supervisor's state.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

Health = Callable[[], tuple[int, dict[str, str]]]
StartResponse = Callable[..., Any]


def app(health: Health) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app: ``/healthz`` from ``health``, every other path the metrics (as prometheus_client's)."""
    metrics = make_wsgi_app()

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            result: Iterable[bytes] = metrics(environ, start_response)
            return result
        status, body = health()
        payload = json.dumps(body).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return serve


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: Prometheus scrapes every few seconds."""


def serve(host: str, port: int, health: Health) -> WSGIServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (0: a free port) from a daemon thread."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = make_server(host, port, app(health), Server, handler_class=_Quiet)
    threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True).start()
    return httpd
