"""What every local stand-in server shares: loopback, TCP_NODELAY and quiet handlers, and a
serving thread with a life cycle (start, stop, `with`).

Sockets get TCP_NODELAY: with Nagle on, the delayed ACK adds ~40 ms to every request and
anything timed against a stand-in measures that trap instead of our code.
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"
# How soon a serving loop notices `shutdown()`: socketserver's default (0.5 s) made every
# stop of a local stand-in cost half a second, most of a fast test.
SERVER_POLL_SECONDS = 0.05
STOP_JOIN_SECONDS = 5.0


class NoDelayQuietMixin:
    """For loopback HTTP request handlers: TCP_NODELAY on the socket, no per-request logging.

    Mix in before the handler class (`class H(NoDelayQuietMixin, BaseHTTPRequestHandler)`).
    """

    connection: socket.socket

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would drown the output of whoever runs the server."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Quiet, as above (werkzeug's handler logs here)."""


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded stand-in server: a client that hung up (a killed daemon, a timed-out
    request) is no news, and request threads never hold the process up."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class BackgroundServer:
    """A server (anything with `serve_forever`, `shutdown`, `server_close` and
    `server_address`) serving in a daemon thread; a context manager. A subclass builds its
    server, then calls `_serve_in_thread`."""

    _server: Any
    _thread: threading.Thread

    def _serve_in_thread(self, server: Any, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            name=name,
            daemon=True,
        )

    @property
    def endpoint_url(self) -> str:
        """The URL to give boto3."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=STOP_JOIN_SECONDS)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
