"""The API's WSGI app behind an asyncio server: whole bodies in memory, work on its own pool.

The server (uvicorn) reads requests on its event loop, where an idle or slow connection costs
a few objects and no thread. This bridge takes a request only once its body is complete and
within `MAX_BODY_BYTES` (a larger declared length is refused before a byte of it is read; the
body is never spooled to disk), then runs the falcon app on the pool its route belongs to:

- `POST /v1/payments` on the payments pool: the payment in hand and the retries that join it
  wait there;
- `POST /v1/sync/flush` on the flush pool, two threads: flushes queue behind each other, never
  in front of the register;
- everything else (cancel, void, status, look-ups, metrics) on the control pool, so a cancel
  never waits behind the payment it cancels.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from posd.daemon.api import error_answer
from posd.daemon.refusals import SHUTTING_DOWN, refuse
from posd.daemon.requests import MAX_BODY_BYTES, body_too_large
from posd.daemon.workers import WorkerPool
from posd.errors import Refusal

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PAYMENT_THREADS = 4  # the payment in hand and retries joining it; others are lane_busy at once
CONTROL_THREADS = 4  # cancel, void, status, look-ups, metrics: quick, never behind a payment
FLUSH_THREADS = 2  # each flush may wait up to 120 s for delivery
PAYMENTS_ROUTE = ("POST", "/v1/payments")
FLUSH_ROUTE = ("POST", "/v1/sync/flush")
JSON_HEADERS = [(b"content-type", b"application/json"), (b"connection", b"close")]
SERVER_NAME = "posd"


class BodyTooLarge(Exception):
    """The body grew past MAX_BODY_BYTES while it was read."""


@dataclass
class FrontPools:
    payments: WorkerPool = field(default_factory=lambda: WorkerPool("api-pay", PAYMENT_THREADS))
    control: WorkerPool = field(default_factory=lambda: WorkerPool("api-ctl", CONTROL_THREADS))
    flush: WorkerPool = field(default_factory=lambda: WorkerPool("api-flush", FLUSH_THREADS))

    def for_route(self, method: str, path: str) -> WorkerPool:
        route = (method, path.rstrip("/") or "/")
        if route == PAYMENTS_ROUTE:
            return self.payments
        if route == FLUSH_ROUTE:
            return self.flush
        return self.control

    def close(self) -> None:
        for pool in (self.payments, self.control, self.flush):
            pool.close()


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length (h11 has checked it is a number), if it has one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
    return None


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, at most MAX_BODY_BYTES; None if the client went away first. A slow
    body is the server's to cut off (its request deadline)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """PEP 3333's environ for an ASGI HTTP scope whose body is in hand."""
    server_name, server_port = scope.get("server") or ("localhost", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        # PEP 3333: the path as bytes, decoded as latin-1 (the ASGI path is decoded UTF-8).
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server_name),
        "SERVER_PORT": str(server_port or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_LENGTH":
            continue  # the body in hand says it
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


@dataclass(frozen=True)
class WsgiAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def call_wsgi(app: WsgiApp, environ: dict[str, Any]) -> WsgiAnswer:
    """Run the app to the end of its answer (the API's answers are small)."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [(status, headers)]
        return lambda data: None  # PEP 3333's write(): falcon never calls it

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    if not any(name == b"content-length" for name, _ in encoded):
        encoded.append((b"content-length", str(len(body)).encode()))  # not chunked: all in hand
    return WsgiAnswer(int(status.split(" ", 1)[0]), encoded, body)


async def send_answer(send: Send, answer: WsgiAnswer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


def refusal_answer(refusal: Refusal) -> WsgiAnswer:
    """A refusal as the app gives it, and the connection closed (for an oversized body: the
    rest of it is never read)."""
    body = json.dumps(error_answer(refusal)).encode()
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    return WsgiAnswer(refusal.status, headers, body)


class WsgiFront:
    """The ASGI app the server runs: the WSGI app on the pool of each request's route."""

    def __init__(self, app: WsgiApp, pools: FrontPools) -> None:
        self._app = app
        self._pools = pools

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan, no websockets: the server is configured without them
        declared = declared_length(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await send_answer(send, refusal_answer(body_too_large()))
            return
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            await send_answer(send, refusal_answer(body_too_large()))
            return
        if body is None:
            return
        environ = wsgi_environ(scope, body)
        pool = self._pools.for_route(scope["method"], scope["path"])
        try:
            answer = await asyncio.wrap_future(pool.submit(lambda: call_wsgi(self._app, environ)))
        except asyncio.CancelledError:
            # The server is stopping and does not wait for this request (a long flush): the
            # client is told so rather than cut off, and the task ends without a traceback.
            answer = refusal_answer(refuse(SHUTTING_DOWN, "the terminal is shutting down"))
        await send_answer(send, answer)
