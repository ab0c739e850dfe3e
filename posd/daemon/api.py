"""The register's API as a WSGI app (falcon): routes, JSON bodies and the error contract.

Built from the daemon's parts, so tests can drive it in-process (`falcon.testing`) as well as
over the daemon's Unix socket. Every refusal is `{"error": CODE, "message": ...}` with the
status of its code (`refusals.py`); no input produces a 500.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import falcon
import structlog

from posd.api_answers import DeviceAnswer, DevicesAnswer, ErrorAnswer, FlushAnswer, StatusAnswer
from posd.daemon.metrics import CONTENT_TYPE, Metrics
from posd.daemon.payments import PaymentService
from posd.daemon.refusals import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    VALIDATION_ERROR,
    refuse,
)
from posd.daemon.requests import (
    MAX_BODY_BYTES,
    TIMEOUT_EXPECTED,
    check_client_ref,
    parse_json_body,
    parse_payment_request,
    valid_timeout,
)
from posd.errors import Refusal

log = structlog.get_logger("posd.api")

DEFAULT_FLUSH_TIMEOUT_S = 10.0
HTTP_ERROR_CODES = {
    HTTPStatus.NOT_FOUND: NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED: METHOD_NOT_ALLOWED,
}


@dataclass(frozen=True)
class ApiParts:
    payments: PaymentService
    metrics: Metrics
    status: Callable[[], StatusAnswer]
    devices: Callable[[], list[DeviceAnswer]]
    flush: Callable[[float], FlushAnswer]


def error_answer(refusal: Refusal) -> ErrorAnswer:
    answer: ErrorAnswer = {"error": refusal.code, "message": refusal.message}
    if refusal.fields:
        answer["fields"] = refusal.fields
    return answer


def _body(req: falcon.Request) -> Any:
    return parse_json_body(req.bounded_stream.read(MAX_BODY_BYTES + 1))


class Payments:
    def __init__(self, parts: ApiParts) -> None:
        self._parts = parts

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        request = parse_payment_request(_body(req))
        resp.media = self._parts.payments.create(request)
        resp.status = HTTPStatus.CREATED


class Payment:
    def __init__(self, parts: ApiParts) -> None:
        self._parts = parts

    def on_get(self, req: falcon.Request, resp: falcon.Response, client_ref: str) -> None:
        check_client_ref(client_ref)
        resp.media = self._parts.payments.get(client_ref)

    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, client_ref: str) -> None:
        check_client_ref(client_ref)
        resp.media = self._parts.payments.cancel(client_ref)

    def on_post_void(self, req: falcon.Request, resp: falcon.Response, client_ref: str) -> None:
        check_client_ref(client_ref)
        answer, created = self._parts.payments.void(client_ref)
        resp.media = answer
        resp.status = HTTPStatus.CREATED if created else HTTPStatus.OK


class Status:
    def __init__(self, parts: ApiParts) -> None:
        self._parts = parts

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._parts.status()


class Devices:
    def __init__(self, parts: ApiParts) -> None:
        self._parts = parts

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The pid: `posd devices` tells a technician who holds the devices it cannot open.
        answer: DevicesAnswer = {"devices": self._parts.devices(), "pid": os.getpid()}
        resp.media = answer


class Flush:
    def __init__(self, parts: ApiParts) -> None:
        self._parts = parts

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _body(req)
        if not isinstance(body, dict) or set(body) - {"timeout_s"}:
            raise refuse(VALIDATION_ERROR, "the body may only hold timeout_s")
        timeout = body.get("timeout_s", DEFAULT_FLUSH_TIMEOUT_S)
        if not valid_timeout(timeout):
            raise refuse(VALIDATION_ERROR, "invalid timeout_s", {"timeout_s": TIMEOUT_EXPECTED})
        resp.media = self._parts.flush(float(timeout))


class MetricsPage:
    def __init__(self, parts: ApiParts) -> None:
        self._parts = parts

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = self._parts.metrics.exposition()
        resp.content_type = CONTENT_TYPE


def create_app(parts: ApiParts) -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App()
    app.req_options.strip_url_path_trailing_slash = True
    payment = Payment(parts)
    app.add_route("/v1/payments", Payments(parts))
    app.add_route("/v1/payments/{client_ref}", payment)
    app.add_route("/v1/payments/{client_ref}/cancel", payment, suffix="cancel")
    app.add_route("/v1/payments/{client_ref}/void", payment, suffix="void")
    app.add_route("/v1/status", Status(parts))
    app.add_route("/v1/devices", Devices(parts))
    app.add_route("/v1/sync/flush", Flush(parts))
    app.add_route("/metrics", MetricsPage(parts))

    def on_refusal(req: falcon.Request, resp: falcon.Response, ex: Refusal, params: Any) -> None:
        parts.metrics.refused(ex.code)
        resp.status = ex.status
        resp.media = error_answer(ex)

    def on_http_error(
        req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any
    ) -> None:
        code = HTTP_ERROR_CODES.get(HTTPStatus(ex.status_code), VALIDATION_ERROR)
        resp.status = ex.status_code
        answer: ErrorAnswer = {"error": code, "message": ex.title}
        resp.media = answer
        if ex.headers:
            resp.set_headers(ex.headers)

    def on_unexpected(
        req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any
    ) -> None:
        log.error("api.unexpected_error", path=req.path, error=type(ex).__name__, exc_info=ex)
        parts.metrics.refused(INTERNAL_ERROR)
        resp.status = HTTPStatus.INTERNAL_SERVER_ERROR
        answer: ErrorAnswer = {
            "error": INTERNAL_ERROR,
            "message": "an unexpected error; see the logs",
        }
        resp.media = answer

    # Falcon picks the most specific handler: our refusals, HTTP errors, then anything else.
    app.add_error_handler(Exception, on_unexpected)
    app.add_error_handler(falcon.HTTPError, on_http_error)
    app.add_error_handler(Refusal, on_refusal)
    return app
