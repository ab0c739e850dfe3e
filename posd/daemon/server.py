"""The API on its Unix socket: waitress (a well-kept pure-Python WSGI server) in a thread.

It serves a socket already bound and listening (`listener.py`: systemd's, or bound here
under the state dir's lock, 0660 and group `[api] socket_group`); the listener, not the
server, decides whether its file may be unlinked. In-flight requests are counted so a
shutdown can let the payment in hand be answered before the server closes.
"""

from __future__ import annotations

import grp
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress.server import create_server

from posd.daemon.listener import Listener
from posd.errors import ConfigError

API_THREADS = 8  # a waiting payment, its joining retry, a cancel, status polls, metrics
RESPONSE_FLUSH_S = 0.2  # after the last app call returned, for waitress to write it out

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def socket_gid(group: str | None, config_path: str) -> int | None:
    """The gid of `[api] socket_group` (None: leave the socket's group alone)."""
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(config_path, "api.socket_group", f"no group named {group!r}") from None


class _Counting:
    """WSGI middleware counting requests inside the app."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._cond = threading.Condition()
        self._active = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._cond:
            self._active += 1
        try:
            return self._app(environ, start_response)
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)


class ApiServer:
    def __init__(self, app: WsgiApp) -> None:
        self._app = _Counting(app)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, listener: Listener) -> ApiServer:
        self._server = create_server(
            self._app, sockets=[listener.socket], threads=API_THREADS, ident="posd"
        )
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float) -> None:
        """Let requests in the app finish (up to `timeout`), then close everything."""
        if self._server is None:
            return
        if self._app.wait_idle(timeout):
            time.sleep(RESPONSE_FLUSH_S)
        self._server.task_dispatcher.shutdown(timeout=1)
        self._server.close()
        for channel in list(self._server._map.values()):
            channel.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
