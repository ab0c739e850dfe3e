"""`posd run` served by waitress, the API's server before uvicorn, for `bench/api_front.py`.

The same daemon with the same app; only the server differs, as it was: waitress's threads
(8), its connection limit (100) and its idle timeout (120 s). Run as
`python -m bench.waitress_front run --config FILE`; never shipped.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from waitress.server import create_server

import posd.daemon.compose
from posd.cli.main import run
from posd.daemon.front import WsgiApp
from posd.daemon.listener import Listener

API_THREADS = 8
RESPONSE_FLUSH_S = 0.2


class WaitressApiServer:
    """posd's `ApiServer` as it was (same interface: it serves the listener it is given)."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, listener: Listener) -> WaitressApiServer:
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
        if self._server is None:
            return
        time.sleep(RESPONSE_FLUSH_S)
        self._server.task_dispatcher.shutdown(timeout=1)
        self._server.close()
        for channel in list(self._server._map.values()):
            channel.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


if __name__ == "__main__":
    posd.daemon.compose.ApiServer = WaitressApiServer  # type: ignore[attr-defined, assignment]
    run()
