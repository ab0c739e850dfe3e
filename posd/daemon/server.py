"""The API on its Unix socket: waitress (a well-kept pure-Python WSGI server) in a thread.

The socket is created 0660 and handed to `[api] socket_group`, so the register and the
technicians in that group may connect and nobody else. In-flight requests are counted so a
shutdown can let the payment in hand be answered before the server closes.
"""

from __future__ import annotations

import grp
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from waitress.server import create_server

from posd.errors import ConfigError

SOCKET_MODE = 0o660
SOCKET_DIR_MODE = 0o750
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
    def __init__(self, app: WsgiApp, path: Path, gid: int | None) -> None:
        self._app = _Counting(app)
        self.path = path
        self._gid = gid
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> ApiServer:
        self.path.parent.mkdir(mode=SOCKET_DIR_MODE, parents=True, exist_ok=True)
        self._server = create_server(
            self._app,
            unix_socket=str(self.path),
            unix_socket_perms=f"{SOCKET_MODE:o}",
            threads=API_THREADS,
            ident="posd",
        )
        if self._gid is not None:
            os.chown(self.path, -1, self._gid)
        os.chmod(self.path, SOCKET_MODE)
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
        self.path.unlink(missing_ok=True)
