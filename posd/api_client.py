"""The one client of the daemon's API over its Unix socket, for the CLI, the demo (which plays
the register), the tests and bench (stdlib only: a thin command must start fast).

`connect(socket)` answers a `DaemonClient` when a daemon answers there, None when none does
(no socket, nobody listening): the CLI then works on the state dir directly. `exchange` is one
request with whatever status it gets (a register's view); `call`, `get` and `post` raise a
refusal as `DaemonError` (a command's view); `status`, `devices` and `flush` answer typed.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posd.api_answers import DevicesAnswer, FlushAnswer, StatusAnswer
from posd.errors import PosdError, UsageError

CONNECT_TIMEOUT_S = 2.0
# A flush through the API waits up to its own timeout_s; the socket waits a little longer.
ANSWER_SLACK_S = 5.0
DEFAULT_ANSWER_TIMEOUT_S = 10.0
# `posd status` must answer even when the daemon does not (a stopped or hung process): it
# waits this long, then reads the state dir.
STATUS_ANSWER_TIMEOUT_S = 2.0
# A payment waits up to 120 s for the customer (the API's bound on timeout_s), then journals.
PAYMENT_ANSWER_TIMEOUT_S = 150.0
HTTP_OK_MAX = 299
JSON_TYPE = "application/json"
STATUS_ROUTE = "/v1/status"
FLUSH_ROUTE = "/v1/sync/flush"
DEVICES_ROUTE = "/v1/devices"


class NoAnswer(UsageError):
    """The daemon's socket took the connection but no answer came (a hung or stopped daemon)."""


class DaemonError(PosdError):
    """The daemon answered with an error (its code and message are kept)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"daemon: {code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Reply:
    """One answer as it came: the status, the JSON body (text for anything else, such as
    /metrics) and the text itself."""

    status: int
    body: Any
    text: str


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
    def __init__(self, path: Path, timeout: float = DEFAULT_ANSWER_TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout

    def exchange(
        self,
        method: str,
        route: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """One request (`body` as JSON, or `raw` bytes as they are) and its answer, whatever
        its status. Raises `OSError` or `http.client.HTTPException` when no answer came."""
        conn = _UnixConnection(self.path, self.timeout if timeout is None else timeout)
        try:
            payload = (
                raw if raw is not None else (None if body is None else json.dumps(body).encode())
            )
            headers = {"Content-Type": JSON_TYPE} if payload is not None else {}
            conn.request(method, route, body=payload, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            is_json = (response.getheader("Content-Type") or "").startswith(JSON_TYPE)
        finally:
            conn.close()
        try:
            parsed = json.loads(text) if is_json and text else text
        except ValueError:
            raise UsageError(f"the daemon at {self.path} answered something not JSON") from None
        return Reply(response.status, parsed, text)

    def call(self, method: str, route: str, body: Any = None, timeout: float | None = None) -> Any:
        """The JSON answer; a refusal raises `DaemonError`, no answer `UsageError`."""
        try:
            reply = self.exchange(method, route, body, timeout=timeout)
        except (OSError, http.client.HTTPException) as error:
            raise NoAnswer(f"the daemon at {self.path} did not answer: {error}") from None
        if not reply.text:
            return {}
        if not isinstance(reply.body, dict):
            raise UsageError(f"the daemon at {self.path} answered something not JSON")
        answer = reply.body
        if reply.status > HTTP_OK_MAX:
            raise DaemonError(str(answer.get("error", reply.status)), answer.get("message", ""))
        return answer

    def get(self, route: str) -> Any:
        return self.call("GET", route)

    def post(self, route: str, body: Any, timeout: float | None = None) -> Any:
        return self.call("POST", route, body, timeout)

    def status(self, timeout: float | None = None) -> StatusAnswer:
        """`GET /v1/status`; `NoAnswer` when none comes within `timeout` (else the client's)."""
        answer: StatusAnswer = self.call("GET", STATUS_ROUTE, timeout=timeout)
        return answer

    def devices(self) -> DevicesAnswer:
        answer: DevicesAnswer = self.get(DEVICES_ROUTE)
        return answer

    def flush(self, timeout_s: float) -> FlushAnswer:
        """Ask the daemon to deliver its backlog, waiting up to `timeout_s` for it."""
        answer: FlushAnswer = self.post(
            FLUSH_ROUTE, {"timeout_s": timeout_s}, timeout=timeout_s + ANSWER_SLACK_S
        )
        return answer


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
