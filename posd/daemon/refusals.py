"""Every refusal the register's API can answer: a stable code, its HTTP status, a message.

The codes are part of the API contract (`docs/openapi.yaml` lists them); the messages are for
people and may change. None of them ever carries card data.
"""

from __future__ import annotations

from http import HTTPStatus

from posd.errors import Refusal

VALIDATION_ERROR = "validation_error"
UNKNOWN_CURRENCY = "unknown_currency"
CURRENCY_NOT_ACCEPTED = "currency_not_accepted"
CARD_NUMBER_IN_CLIENT_REF = "card_number_in_client_ref"
IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
LANE_BUSY = "lane_busy"
IN_PROGRESS = "in_progress"
NOT_FOUND = "not_found"
NOT_CANCELLABLE = "not_cancellable"
METHOD_NOT_ALLOWED = "method_not_allowed"
OFFLINE_AMOUNT_LIMIT = "offline_amount_limit"
OFFLINE_PENDING_AMOUNT_LIMIT = "offline_pending_amount_limit"
OFFLINE_PENDING_COUNT_LIMIT = "offline_pending_count_limit"
OFFLINE_PENDING_AGE_LIMIT = "offline_pending_age_limit"
CARD_EXPIRED = "card_expired"
CARD_INVALID = "card_invalid"
CARD_UNREADABLE = "card_unreadable"
NO_MATCH = "no_match"
READ_TIMEOUT = "read_timeout"
CANCELLED = "cancelled"
DEVICE_UNAVAILABLE = "device_unavailable"
JOURNAL_FULL = "journal_full"
DISK_BELOW_RESERVE = "disk_below_reserve"
NO_DATA_KEY = "no_data_key"
SHUTTING_DOWN = "shutting_down"
INTERNAL_ERROR = "internal_error"

PAYMENT_KEY = "[offline] max_payment_amount"
AMOUNT_KEY = "[offline] max_pending_amount"
COUNT_KEY = "[offline] max_pending_count"
AGE_KEY = "[offline] max_pending_age_seconds"
LIMIT_KEYS = {
    OFFLINE_AMOUNT_LIMIT: PAYMENT_KEY,
    OFFLINE_PENDING_AMOUNT_LIMIT: AMOUNT_KEY,
    OFFLINE_PENDING_COUNT_LIMIT: COUNT_KEY,
    OFFLINE_PENDING_AGE_LIMIT: AGE_KEY,
}
"""Each offline limit's refusal code and the config key that sets it (here, not in
`posd.daemon.limits`, so `posd status` names them without loading the config's
dependencies)."""

UNPROCESSABLE = HTTPStatus.UNPROCESSABLE_ENTITY

STATUS: dict[str, HTTPStatus] = {
    VALIDATION_ERROR: HTTPStatus.BAD_REQUEST,
    UNKNOWN_CURRENCY: HTTPStatus.BAD_REQUEST,
    CURRENCY_NOT_ACCEPTED: UNPROCESSABLE,
    CARD_NUMBER_IN_CLIENT_REF: HTTPStatus.BAD_REQUEST,
    IDEMPOTENCY_MISMATCH: HTTPStatus.CONFLICT,
    LANE_BUSY: HTTPStatus.CONFLICT,
    IN_PROGRESS: HTTPStatus.CONFLICT,
    NOT_CANCELLABLE: HTTPStatus.CONFLICT,
    NOT_FOUND: HTTPStatus.NOT_FOUND,
    METHOD_NOT_ALLOWED: HTTPStatus.METHOD_NOT_ALLOWED,
    OFFLINE_AMOUNT_LIMIT: UNPROCESSABLE,
    OFFLINE_PENDING_AMOUNT_LIMIT: UNPROCESSABLE,
    OFFLINE_PENDING_COUNT_LIMIT: UNPROCESSABLE,
    OFFLINE_PENDING_AGE_LIMIT: UNPROCESSABLE,
    CARD_EXPIRED: UNPROCESSABLE,
    CARD_INVALID: UNPROCESSABLE,
    CARD_UNREADABLE: UNPROCESSABLE,
    NO_MATCH: UNPROCESSABLE,
    READ_TIMEOUT: UNPROCESSABLE,
    CANCELLED: UNPROCESSABLE,
    DEVICE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    JOURNAL_FULL: HTTPStatus.INSUFFICIENT_STORAGE,
    DISK_BELOW_RESERVE: HTTPStatus.INSUFFICIENT_STORAGE,
    NO_DATA_KEY: HTTPStatus.SERVICE_UNAVAILABLE,
    SHUTTING_DOWN: HTTPStatus.SERVICE_UNAVAILABLE,
    INTERNAL_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
}


def refuse(code: str, message: str, fields: dict[str, str] | None = None) -> Refusal:
    """The `Refusal` for `code`, with its HTTP status from the table."""
    return Refusal(code, message, int(STATUS[code]), fields)
