"""The API on its Unix socket: uvicorn (asyncio) in a thread, in front of the falcon app.

Why not waitress any more: waitress gives each connection a slot out of `connection_limit`
and stops accepting when they are taken; its only timeout is an idle one that any byte
resets, so ~100 connections sending a byte now and then took the API away, and a flush held
one of its 8 worker threads for up to 120 s (`bench/api_front.py` measures both fronts). On
an event loop an idle connection costs no thread; `guard.py` bounds them with a request
deadline and caps, and `front.py` runs the app on pools by route with bodies in memory.

It serves a socket already bound and listening (`listener.py`: systemd's, or bound under the
state dir's lock, 0660 and group `[api] socket_group`); the listener, not the server, decides
whether its file may be unlinked. In-flight requests are counted so a shutdown can let the
payment in hand be answered before the server closes.
"""

from __future__ import annotations

import asyncio
import grp
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from posd.daemon.front import SERVER_NAME, FrontPools, WsgiApp, WsgiFront
from posd.daemon.guard import REQUEST_DEADLINE_S, ConnectionBook, guarded_protocol
from posd.daemon.listener import LISTEN_BACKLOG, Listener
from posd.errors import ConfigError, PosdError

MAX_HEAD_BYTES = 16_384  # a request line and headers; h11 answers 400 beyond
RESPONSE_FLUSH_S = 0.2  # after the last app call returned, for the loop to write it out
STARTED_TIMEOUT_S = 10.0
STARTED_POLL_S = 0.01
THREAD_JOIN_S = 2.0


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


def server_config(app: WsgiFront, book: ConnectionBook) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=guarded_protocol(book),
        ws="none",
        lifespan="off",
        interface="asgi3",
        loop="asyncio",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        headers=[("server", SERVER_NAME)],
        timeout_keep_alive=int(REQUEST_DEADLINE_S),
        timeout_graceful_shutdown=int(THREAD_JOIN_S),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        backlog=LISTEN_BACKLOG,
    )


class ApiServer:
    def __init__(self, app: WsgiApp) -> None:
        self._app = _Counting(app)
        self.connections = ConnectionBook()
        self._pools: FrontPools | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, listener: Listener) -> ApiServer:
        sock = listener.socket
        self._pools = FrontPools()
        self._server = uvicorn.Server(
            server_config(WsgiFront(self._app, self._pools), self.connections)
        )
        server = self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTED_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                where = listener.path or "the socket systemd passed"
                raise PosdError(f"the API server did not start on {where}")
            time.sleep(STARTED_POLL_S)
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
        else:
            self._server.force_exit = True  # a flush may wait on: do not wait for it
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=THREAD_JOIN_S)
        if self._pools is not None:
            self._pools.close()
