"""What a failed PutEvents means, and when it is tried again: the one home of retry policy.

Where do I change retries? Here. Every EventBridge code the engine acts on (request-level and
entry-level, v1 and v2) is in one of the tables below, and the functions under them are the
only places that turn a failure into a decision. No other module names a code; the generic
pacing (`sync.pacing`: backoff, window, rate limiter, timeouts, link state) only ever hears
the decision.

Whole-request failures (`classify_request_error`) become one of:

- `Throttled`: slow down (the window and the rate limiter shrink); the link is fine and the
  records are retried like throttled entries (`RetryPolicy.entry_delay`);
- `Failed(TRANSPORT)`: unreachable or broken on the way (refused, DNS, TLS, connect timeout,
  5xx, 408/429, a state that passes by itself, an answer that cannot be read): the records
  are due again at once, and the failure counts toward offline detection, whose gate paces
  the resend;
- `Failed(READ_TIMEOUT)`: sent but not answered in time (it may well have been applied): as
  transport, and the engine adapts to a slow endpoint (`sync.pacing.timeouts`);
- `Failed(MISCONFIGURED)`: will never work as configured (credentials, a missing bus,
  AccessDenied, any other 4xx, a validation error, an entry v2 cannot deduplicate): reported
  at once; the records stay pending and the link is probed until the configuration is fixed.

Per-entry failures inside an answered request (`entry_decision`): partial failure comes back
inside HTTP 200; each result either has an `EventId` (accepted) or an `ErrorCode`. Only
`InternalFailure` and `ThrottlingException` (and v2's `InternalException`) are worth
retrying, and a result with neither id nor code is retried too. Codes about the terminal's
configuration (AccessDeniedException, NotAuthorizedForSourceException, a missing bus) would
refuse every record alike: those records stay pending and the engine reports `misconfigured`.
Any other code (InvalidArgument, MalformedDetail, codes AWS adds later...) is about the record
itself: it is quarantined with the code and message for an operator to look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    UnknownEndpointError,
)

from sync.errors import EventDetailError
from sync.pacing.backoff import FullJitterBackoff

# --- request level (a botocore ClientError for the whole PutEvents call) -------------------
# v2's model names `ThrottlingException` (429), `InternalException` (500),
# `AccessDeniedException` (403), `ResourceNotFoundException` (404), `InvalidInputException`
# (400) and `InvalidStateException` (409); v1's are sorted the same way, mostly by status.

# Codes that mean "slow down", not "the link is down" (v1's and v2's `ThrottlingException`).
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Codes that are about the moment, not the configuration: v2's bus "not in a state that allows
# the operation" (still being created or updated) passes by itself.
TRANSIENT_CODES = frozenset({"InvalidStateException"})
SERVER_ERROR_STATUS = 500
CLIENT_ERROR_STATUS = 400
# 4xx statuses that are about this one request's timing, not the configuration.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
# SDK-side failures that are the configuration's fault, before anything is sent.
MISCONFIGURED_SDK_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
    ProfileNotFound,
    UnknownEndpointError,
    ParamValidationError,
)

# --- entry level (one result of an answered request) ---------------------------------------

THROTTLED_ENTRY_CODE = "ThrottlingException"
# `InternalException` is v2's name for v1's `InternalFailure`.
RETRYABLE_ENTRY_CODES = frozenset({"InternalFailure", "InternalException", THROTTLED_ENTRY_CODE})
MISCONFIGURED_ENTRY_CODES = frozenset(
    {"AccessDeniedException", "NotAuthorizedForSourceException", "ResourceNotFoundException"}
)
# What a result with neither `EventId` nor `ErrorCode` is called in the journal (retried).
NO_EVENT_ID = "NoEventId"
# v2's `SuccessCode` for an event the bus already holds: delivered, not failed.
V2_DEDUPLICATED_CODE = "DEDUPLICATED"

# --- the decisions ------------------------------------------------------------------------

# Kinds of whole-request failure (`Failed.kind`); they prefix the error kept in the journal.
TRANSPORT = "transport"
READ_TIMEOUT = "read-timeout"
MISCONFIGURED = "misconfigured"
MALFORMED_ANSWER = "malformed PutEvents answer"


@dataclass(frozen=True)
class Throttled:
    """The whole request was throttled: back off and shrink the window; the link is fine."""

    error: str


@dataclass(frozen=True)
class Failed:
    """The whole request failed: transport or read timeout, which count toward offline
    detection, or misconfigured, which is reported at once. Either way the records stay
    pending and are retried later (see the module docstring)."""

    kind: str  # TRANSPORT, READ_TIMEOUT or MISCONFIGURED
    error: str


class EntryDecision(Enum):
    """What becomes of a record whose entry was not accepted."""

    RETRY = "retry"
    MISCONFIGURED = "misconfigured"
    QUARANTINE = "quarantine"


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _describe_client_error(error: ClientError) -> tuple[str, str, int]:
    details = error.response.get("Error", {})
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    code = details.get("Code", "Unknown")
    message = details.get("Message", "")
    return f"{code} (HTTP {status}): {message}".strip(), details.get("Code", ""), status


def _kind_of_status(status: int) -> str:
    """5xx and request timeouts: the way there; any other 4xx: the configuration."""
    if CLIENT_ERROR_STATUS <= status < SERVER_ERROR_STATUS:
        return TRANSPORT if status in TRANSIENT_CLIENT_STATUSES else MISCONFIGURED
    return TRANSPORT


def classify_request_error(error: Exception) -> Throttled | Failed | None:
    """What a PutEvents call that raised `error` means; None for an exception that is no
    request failure (a bug: the caller lets it propagate)."""
    if isinstance(error, ClientError):
        text, code, status = _describe_client_error(error)
        if code in THROTTLING_CODES:
            return Throttled(text)
        if code in TRANSIENT_CODES:
            return Failed(TRANSPORT, text)
        return Failed(_kind_of_status(status), text)
    if isinstance(error, MISCONFIGURED_SDK_ERRORS):
        return Failed(MISCONFIGURED, _describe(error))
    if isinstance(error, EventDetailError):
        # v2 found an entry it cannot deduplicate (sync/eventbridge/client_v2.py): nothing was
        # sent, and no retry would help; the records stay pending and the engine says why.
        return Failed(MISCONFIGURED, _describe(error))
    if isinstance(error, ReadTimeoutError):
        return Failed(READ_TIMEOUT, _describe(error))
    if isinstance(error, BotoCoreError):
        # Connection refused/reset, DNS, TLS, connect timeouts, truncated bodies, and
        # credential providers that need the network (IAM Roles Anywhere) all land here.
        return Failed(TRANSPORT, _describe(error))
    if isinstance(error, (AttributeError, TypeError, ValueError)):
        # botocore's parser trips over a JSON body of the wrong shape (`null`, `true`, a list
        # where an object belongs) with these instead of its own errors (found by fuzzing).
        return malformed_answer(_describe(error))
    return None


def malformed_answer(problem: str) -> Failed:
    """An answer that cannot be read is treated like a broken link: retried, and counted
    toward offline detection."""
    return Failed(TRANSPORT, f"{MALFORMED_ANSWER}: {problem}")


def unusable_answer(text: str) -> Failed:
    """An answer that does not match its request (e.g. a wrong number of results): as
    `malformed_answer`, with `text` as the whole error."""
    return Failed(TRANSPORT, text)


def unexpected_error(error: Exception) -> Failed:
    """An exception `put_batch` did not expect is a bug in the client stack; it must not kill
    the engine: the records are simply retried, as after a transport failure."""
    return Failed(TRANSPORT, _describe(error))


def entry_decision(code: str | None) -> EntryDecision:
    """What becomes of a record whose result carried `code` (None: neither code nor id)."""
    if code is None or code in RETRYABLE_ENTRY_CODES:
        return EntryDecision.RETRY
    if code in MISCONFIGURED_ENTRY_CODES:
        return EntryDecision.MISCONFIGURED
    return EntryDecision.QUARANTINE


def entry_throttled(code: str | None) -> bool:
    """Whether a refused entry was throttled: it slows the window and the rate limiter."""
    return code == THROTTLED_ENTRY_CODE


class RetryPolicy:
    """When a record refused for a retryable reason (a retryable entry code, or a throttled
    request) is due again. Whole-request transport failures and refused configurations are
    due again at once: the link monitor's gate paces those (`sync.pacing.link`)."""

    def __init__(self, backoff: FullJitterBackoff) -> None:
        self._backoff = backoff

    def entry_delay(self, attempt: int, *, throttled: bool, rate_limited: bool) -> float:
        """Seconds until retry number `attempt`: a full-jitter backoff; throttled records at
        once while the rate limiter is engaged (`rate_limited`): it paces them, and a backoff
        on top left terminals idle below their share of the quota, then sending in bursts
        (bench/fleet.py)."""
        if throttled and rate_limited:
            return 0.0
        return self._backoff.delay(attempt)
