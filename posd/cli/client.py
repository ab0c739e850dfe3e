"""The CLI as a thin client of the daemon's API, over its Unix socket (stdlib only: a thin
command must start fast).

`connect(socket)` answers a `DaemonClient` when a daemon answers there, None when none does
(no socket, nobody listening): the caller then works on the state dir directly.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from posd.errors import PosdError, UsageError

CONNECT_TIMEOUT_S = 2.0
# A flush through the API waits up to its own timeout_s; the socket waits a little longer.
ANSWER_SLACK_S = 5.0
DEFAULT_ANSWER_TIMEOUT_S = 10.0
HTTP_OK_MAX = 299


class DaemonError(PosdError):
    """The daemon answered with an error (its code and message are kept)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"daemon: {code}: {message}")
        self.code = code


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class DaemonClient:
    def __init__(self, path: Path) -> None:
        self.path = path

    def call(
        self, method: str, route: str, body: Any = None, timeout: float = DEFAULT_ANSWER_TIMEOUT_S
    ) -> Any:
        conn = _UnixConnection(self.path, timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload else {}
            conn.request(method, route, body=payload, headers=headers)
            response = conn.getresponse()
            text = response.read()
        except OSError as error:
            raise UsageError(f"the daemon at {self.path} did not answer: {error}") from None
        finally:
            conn.close()
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            raise UsageError(f"the daemon at {self.path} answered something not JSON") from None
        if response.status > HTTP_OK_MAX:
            raise DaemonError(str(answer.get("error", response.status)), answer.get("message", ""))
        return answer

    def get(self, route: str) -> Any:
        return self.call("GET", route)

    def post(self, route: str, body: Any, timeout: float = DEFAULT_ANSWER_TIMEOUT_S) -> Any:
        return self.call("POST", route, body, timeout)


def connect(path: Path) -> DaemonClient | None:
    """A client if a daemon answers on `path`; None if there is no daemon there. A socket the
    user may not open is an error that says so (the fix is a group, not a stopped daemon)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(str(path))
    except PermissionError:
        raise UsageError(
            f"no permission to use the daemon's socket {path}: run as a member of its group "
            "([api] socket_group) or as root"
        ) from None
    except OSError:
        return None
    finally:
        sock.close()
    return DaemonClient(path)
