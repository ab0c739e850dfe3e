"""docs/openapi.yaml and the daemon agree: the same routes and methods, and real answers
(successes and refusals, from the shared daemon over its socket) validate against it."""

from __future__ import annotations

import re
from typing import Any

import falcon.inspect
import yaml
from jsonschema import Draft202012Validator

from drivers.card.simulator import CardReaderSimulator
from posd.currency import EXPONENTS
from posd.daemon.api import ApiParts, create_app
from posd.daemon.metrics import Metrics
from posd.daemon.refusals import STATUS
from tests.posd.daemon.harness import Daemon
from tests.repo import REPO_ROOT

REPO = REPO_ROOT
DOC = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
HTTP_METHODS = {"get", "post", "put", "delete", "patch"}


def app_routes() -> set[tuple[str, str]]:
    """(path template, method) of every route the app serves (falcon's own inspection)."""
    unused: Any = None
    app = create_app(ApiParts(unused, Metrics(), unused, unused, unused))
    return {
        (route.path, method.method.lower())
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal
    }


def doc_routes() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in DOC["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_the_document_and_the_app_have_the_same_routes() -> None:
    assert app_routes() == doc_routes()


def test_the_document_lists_every_error_code() -> None:
    assert set(DOC["components"]["schemas"]["ErrorCode"]["enum"]) == set(STATUS)


def template_of(path: str) -> str:
    for template in DOC["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path):
            return str(template)
    raise AssertionError(f"{path} is not in the document")


def check(method: str, path: str, status: int, body: Any) -> None:
    operation = DOC["paths"][template_of(path)][method.lower()]
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = DOC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    Draft202012Validator({**DOC, **schema}).validate(body)


def test_answers_validate_against_the_document(
    shared_daemon: Daemon, reader: CardReaderSimulator
) -> None:
    def exchange(method: str, path: str, body: Any = None) -> None:
        status, answer = shared_daemon.call(method, path, body)
        check(method, path, status, answer)

    payment = {"client_ref": "oa-1", "amount_minor": 250, "currency": "EUR", "method": "card"}
    exchange("POST", "/v1/payments", payment)
    exchange("POST", "/v1/payments", payment)
    exchange("POST", "/v1/payments", {**payment, "amount_minor": 251})  # 409
    exchange("POST", "/v1/payments", {"client_ref": "?"})  # 400 with fields
    exchange("POST", "/v1/payments", {**payment, "currency": "EUX"})  # 400 unknown_currency
    exchange("POST", "/v1/payments", {**payment, "currency": "USD"})  # 422 not accepted
    exchange("POST", "/v1/payments", {**payment, "client_ref": "oa-2", "method": "palm"})
    exchange("GET", "/v1/payments/oa-1")
    exchange("GET", "/v1/payments/oa-none")  # 404
    exchange("POST", "/v1/payments/oa-1/void")  # 201
    exchange("POST", "/v1/payments/oa-1/void")  # 200
    exchange("GET", "/v1/payments/oa-1")  # voided
    exchange("POST", "/v1/payments/oa-1/cancel")  # 409 not_cancellable
    reader.hold_cards()
    exchange("POST", "/v1/payments", {**payment, "client_ref": "oa-3", "timeout_s": 0.2})  # 422
    exchange("GET", "/v1/payments/oa-3")  # refused
    exchange("GET", "/v1/status")
    exchange("GET", "/v1/devices")
    exchange("POST", "/v1/sync/flush", {"timeout_s": 5})
    exchange("POST", "/v1/sync/flush", {"timeout_s": "soon"})  # 400


def test_the_documented_currencies_are_the_table() -> None:
    assert set(DOC["components"]["schemas"]["Currency"]["enum"]) == set(EXPONENTS)
