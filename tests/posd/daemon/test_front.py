"""The API server in-process over a real Unix socket, in front of a small WSGI app: bodies
reach the app whole (also chunked), and a body over the limit never does."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from posd.daemon.listener import bind_here
from posd.daemon.lock import StateDirLock
from posd.daemon.requests import MAX_BODY_BYTES
from posd.daemon.server import ApiServer

ANSWER_TIMEOUT_S = 5.0


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers what it was given: method, path, declared length and the body."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "length": environ.get("CONTENT_LENGTH"),
        "body": body.decode(),
        "type": environ.get("CONTENT_TYPE"),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    """The API server serving `echo_app` on a socket bound as the daemon binds it."""
    path = tmp_path / "api.sock"
    with StateDirLock.acquire(tmp_path) as lock:
        listener = bind_here(path, None, lock)
        api = ApiServer(echo_app).start(listener)
        yield path
        api.stop(1.0)
        listener.close()


def exchange(path: Path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT_S)
        sock.connect(str(path))
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
        return answer


def chunked(body: bytes, size: int = 4096) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


HEAD = b"POST /v1/payments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"


def test_a_chunked_body_reaches_the_app_whole_with_its_length(socket_path: Path) -> None:
    body = json.dumps({"client_ref": "x" * 5000}).encode()
    answer = exchange(socket_path, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body))
    assert answer.startswith(b"HTTP/1.1 200 ")
    seen = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert seen["body"] == body.decode() and seen["length"] == str(len(body))
    assert seen["type"] == "application/json" and seen["path"] == "/v1/payments"


def test_a_chunked_body_over_the_limit_is_refused_without_reaching_the_app(
    socket_path: Path,
) -> None:
    body = b"7" * (MAX_BODY_BYTES + 1)
    answer = exchange(socket_path, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body))
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "validation_error"


def test_the_answer_names_posd_as_the_server(socket_path: Path) -> None:
    answer = exchange(socket_path, b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert b"\r\nserver: posd\r\n" in answer.lower()
